# SPDX-License-Identifier: Apache-2.0
"""A raw NATS client and a protobuf wire decoder (standard library only).

Enough to watch the orders nvcf-api publishes, read KV records and publish
to JetStream as a cluster agent would.
"""
import base64
import json
import socket
import time
import urllib.parse


class Client:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port),
                                             timeout=10)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n'
                          b"SUB _INBOX.raw.> 1\r\n")
        self.sid = 1
        self.seq = 0
        self.pending = []  # (sid, subject, payload) read while waiting

    def close(self):
        self.sock.close()

    def subscribe(self, subject):
        """Core subscription; returns its id. Flushed before returning."""
        self.sid += 1
        self.sock.sendall(b"SUB %s %d\r\n" % (subject.encode(), self.sid))
        self._ping()
        return self.sid

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            line = self.file.readline()
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(10)
        if not line:
            raise ConnectionError("NATS connection closed")
        parts = line.split()
        if not parts:
            return ("other", None, None)
        if parts[0] == b"PING":
            self.sock.sendall(b"PONG\r\n")
            return ("other", None, None)
        if parts[0] == b"PONG":
            return ("pong", None, None)
        if parts[0] not in (b"MSG", b"HMSG"):
            return ("other", None, None)
        size = int(parts[-1])
        body = self.file.read(size + 2)[:size]
        if parts[0] == b"HMSG":
            body = body[int(parts[-2]):]
        return (int(parts[2]), parts[1].decode(), body)

    def _ping(self):
        self.sock.sendall(b"PING\r\n")
        while True:
            kind, subject, body = self._read(10)
            if kind == "pong":
                return
            if isinstance(kind, int):
                self.pending.append((kind, subject, body))

    def next_msg(self, sid, timeout=10.0):
        """The next (subject, payload) on subscription `sid`."""
        for i, (s, subject, body) in enumerate(self.pending):
            if s == sid:
                del self.pending[i]
                return subject, body
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self._read(max(0.05, deadline - time.monotonic()))
            if got is None:
                break
            kind, subject, body = got
            if kind == sid:
                return subject, body
            if isinstance(kind, int):
                self.pending.append((kind, subject, body))
        raise TimeoutError("no message on subscription %d" % sid)

    def request(self, subject, payload):
        """Publishes with a reply inbox and returns the reply (JSON)."""
        self.seq += 1
        reply = "_INBOX.raw.%d" % self.seq
        if not isinstance(payload, bytes):
            payload = json.dumps(payload).encode()
        self.sock.sendall(b"PUB %s %s %d\r\n%s\r\n" % (
            subject.encode(), reply.encode(), len(payload), payload))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = self._read(deadline - time.monotonic())
            if got is None:
                break
            kind, subj, body = got
            if kind == 1 and subj == reply:
                return json.loads(body)
            if isinstance(kind, int):
                self.pending.append((kind, subj, body))
        raise TimeoutError("no reply on " + subject)

    def kv_get(self, bucket, key):
        r = self.request("$JS.API.STREAM.MSG.GET.KV_" + bucket,
                         {"last_by_subj": "$KV.%s.%s" % (bucket, key)})
        msg = r.get("message")
        if not msg or not msg.get("data"):
            return None
        return json.loads(base64.b64decode(msg["data"]))


def pb_decode(data):
    """Decodes protobuf wire format into {field number: [values]}; varints
    are ints, length-delimited fields bytes."""
    out = {}
    i = 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 2:
            n = varint()
            value = data[i:i + n]
            i += n
        elif wire == 1:
            value = data[i:i + 8]
            i += 8
        elif wire == 5:
            value = data[i:i + 4]
            i += 4
        else:
            raise ValueError("unknown wire type %d" % wire)
        out.setdefault(field, []).append(value)
    return out


def pb_str(fields, number):
    return fields.get(number, [b""])[-1].decode()
