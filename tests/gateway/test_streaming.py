# SPDX-License-Identifier: Apache-2.0
"""Streamed responses (Server-Sent Events) through the gateway.

A caller that sends "Accept: text/event-stream" gets the function's
status, headers and body bytes as the function writes them. The worker
publishes the head and each piece of body on the gateway's reply subject,
and the gateway relays them with chunked transfer encoding. The pyecho
function's /stream route writes X-Stream-Events events X-Stream-Interval
seconds apart.
"""
import base64
import glob
import http.client as httpclient
import json
import os
import re
import sys
import time

import pytest

import nvcfstack
from nvcfstack import http, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tasks"))
import rawnats  # noqa: E402

PEXEC = "/v2/nvcf/pexec/functions/"
STATUS = "/v2/nvcf/pexec/status/"
SSE = "text/event-stream"


@pytest.fixture(scope="module")
def s():
    # A 1 s ack wait shows that in-progress acks cover a longer stream.
    with nvcfstack.Stack(ack_wait_ms=1000) as stack:
        yield stack


@pytest.fixture(scope="module")
def streamer(s):
    """A version of pyecho whose inference URL is /stream."""
    fn = nvcfstack.create_function(s, s.admin_key, name="streamer",
                                   inference_url="/stream")
    nvcfstack.deploy(s, s.admin_key, fn["id"], fn["versionId"])
    return fn


@pytest.fixture
def nats(s):
    c = rawnats.Client(s.nats_url)
    yield c
    c.close()


class EventStream:
    """One streamed invocation, read event by event with arrival times."""

    def __init__(self, s, fn, headers=None, timeout=30):
        port = int(s.invoke_url.rsplit(":", 1)[1])
        self.conn = httpclient.HTTPConnection("127.0.0.1", port,
                                              timeout=timeout)
        hdrs = {"Authorization": "Bearer " + s.admin_key, "Accept": SSE,
                "Content-Type": "application/json"}
        hdrs.update(headers or {})
        self.started = time.monotonic()
        self.conn.request("POST", PEXEC + fn["id"], body=b"{}",
                          headers=hdrs)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = nvcfstack._Headers(self.resp.getheaders())
        self.request_id = self.headers.get("NVCF-REQID")
        self.buffer = b""

    def readline(self):
        """One line of the body, b"" at its end.

        HTTPResponse.readline() reports a truncated chunked body as a
        normal end, so lines are cut from read1(), which raises.
        """
        while b"\n" not in self.buffer:
            data = self.resp.read1(65536)
            if not data:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def next_event(self):
        """(seconds since the request, {field: value}), or None at the end.

        Raises http.client.IncompleteRead when the connection closes
        without the last chunk, which is how the gateway ends a stream
        that broke off.
        """
        fields = {}
        while True:
            line = self.readline()
            if not line:
                return None
            text = line.decode().rstrip("\r\n")
            if text == "":
                if fields:
                    return time.monotonic() - self.started, fields
                continue
            name, _, value = text.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value

    def read_all(self):
        """Every remaining event; stops at the end of the stream."""
        events = []
        while True:
            event = self.next_event()
            if event is None:
                return events
            events.append(event)

    def close(self):
        self.resp.close()
        self.conn.close()


def event_numbers(events):
    return [json.loads(fields["data"])["n"] for _, fields in events]


def instance_logs(s):
    text = ""
    for path in glob.glob(os.path.join(s.dir, "nvca", "instances", "*.log")):
        with open(path, errors="replace") as f:
            text += f.read()
    return text


def stored_result(nats, rid):
    """Fields of the last InvokeResult stored on res.{rid}.

    The worker stores it just after the caller got the end of the stream,
    so this waits for it.
    """
    def get():
        r = nats.request("$JS.API.STREAM.MSG.GET.NVCF_RESULTS",
                         {"last_by_subj": "res." + rid})
        return r.get("message")
    msg = wait_for(get, timeout=10, what="the stored result of " + rid)
    return rawnats.pb_decode(base64.b64decode(msg["data"]))


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def stream_message(rid, seq, body):
    """An InvokeResult of kind RESULT_KIND_STREAM (5), protobuf-encoded."""
    rid = rid.encode()
    return (b"\x0a" + varint(len(rid)) + rid + b"\x10\x05" +
            b"\x2a" + varint(len(body)) + body +
            varint(16 << 3) + varint(seq))


