# SPDX-License-Identifier: Apache-2.0
"""The bus binding against a private nats-server: KV, queues, publish,
and the exception each failing C call maps to."""
import pytest

import nvcf
from nvcf import bus as nbus

from conftest import free_port

VID = "5f0c7a3e-1b2d-4c5e-8f90-a1b2c3d4e5f6"


def test_unreachable_server(lib):
    url = "nats://127.0.0.1:%d" % free_port()
    with pytest.raises(nvcf.Unavailable) as info:
        nvcf.Bus(url=url, connect_timeout_ms=300)
    e = info.value
    assert isinstance(e, ConnectionError)
    assert e.name == "NVCF_EUNAVAILABLE"
    assert e.status == -8
    assert e.message.startswith("cannot connect to NATS at %s: " % url)


def test_region_and_close(bus):
    assert bus.region == "local"
    assert not bus.closed
    with bus:
        pass
    assert bus.closed
    bus.close()
    with pytest.raises(ValueError, match="Bus is closed"):
        bus.region


def test_kv_round_trip(bus):
    b = nbus.BUCKET_TASKS
    r1 = bus.kv_put(b, "py.k1", b"one")
    assert r1 > 0
    assert bus.kv_get(b, "py.k1") == (b"one", r1)
    r2 = bus.kv_update(b, "py.k1", "two", r1)
    assert r2 > r1
    assert bus.kv_get(b, "py.k1") == (b"two", r2)
    r3 = bus.kv_create(b, "py.k2", b"")
    assert bus.kv_get(b, "py.k2") == (b"", r3)
    assert sorted(bus.kv_keys(b, "py.>")) == ["py.k1", "py.k2"]
    assert bus.kv_keys(b, "nothing.>") == []
    bus.kv_delete(b, "py.k1")
    bus.kv_delete(b, "py.k1")
    assert bus.kv_keys(b, "py.>") == ["py.k2"]


def test_kv_errors_map_to_exceptions(bus):
    b = nbus.BUCKET_TASKS
    with pytest.raises(nvcf.NotFound) as info:
        bus.kv_get(b, "py.missing")
    assert isinstance(info.value, LookupError)
    assert info.value.name == "NVCF_ENOTFOUND"
    assert "py.missing" in info.value.message
    rev = bus.kv_put(b, "py.c", b"x")
    with pytest.raises(nvcf.AlreadyExists):
        bus.kv_create(b, "py.c", b"y")
    bus.kv_put(b, "py.c", b"z")
    with pytest.raises(nvcf.Conflict) as info:
        bus.kv_update(b, "py.c", b"w", rev)
    assert info.value.status == -6
    assert bus.kv_get(b, "py.c")[0] == b"z"


def test_queue_and_publish(bus):
    with pytest.raises(nvcf.NotFound):
        bus.queue_depth(VID)
    bus.ensure_queue(VID, max_msgs=2)
    assert bus.queue_depth(VID) == (0, 0)
    subject = "rq.local.%s." % VID
    bus.publish(subject + "r1", b"a", msg_id="r1")
    bus.publish(subject + "r2", "b", msg_id="r2")
    assert bus.queue_depth(VID) == (2, 0)
    with pytest.raises(nvcf.QuotaExceeded) as info:
        bus.publish(subject + "r3", b"c", msg_id="r3")
    assert info.value.jetstream_code == 10077
    bus.delete_queue(VID)
    with pytest.raises(nvcf.NotFound):
        bus.queue_depth(VID)


def test_publish_without_stream(bus):
    with pytest.raises(nvcf.NotFound):
        bus.publish("no.stream.here", b"x")


def test_ensure_cluster(bus):
    bus.ensure_cluster("py-cluster")
    bus.kv_put("nvca_py-cluster", "icms.x", b"{}")
    assert bus.kv_keys("nvca_py-cluster") == ["icms.x"]
    with pytest.raises(nvcf.InvalidArgument):
        bus.ensure_cluster("bad.id")
