# SPDX-License-Identifier: Apache-2.0
"""The scaling policy (nvcf/scaling.h): load in, desired instances out.

    params = nvcf.scaling.Params(max_instances=4, max_request_concurrency=2)
    with nvcf.scaling.History() as h:
        d = h.evaluate(params, nvcf.scaling.Metrics(now_ms=0, queued=5))
        d.desired, d.reason, d.utilization, d.detail

Pure functions: nothing here reads a clock or does I/O, so a notebook can
replay a recorded load and see what the autoscaler would have done.
"""
import ctypes
import dataclasses
import enum
import json

from . import _lib
from .errors import _text, check

_c = ctypes
_status = _c.c_int

PARAMS_VERSION = 1
METRICS_VERSION = 1
SAMPLES_MAX = 60
CONCURRENCY_MAX = 16384


class Policy(enum.IntEnum):
    """nvcf_scaling_policy_t."""
    TARGET_TRACKING = 0
    UTILIZATION = 1

    @property
    def label(self):
        """The library's name ("target-tracking", ...)."""
        return policy_name(self)


class Reason(enum.IntEnum):
    """nvcf_scaling_reason_t: why a decision is what it is."""
    STEADY = 0
    UP_LOAD = 1
    DOWN_LOAD = 2
    WAKE_FROM_ZERO = 3
    IDLE_TO_ZERO = 4
    AT_MIN = 5
    AT_MAX = 6
    STABILIZING = 7
    PENDING_START = 8

    @property
    def label(self):
        """The library's name ("wake-from-zero", ...)."""
        return reason_name(self)


class _CParams(_c.Structure):
    _fields_ = [
        ("version", _c.c_uint),
        ("policy", _c.c_int),
        ("min_instances", _c.c_uint32),
        ("max_instances", _c.c_uint32),
        ("max_request_concurrency", _c.c_uint32),
        ("target_utilization", _c.c_double),
        ("scale_down_window_ms", _c.c_int64),
        ("idle_to_zero_ms", _c.c_int64),
        ("scale_up_threshold", _c.c_double),
        ("scale_down_threshold", _c.c_double),
        ("scale_up_factor", _c.c_double),
        ("scale_down_factor", _c.c_double),
        ("up_stickiness_window_ms", _c.c_int64),
        ("up_stickiness_required_ms", _c.c_int64),
        ("down_stickiness_window_ms", _c.c_int64),
        ("down_stickiness_required_ms", _c.c_int64),
        ("sample_interval_ms", _c.c_int64),
    ]


class _CMetrics(_c.Structure):
    _fields_ = [
        ("version", _c.c_uint),
        ("now_ms", _c.c_int64),
        ("queued", _c.c_uint64),
        ("in_flight", _c.c_uint64),
        ("ready", _c.c_uint32),
        ("starting", _c.c_uint32),
        ("last_request_ms", _c.c_int64),
    ]


class _CDecision(_c.Structure):
    _fields_ = [
        ("desired", _c.c_uint32),
        ("reason", _c.c_int),
        ("utilization", _c.c_double),
        ("detail", _c.c_char * 160),
    ]


_lib.OPTIONAL["scaling"] = [
    ("nvcf_scaling_history_new", _status, [_c.POINTER(_c.c_void_p)]),
    ("nvcf_scaling_history_free", None, [_c.c_void_p]),
    ("nvcf_scaling_history_reset", None, [_c.c_void_p]),
    ("nvcf_scaling_params_validate", _status, [_c.POINTER(_CParams)]),
    ("nvcf_scaling_params_from_json", _status,
     [_c.POINTER(_CParams), _c.c_char_p]),
    ("nvcf_scaling_evaluate", _status,
     [_c.POINTER(_CParams), _c.POINTER(_CMetrics), _c.c_void_p,
      _c.POINTER(_CDecision)]),
    ("nvcf_scaling_reason_name", _c.c_char_p, [_c.c_int]),
    ("nvcf_scaling_policy_name", _c.c_char_p, [_c.c_int]),
]


def _scaling_lib():
    lib = _lib.lib()
    lib.require("scaling")
    return lib


def reason_name(reason):
    """Returns the name of a Reason ("wake-from-zero"), or "unknown"."""
    return _text(_scaling_lib().nvcf_scaling_reason_name(int(reason)))


def policy_name(policy):
    """Returns the name of a Policy ("utilization"), or "unknown"."""
    return _text(_scaling_lib().nvcf_scaling_policy_name(int(policy)))


_UNSIGNED = ("min_instances", "max_instances", "max_request_concurrency")