def test_events_arrive_as_written(s, nats, streamer):
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "5",
                                               "X-Stream-Interval": "0.3"})
    try:
        events = stream.read_all()
    finally:
        stream.close()
    assert stream.status == 200
    assert stream.headers["Content-Type"] == SSE
    assert stream.headers["Cache-Control"] == "no-cache"
    assert "X-Echo-Pid" in stream.headers
    assert stream.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in stream.headers
    assert stream.headers["NVCF-STATUS"] == "fulfilled"
    assert event_numbers(events) == [1, 2, 3, 4, 5]
    assert [f["event"] for _, f in events] == ["tick"] * 5
    assert [f["id"] for _, f in events] == ["1", "2", "3", "4", "5"]
    first, last = events[0][0], events[-1][0]
    # Four intervals of 0.3 s lie between the first and the last event.
    assert last - first >= 1.1, events
    assert first < last / 3, events

    # The stored FINAL marks the response as streamed (field 17) and
    # keeps no body (field 5).
    fields = stored_result(nats, stream.request_id)
    assert fields[2] == [4]
    assert fields[17] == [1]
    assert 5 not in fields
    assert fields[16] == [6]


def test_stream_outlasts_poll_window(s, streamer):
    stream = EventStream(s, streamer, headers={"NVCF-POLL-SECONDS": "1",
                                               "X-Stream-Events": "11",
                                               "X-Stream-Interval": "0.2"})
    try:
        events = stream.read_all()
    finally:
        stream.close()
    assert stream.status == 200
    assert event_numbers(events) == list(range(1, 12))
    assert events[-1][0] >= 2.0, events


def test_stream_outlasts_ack_wait(s, streamer):
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "6",
                                               "X-Stream-Interval": "0.5"})
    try:
        events = stream.read_all()
    finally:
        stream.close()
    rid = stream.request_id
    assert event_numbers(events) == [1, 2, 3, 4, 5, 6]
    # Without in-progress acks JetStream would redeliver the request
    # after 1 s, and the function would see it twice.
    time.sleep(1.5)
    assert instance_logs(s).count("pyecho: started %s" % rid) == 1
    assert "request %s already has a final result" % rid not in \
        s.log("nvca")


def test_plain_request_gets_buffered_answer(s, streamer):
    r = http("POST", s.invoke_url + PEXEC + streamer["id"], key=s.admin_key,
             json_body={}, headers={"X-Stream-Events": "5",
                                    "X-Stream-Interval": "0.05"})
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Content-Length"] == str(len(r.body))
    events = r.json()["events"]
    assert len(events) == 5
    assert events[0].startswith("id: 1\nevent: tick\n")


def test_poll_of_streamed_request_is_404(s, streamer):
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "2",
                                               "X-Stream-Interval": "0"})
    try:
        assert len(stream.read_all()) == 2
    finally:
        stream.close()
    r = http("GET", s.invoke_url + STATUS + stream.request_id,
             key=s.admin_key)
    assert r.status == 404, r
    assert "streamed its response" in r.json()["detail"]
    assert r.headers["NVCF-REQID"] == stream.request_id


def test_disconnect_cancels_the_call(s, streamer):
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "50",
                                               "X-Stream-Interval": "0.2"})
    rid = stream.request_id
    try:
        assert stream.next_event() is not None
        assert stream.next_event() is not None
    finally:
        stream.close()
    wait_for(lambda: "request %s: the caller disconnected" % rid
             in s.log("gateway"), timeout=10,
             what="the gateway to notice the caller left")
    wait_for(lambda: "request %s canceled" % rid in s.log("nvca"),
             timeout=10, what="the worker to cancel the call")
    wait_for(lambda: "pyecho: stream %s closed by the client" % rid
             in instance_logs(s), timeout=10,
             what="the function to see its connection closed")
    assert "pyecho: stream %s sent" % rid not in instance_logs(s)


