# SPDX-License-Identifier: Apache-2.0
"""Status names, error mapping, the error detail channel, the log handler
and the request rules of nvcf/request.h."""
import logging
import threading

import pytest

import nvcf
from nvcf import errors

ALL_STATUSES = [
    (0, "NVCF_OK", None),
    (-1, "NVCF_ERROR", nvcf.NvcfError),
    (-2, "NVCF_EINVAL", nvcf.InvalidArgument),
    (-3, "NVCF_ENOMEM", nvcf.OutOfMemory),
    (-4, "NVCF_ENOTFOUND", nvcf.NotFound),
    (-5, "NVCF_EEXISTS", nvcf.AlreadyExists),
    (-6, "NVCF_ECONFLICT", nvcf.Conflict),
    (-7, "NVCF_ETIMEDOUT", nvcf.Timeout),
    (-8, "NVCF_EUNAVAILABLE", nvcf.Unavailable),
    (-9, "NVCF_EQUOTA", nvcf.QuotaExceeded),
    (-10, "NVCF_EPERM", nvcf.PermissionDenied),
    (-11, "NVCF_EUNAUTHENTICATED", nvcf.Unauthenticated),
    (-12, "NVCF_EIO", nvcf.IOFailure),
    (-13, "NVCF_EUSER", nvcf.StoppedByCallback),
    (-14, "NVCF_ECANCELED", nvcf.Canceled),
    (-15, "NVCF_EPROTO", nvcf.ProtocolError),
]


@pytest.mark.parametrize("status,name,cls", ALL_STATUSES)
def test_status_table(lib, status, name, cls):
    assert nvcf.status_name(status) == name
    assert nvcf.status_str(status)
    if cls is None:
        assert nvcf.check(status) == 0
    else:
        assert errors.exception_class(status) is cls
        assert issubclass(cls, nvcf.NvcfError)


def test_unknown_status(lib):
    assert nvcf.status_name(-999) == "NVCF_UNKNOWN"
    assert nvcf.check(3) == 3


def test_check_without_matching_detail_uses_status_text(lib):
    nvcf.error_clear()
    with pytest.raises(nvcf.Conflict) as info:
        nvcf.check(-6)
    e = info.value
    assert (e.status, e.name) == (-6, "NVCF_ECONFLICT")
    assert e.message == "conflicting update of a stale revision"
    assert str(e) == "NVCF_ECONFLICT: conflicting update of a stale revision"


def test_c_failure_raises_with_c_message(lib):
    nvcf.error_clear()
    assert nvcf.error_last().status == 0
    with pytest.raises(nvcf.InvalidArgument) as info:
        nvcf.poll_seconds("3601")
    e = info.value
    assert isinstance(e, ValueError)
    assert e.status == -2
    assert e.name == "NVCF_EINVAL"
    assert e.message == ("invalid NVCF-POLL-SECONDS '3601': expected an "
                         "integer from 1 to 3600")
    # the library marks a rejected header value as the client's error
    assert (e.http_status, e.jetstream_code) == (400, 0)
    detail = nvcf.error_last()
    assert (detail.status, detail.name, detail.message) == (
        -2, "NVCF_EINVAL", e.message)
    nvcf.error_clear()
    assert nvcf.error_last().status == 0


def test_error_detail_is_per_thread(lib):
    with pytest.raises(nvcf.InvalidArgument):
        nvcf.poll_seconds("x")
    seen = []

    def other():
        seen.append(nvcf.error_last().status)
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [0]
    assert nvcf.error_last().status == -2


def test_errors_pickle(lib):
    import pickle
    with pytest.raises(nvcf.InvalidArgument) as info:
        nvcf.poll_seconds("-1")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is nvcf.InvalidArgument
    assert (copy.status, copy.name, copy.message) == (
        info.value.status, info.value.name, info.value.message)


# -- request rules -----------------------------------------------------------

def test_request_ids(lib):
    ids = {nvcf.new_request_id() for _ in range(100)}
    assert len(ids) == 100
    for i in ids:
        assert len(i) == 36
        assert nvcf.is_valid_id(i)
    assert nvcf.is_valid_id("not-an-id") is False
    assert nvcf.is_valid_id("") is False
    assert nvcf.is_valid_id(None) is False
    assert nvcf.is_valid_id(b"9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d")


@pytest.mark.parametrize("value,expected", [
    (None, 60), ("0", 1), ("1", 1), ("60", 60), ("3600", 3600), (5, 5),
    (0, 1)])
def test_poll_seconds(lib, value, expected):
    assert nvcf.poll_seconds(value) == expected