@dataclasses.dataclass
class Params:
    """One version's scaling parameters (nvcf_scaling_params).

    The defaults are the library's (NVCF_SCALING_PARAMS_INIT); see
    nvcf/scaling.h for each field's range. Times are in ms.
    """
    policy: Policy = Policy.TARGET_TRACKING
    min_instances: int = 0
    max_instances: int = 1
    max_request_concurrency: int = 1
    target_utilization: float = 0.75
    scale_down_window_ms: int = 30000
    idle_to_zero_ms: int = 300000
    scale_up_threshold: float = 70.0
    scale_down_threshold: float = 30.0
    scale_up_factor: float = 1.2
    scale_down_factor: float = 0.8
    up_stickiness_window_ms: int = 0
    up_stickiness_required_ms: int = 0
    down_stickiness_window_ms: int = 0
    down_stickiness_required_ms: int = 0
    sample_interval_ms: int = 60000

    def _to_c(self):
        c = _CParams(version=PARAMS_VERSION)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in (int, Policy):
                value = int(value)
                # ctypes would wrap a negative count into a huge one
                if value < 0 and f.name in _UNSIGNED:
                    raise ValueError("%s (%d) must be >= 0" % (f.name,
                                                               value))
            setattr(c, f.name, value)
        return c

    @classmethod
    def _from_c(cls, c):
        values = {f.name: getattr(c, f.name) for f in dataclasses.fields(cls)}
        try:
            values["policy"] = Policy(values["policy"])
        except ValueError:
            pass
        return cls(**values)

    def validate(self):
        """Checks every field with the library; raises InvalidArgument
        naming the field and its value. Returns self."""
        c = self._to_c()
        check(_scaling_lib().nvcf_scaling_params_validate(_c.byref(c)))
        return self

    def with_autoscaling_configuration(self, config):
        """A copy with an NVCF `autoscalingConfiguration` applied.

        @config is a dict or JSON text ({"scaleUpDetails": ...,
        "scaleDownDetails": ...}); the copy uses the utilization policy
        unless config sets "policy": "TARGET_TRACKING". Raises
        InvalidArgument naming the JSON path and value.
        """
        text = config if isinstance(config, (str, bytes)) else \
            json.dumps(config)
        if isinstance(text, str):
            text = text.encode("utf-8")
        c = self._to_c()
        check(_scaling_lib().nvcf_scaling_params_from_json(_c.byref(c),
                                                           text))
        return self._from_c(c)

    @classmethod
    def from_autoscaling_configuration(cls, config, **fields):
        """Params(**fields) with an autoscalingConfiguration applied."""
        return cls(**fields).with_autoscaling_configuration(config)


@dataclasses.dataclass
class Metrics:
    """One measurement of a version's load (nvcf_scaling_metrics).

    Times are ms on the caller's monotonic clock; last_request_ms is
    negative when no request was seen.
    """
    now_ms: int = 0
    queued: int = 0
    in_flight: int = 0
    ready: int = 0
    starting: int = 0
    last_request_ms: int = -1

    def _to_c(self):
        return _CMetrics(METRICS_VERSION, int(self.now_ms), int(self.queued),
                         int(self.in_flight), int(self.ready),
                         int(self.starting), int(self.last_request_ms))


@dataclasses.dataclass(frozen=True)
class Decision:
    """Result of nvcf_scaling_evaluate(): the total instances the version
    should have, the reason, the utilization seen and one explaining line.

    utilization is a fraction, and inf when work waits and no instance
    exists.
    """
    desired: int
    reason: Reason
    utilization: float
    detail: str


class History:
    """State of one version's scaling between evaluations.

    A context manager; close() frees it (also on garbage collection).
    One thread at a time may use one history.
    """

    def __init__(self):
        lib = _scaling_lib()
        handle = _c.c_void_p()
        check(lib.nvcf_scaling_history_new(_c.byref(handle)))
        self._handle = handle
        self._lib = lib

    def _h(self):
        if self._handle is None:
            raise ValueError("the History is closed: create a new one")
        return self._handle

    def evaluate(self, params, metrics):
        """Returns the Decision for @metrics under @params, updating the
        history. Raises InvalidArgument for invalid params or a now_ms
        before the previous evaluation's."""
        cp = params._to_c()
        cm = metrics._to_c()
        out = _CDecision()
        check(self._lib.nvcf_scaling_evaluate(_c.byref(cp), _c.byref(cm),
                                              self._h(), _c.byref(out)))
        try:
            reason = Reason(out.reason)
        except ValueError:
            reason = out.reason
        return Decision(out.desired, reason, out.utilization,
                        out.detail.decode("utf-8", "replace"))

    def reset(self):
        """Forgets everything, as if new."""
        self._lib.nvcf_scaling_history_reset(self._h())

    def close(self):
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._lib.nvcf_scaling_history_free(handle)

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def evaluate(params, metrics, history):
    """Module-level form of History.evaluate()."""
    return history.evaluate(params, metrics)


def available():
    """True when the loaded libnvcf exports the scaling module."""
    return _lib.lib().has("scaling")