def test_function_failure_truncates_stream(s, streamer):
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "5",
                                               "X-Stream-Interval": "0.05",
                                               "X-Stream-Fail-After": "2"})
    events = []
    try:
        with pytest.raises(httpclient.IncompleteRead):
            while True:
                event = stream.next_event()
                assert event is not None, "stream ended normally"
                events.append(event)
    finally:
        stream.close()
    # What the function wrote before it broke off still arrives.
    assert event_numbers(events) == [1, 2]
    assert "request %s: the stream broke off at the worker" % \
        stream.request_id in s.log("gateway")


def test_lost_piece_ends_stream(s, nats, streamer):
    reply = re.search(r"results on (nvcf\.gw\.[0-9a-f-]+)",
                      s.log("gateway")).group(1)
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "50",
                                               "X-Stream-Interval": "0.2"})
    rid = stream.request_id
    events = []
    try:
        events.append(stream.next_event())
        # A piece far ahead of the next one stands for lost messages.
        forged = stream_message(rid, 1000, b"data: forged\n\n")
        nats.sock.sendall(b"PUB %s %d\r\n%s\r\n" % (
            reply.encode(), len(forged), forged))
        nats._ping()
        with pytest.raises(httpclient.IncompleteRead):
            while True:
                event = stream.next_event()
                assert event is not None, "stream ended normally"
                events.append(event)
    finally:
        stream.close()
    numbers = event_numbers(events)
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) < 50
    assert all("forged" not in f.get("data", "") for _, f in events)
    assert "request %s: stream piece 1000 arrived where piece" % rid \
        in s.log("gateway")
    wait_for(lambda: "request %s canceled" % rid in s.log("nvca"),
             timeout=10, what="the worker to cancel the call")


def test_slow_caller_is_cut_off(s, streamer):
    # 64 KiB events as fast as the function writes them, to a caller that
    # reads nothing until the gateway has given up on it.
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "4000",
                                               "X-Stream-Interval": "0",
                                               "X-Stream-Bytes": "65536"})
    rid = stream.request_id
    try:
        wait_for(lambda: "request %s: caller reads too slowly" % rid
                 in s.log("gateway"), timeout=30,
                 what="the gateway to cut off the slow caller")
        wait_for(lambda: "request %s canceled" % rid in s.log("nvca"),
                 timeout=10, what="the worker to cancel the call")
        with pytest.raises(httpclient.IncompleteRead):
            while stream.next_event() is not None:
                pass
    finally:
        stream.close()


def test_no_head_in_window_gives_504(s, streamer):
    started = time.monotonic()
    stream = EventStream(s, streamer, headers={"NVCF-POLL-SECONDS": "1",
                                               "X-Stream-Head-Delay": "6"})
    try:
        body = stream.resp.read()
    finally:
        stream.close()
    elapsed = time.monotonic() - started
    assert stream.status == 504
    assert body == b""
    assert stream.headers["NVCF-STATUS"] == "errored"
    # The window (1 s) plus the 2 s a worker gets for the head.
    assert 2.9 <= elapsed < 6, elapsed
    wait_for(lambda: "cancel of request %s received" % stream.request_id
             in s.log("nvca"), timeout=10,
             what="the worker to receive the cancel")


def cpu_seconds(pid):
    """User plus system CPU time of process `pid`, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_quiet_stream_does_not_spin(s, streamer):
    # Between events the content reader has suspended the connection; a
    # reader that polled instead would burn a core for these 3 s.
    pid = s.procs["gateway"].pid
    stream = EventStream(s, streamer, headers={"X-Stream-Events": "4",
                                               "X-Stream-Interval": "1"})
    try:
        assert stream.next_event() is not None
        before = cpu_seconds(pid)
        events = stream.read_all()
        used = cpu_seconds(pid) - before
    finally:
        stream.close()
    assert len(events) == 3
    assert used < 0.3, "gateway used %.2f s of CPU in 3 s" % used
