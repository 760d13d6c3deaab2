# SPDX-License-Identifier: Apache-2.0
"""The scaling policy binding (nvcf/scaling.h)."""
import dataclasses
import math

import pytest

import nvcf
from nvcf import scaling
from nvcf.scaling import Metrics, Params, Policy, Reason


@pytest.fixture(autouse=True)
def need_scaling(lib):
    if not lib.has("scaling"):
        pytest.skip("this libnvcf does not export nvcf/scaling.h")


def test_defaults_match_the_library():
    assert Params().validate() == Params()
    # from_json with an empty object changes nothing but the policy
    p = Params().with_autoscaling_configuration(
        {"policy": "TARGET_TRACKING"})
    assert p == Params()


def test_names():
    assert [r.label for r in Reason] == [
        "steady", "up-load", "down-load", "wake-from-zero", "idle-to-zero",
        "at-min", "at-max", "stabilizing", "pending-start"]
    assert [p.label for p in Policy] == ["target-tracking", "utilization"]
    assert scaling.reason_name(99) == "unknown"
    assert scaling.policy_name(7) == "unknown"


def test_target_tracking_scales_up_then_stabilizes_then_down():
    p = Params(max_instances=4, max_request_concurrency=2,
               scale_down_window_ms=30000)
    with scaling.History() as h:
        d = h.evaluate(p, Metrics(now_ms=0, queued=5, last_request_ms=0))
        assert (d.desired, d.reason) == (4, Reason.WAKE_FROM_ZERO)
        assert math.isinf(d.utilization)
        assert d.detail == ("queued 5, in flight 0, 0 ready, 0 starting: "
                            "need 4 at 75% of 2 slots")
        d = h.evaluate(p, Metrics(now_ms=1000, in_flight=1, ready=4,
                                  last_request_ms=900))
        assert (d.desired, d.reason) == (4, Reason.STABILIZING)
        assert d.utilization == pytest.approx(1 / 8)
        d = h.evaluate(p, Metrics(now_ms=40000, in_flight=1, ready=4,
                                  last_request_ms=39000))
        assert (d.desired, d.reason) == (1, Reason.DOWN_LOAD)


def test_at_max_and_idle_to_zero():
    p = Params(max_instances=2, idle_to_zero_ms=1000)
    with scaling.History() as h:
        d = h.evaluate(p, Metrics(now_ms=0, queued=100, last_request_ms=0))
        assert (d.desired, d.reason) == (2, Reason.AT_MAX)
        d = h.evaluate(p, Metrics(now_ms=5000, ready=2, last_request_ms=0))
        assert (d.desired, d.reason) == (0, Reason.IDLE_TO_ZERO)
        h.reset()
        # after a reset the idle clock starts again at the next call
        d = h.evaluate(p, Metrics(now_ms=5500, ready=1, last_request_ms=-1))
        assert d.reason != Reason.IDLE_TO_ZERO


def test_time_going_back_is_rejected():
    with scaling.History() as h:
        h.evaluate(Params(), Metrics(now_ms=1000))
        with pytest.raises(nvcf.InvalidArgument) as info:
            h.evaluate(Params(), Metrics(now_ms=999))
        assert "999" in info.value.message
        assert info.value.name == "NVCF_EINVAL"


@pytest.mark.parametrize("fields,message", [
    ({"max_instances": 0}, r"max_instances \(0\) must be >= 1"),
    ({"min_instances": 3, "max_instances": 2}, "min_instances"),
    ({"target_utilization": 0.0}, "target_utilization"),
    ({"scale_up_factor": 1.0}, "scale_up_factor"),
])
def test_invalid_params(fields, message):
    with pytest.raises(nvcf.InvalidArgument, match=message):
        Params(**fields).validate()
    with scaling.History() as h:
        with pytest.raises(nvcf.InvalidArgument, match=message):
            h.evaluate(Params(**fields), Metrics())


def test_negative_count_is_refused_before_c():
    with pytest.raises(ValueError, match=r"min_instances \(-1\) must be "
                                         r">= 0"):
        Params(min_instances=-1).validate()


def test_autoscaling_configuration():
    cfg = {"scaleUpDetails": {"metric": "utilization", "factor": 1.5,
                              "threshold": 80},
           "scaleDownDetails": {"factor": 0.5, "threshold": 20,
                                "stickiness": {"size": "PT10M",
                                               "threshold": "PT5M"}}}
    p = Params.from_autoscaling_configuration(cfg, max_instances=10)
    assert p.policy is Policy.UTILIZATION
    assert (p.scale_up_factor, p.scale_up_threshold) == (1.5, 80.0)
    assert (p.scale_down_factor, p.scale_down_threshold) == (0.5, 20.0)
    assert p.down_stickiness_window_ms == 600000
    assert p.down_stickiness_required_ms == 300000
    assert p.max_instances == 10
    # the JSON text form gives the same result
    import json
    assert Params(max_instances=10).with_autoscaling_configuration(
        json.dumps(cfg)) == p


def test_autoscaling_configuration_errors_name_the_path():
    base = Params()
    with pytest.raises(nvcf.InvalidArgument) as info:
        base.with_autoscaling_configuration(
            {"scaleUpDetails": {"factor": 0.9}})
    assert info.value.message == ("autoscalingConfiguration.scaleUpDetails"
                                  ".factor must be > 1.0, got 0.9")
    with pytest.raises(nvcf.InvalidArgument):
        base.with_autoscaling_configuration("[1, 2]")
    # a failed call leaves the original untouched
    assert base == Params()


def test_utilization_policy_steps():
    p = Params(policy=Policy.UTILIZATION, max_instances=10,
               max_request_concurrency=1, sample_interval_ms=1000)
    with scaling.History() as h:
        d = h.evaluate(p, Metrics(now_ms=0, in_flight=5, ready=5,
                                  last_request_ms=0))
        assert d.desired == 6
        assert d.reason == Reason.UP_LOAD
        d = h.evaluate(p, Metrics(now_ms=500, in_flight=5, ready=5,
                                  last_request_ms=400))
        assert d.desired == 6  # held until the next sample


def test_history_lifecycle():
    h = scaling.History()
    assert not h.closed
    h.close()
    h.close()
    assert h.closed
    with pytest.raises(ValueError, match="History is closed"):
        h.evaluate(Params(), Metrics())


def test_decision_is_immutable():
    with scaling.History() as h:
        d = h.evaluate(Params(), Metrics())
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.desired = 3
