# SPDX-License-Identifier: Apache-2.0
"""The routing binding (nvcf/routing.h). Skipped while the loaded
libnvcf does not export the module (libnvcf.sym lacks its symbols)."""
import pytest

import nvcf
from nvcf import routing
from nvcf.routing import (Cluster, Gpu, InstanceType, PlacementMode,
                          PlacementSpec, RouteReason)

NOW = 1_700_000_000_000


@pytest.fixture(autouse=True)
def need_routing(lib):
    if not lib.has("routing"):
        pytest.skip("this libnvcf does not export nvcf/routing.h")


def l40s(allocated=0):
    return Gpu("L40S", 8, allocated, [InstanceType("NCP.GPU.L40S_1x", 1),
                                      InstanceType("NCP.GPU.L40S_2x", 2)])


@pytest.fixture
def inv():
    with routing.Inventory() as i:
        i.add_cluster(Cluster("c1", [l40s(6)], region="us-east",
                              group="g", heartbeat_ms=NOW))
        i.add_cluster(Cluster("c2", [l40s(0)], region="eu-west",
                              group="g", heartbeat_ms=NOW,
                              attributes=["fast"]))
        yield i


def test_inventory_round_trip(inv):
    assert len(inv) == 2
    c1 = inv.cluster(0)
    assert (c1.cluster_id, c1.name, c1.group, c1.region) == (
        "c1", "c1", "g", "us-east")
    assert c1.gpus == [l40s(6)]
    assert inv.clusters()[1].attributes == ["fast"]
    assert inv.find("c2") == 1
    with pytest.raises(IndexError, match="out of range"):
        inv.cluster(2)


def test_bad_record_names_the_field(inv):
    with pytest.raises(nvcf.InvalidArgument, match="capacity"):
        inv.add_cluster({"clusterId": "c3", "heartbeatAtMs": NOW,
                         "gpus": [{"name": "L40S", "capacity": -1,
                                   "instanceTypes": []}]})
    assert len(inv) == 2


def test_health(inv):
    assert inv.healthy(0, NOW + 1000)
    assert not inv.healthy(0, NOW + 31000)
    assert inv.healthy(0, NOW + 31000, heartbeat_timeout_ms=60000)
    assert inv.remove_unhealthy(NOW + 31000) == 2
    assert len(inv) == 0


def test_pack_ranks_by_free_gpus(inv):
    route = inv.place(PlacementSpec("L40S", "NCP.GPU.L40S_2x",
                                    instance_count=6, now_ms=NOW))
    assert [(e.cluster_id, e.free_slots, e.assigned)
            for e in route.eligible] == [("c2", 4, 4), ("c1", 1, 1)]
    assert route.unplaced == 1
    assert route.excluded == []
    assert "1 instance did not fit" in route.explanation


def test_spread_and_exclusions(inv):
    route = inv.place(PlacementSpec("L40S", "NCP.GPU.L40S_1x",
                                    instance_count=2, now_ms=NOW,
                                    mode=PlacementMode.SPREAD))
    assert route.assignments == {"c2": 1, "c1": 1}
    route = inv.place(PlacementSpec("l40s", "NCP.GPU.L40S_1x",
                                    instance_count=1, now_ms=NOW,
                                    regions=("us-east",)))
    assert route.assignments == {"c1": 1}
    assert route.excluded == [routing.Exclusion(
        "c2", RouteReason.NOT_IN_REGIONS,
        "cluster c2: region eu-west not in regions [us-east]")]
    route = inv.place(PlacementSpec("L40S", "NCP.GPU.L40S_1x",
                                    now_ms=NOW, exclude=("c2",),
                                    attributes=("fast",)))
    assert [(x.cluster_id, x.reason) for x in route.excluded] == [
        ("c1", RouteReason.MISSING_ATTRIBUTE),
        ("c2", RouteReason.EXCLUDED_BY_CALLER)]
    assert route.unplaced == 1


def test_validate_spec(inv):
    assert inv.validate_spec(PlacementSpec("L40S", "NCP.GPU.L40S_1x")) \
        is None
    with pytest.raises(nvcf.InvalidArgument) as info:
        inv.validate_spec(PlacementSpec("H100", "NCP.GPU.H100_1x"))
    assert info.value.message == "gpu: no cluster offers GPU 'H100'; " \
                                 "GPUs: [L40S]"
    with pytest.raises(nvcf.InvalidArgument, match="gpu"):
        inv.place(PlacementSpec("", "x"))


def test_cluster_groups(inv):
    body = inv.cluster_groups("acct")
    (group,) = body["clusterGroups"]
    assert group["name"] == "g"
    assert group["ncaId"] == "acct"
    assert [c["id"] for c in group["clusters"]] == ["c1", "c2"]


def test_remove(inv):
    inv.remove("c1")
    assert [c.cluster_id for c in inv.clusters()] == ["c2"]
    with pytest.raises(nvcf.NotFound, match="'c1'"):
        inv.remove("c1")


def test_names():
    assert routing.create_subject("c1", "L40S", "NCP.GPU.L40S_1x") == \
        "Create.NVCA.Function.c1.L40S.NCP|GPU|L40S_1x"
    assert routing.create_subject(
        "c1", "L40S", "x", routing.WorkloadKind.TASK) == \
        "Create.NVCA.Task.c1.L40S.x"
    assert routing.create_consumer("c1") == \
        "CreateNvcaFunctionTaskStream-c1"
    assert routing.create_filter("c1") == "Create.NVCA.*.c1.*.*"
    assert routing.terminate_subject("c1") == "Terminate.NVCA.c1"
    assert routing.terminate_consumer("c1") == "TerminateNvcaStream-c1"
    with pytest.raises(nvcf.InvalidArgument, match="cluster id 'c.1'"):
        routing.create_consumer("c.1")
    assert routing.reason_name(RouteReason.NO_CAPACITY) == "NO_CAPACITY"
    assert routing.reason_name(77) == "UNKNOWN"
