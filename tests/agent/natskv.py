"""Reads KV records over the NATS protocol (standard library only)."""

import base64
import json
import socket


class Client:
    def __init__(self, url):
        host, port = url.replace("nats://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n'
                          b"SUB _INBOX.kv.> 1\r\n")
        self.seq = 0

    def close(self):
        self.sock.close()

    def request(self, subject, payload):
        self.seq += 1
        reply = "_INBOX.kv.%d" % self.seq
        data = json.dumps(payload).encode()
        self.sock.sendall(b"PUB %s %s %d\r\n%s\r\n" % (
            subject.encode(), reply.encode(), len(data), data))
        while True:
            line = self.file.readline()
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
                continue
            parts = line.split()
            if not parts or parts[0] not in (b"MSG", b"HMSG"):
                continue
            size = int(parts[-1])
            body = self.file.read(size + 2)[:size]
            if parts[0] == b"HMSG":
                body = body[int(parts[-2]):]
            if parts[1].decode() != reply:
                continue
            return json.loads(body)

    def keys(self, bucket, prefix=""):
        r = self.request("$JS.API.STREAM.INFO.KV_" + bucket,
                         {"subjects_filter": "$KV.%s.>" % bucket})
        subjects = (r.get("state") or {}).get("subjects") or {}
        start = len("$KV.%s." % bucket)
        return sorted(s[start:] for s in subjects
                      if s[start:].startswith(prefix))

    def get(self, bucket, key):
        r = self.request("$JS.API.STREAM.MSG.GET.KV_" + bucket,
                         {"last_by_subj": "$KV.%s.%s" % (bucket, key)})
        msg = r.get("message")
        if not msg or not msg.get("data"):
            return None
        return json.loads(base64.b64decode(msg["data"]))

    def records(self, bucket, prefix=""):
        out = []
        for key in self.keys(bucket, prefix):
            value = self.get(bucket, key)
            if value is not None:
                out.append(value)
        return out

    def put(self, bucket, key, value):
        """Writes a KV value (a JSON-serialisable object); returns the
        JetStream publish acknowledgement."""
        r = self.request("$KV.%s.%s" % (bucket, key), value)
        if "error" in r:
            raise RuntimeError("put %s/%s failed: %r" % (bucket, key, r))
        return r