@pytest.mark.parametrize("value", ["3601", "-1", "abc", "", "1.5", "5s",
                                   3601, -3])
def test_poll_seconds_rejected(lib, value):
    with pytest.raises(nvcf.InvalidArgument,
                       match="invalid NVCF-POLL-SECONDS"):
        nvcf.poll_seconds(value)


def test_poll_seconds_type(lib):
    with pytest.raises(TypeError, match="poll seconds must be str or "
                                        "bytes, not float"):
        nvcf.poll_seconds(1.5)


def test_states(lib):
    assert [s.label for s in nvcf.RequestState] == [
        "queued", "in-progress", "fulfilled", "errored", "timed-out",
        "canceled"]
    assert nvcf.state_name(2) == "fulfilled"


@pytest.mark.parametrize("name,ok", [
    ("Authorization", False), ("authorization", False), ("Host", False),
    ("Connection", False), ("Transfer-Encoding", False),
    ("Proxy-Authorization", False), ("Content-Length", False),
    ("function-id", False), ("NVCF-REQID", False), ("nvcf-ncaid", False),
    ("Content-Type", True), ("X-Trace", True), ("Accept", True)])
def test_header_forwardable(lib, name, ok):
    assert nvcf.header_forwardable(name) is ok


def test_forwardable_headers(lib):
    got = nvcf.forwardable_headers({"Authorization": "Bearer x",
                                    "X-A": "1", "Host": "h",
                                    "Content-Type": "text/plain"})
    assert got == {"X-A": "1", "Content-Type": "text/plain"}
    assert nvcf.forwardable_headers([("x-b", "2"), ("TE", "t")]) == {
        "x-b": "2"}


@pytest.mark.parametrize("code,value", [
    (200, "fulfilled"), (204, "fulfilled"), (302, "fulfilled"),
    (202, "in-progress"), (400, "errored"), (500, "errored"),
    (199, "errored")])
def test_status_header(lib, code, value):
    assert nvcf.status_header(code) == value


# -- log handler -------------------------------------------------------------

def test_log_level_names(lib):
    assert [nvcf.log_level_name(lv) for lv in nvcf.LogLevel] == [
        "error", "warn", "info", "debug", "trace"]


def test_log_handler_receives_library_records(lib, nats_url,
                                              no_log_handler):
    records = []
    assert nvcf.set_log_handler(
        lambda *r: records.append(r), nvcf.LogLevel.INFO) is None
    with nvcf.Bus(url=nats_url, name="log-test"):
        pass
    assert (nvcf.LogLevel.INFO, "bus",
            "connected to %s as 'log-test'" % nats_url) in records
    assert all(isinstance(r[0], nvcf.LogLevel) for r in records)


def test_log_level_filters(lib, nats_url, no_log_handler):
    records = []
    nvcf.set_log_handler(lambda *r: records.append(r), nvcf.LogLevel.WARN)
    with nvcf.Bus(url=nats_url):
        pass
    assert [r for r in records if r[0] > nvcf.LogLevel.WARN] == []
    assert not any("connected to" in r[2] for r in records)


def test_log_handler_removed(lib, nats_url, no_log_handler):
    records = []

    def handler(*r):
        records.append(r)
    nvcf.set_log_handler(handler, nvcf.LogLevel.TRACE)
    assert nvcf.log_handler() is handler
    assert nvcf.set_log_handler(None) is handler
    assert nvcf.log_handler() is None
    with nvcf.Bus(url=nats_url):
        pass
    assert records == []


def test_log_handler_exception_does_not_break_calls(lib, nats_url,
                                                    no_log_handler,
                                                    monkeypatch):
    calls = []
    reported = []
    monkeypatch.setattr("sys.unraisablehook", reported.append)

    def bad(*r):
        calls.append(r)
        raise RuntimeError("handler failure")
    nvcf.set_log_handler(bad, nvcf.LogLevel.INFO)
    with nvcf.Bus(url=nats_url) as b:
        assert b.region == "local"
    assert calls
    assert reported
    assert all(isinstance(r.exc_value, RuntimeError) for r in reported)


def test_log_to_logging(lib, nats_url, no_log_handler, caplog):
    caplog.set_level(logging.DEBUG, logger="nvcf")
    nvcf.log_to_logging(level=nvcf.LogLevel.INFO)
    with nvcf.Bus(url=nats_url, name="logging-test"):
        pass
    hits = [r for r in caplog.records if r.name == "nvcf.bus" and
            r.getMessage() == "connected to %s as 'logging-test'" %
            nats_url]
    assert len(hits) == 1
    assert hits[0].levelno == logging.INFO
