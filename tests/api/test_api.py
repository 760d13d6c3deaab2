# SPDX-License-Identifier: Apache-2.0
"""Control-plane API (nvcf-api) against a real nats-server.

Most tests run against fake clusters written straight into KV
nvcf_clusters, and fake instance records written into nvcf_instances, so
that every status transition is driven on purpose. The tests marked
`needs_nvca` deploy a real function (pyecho) through a real cluster agent
and are skipped only when the nvca binary has not been built.
"""
import base64
import datetime
import json
import os
import socket
import time
import urllib.parse
import uuid

import pytest

import nvcfstack
from nvcfstack import http, wait_for

HAVE_NVCA = os.path.exists(nvcfstack.binary("nvca"))
needs_nvca = pytest.mark.skipif(not HAVE_NVCA,
                                reason="nvca binary is not built")

FAKE = "fake-1"
L40S_1X = "NCP.GPU.L40S_1x"


# ---- a minimal NATS client (standard library only) -------------------------

class MiniNats:
    """Just enough of the NATS protocol to write KV records and read
    streams through the JetStream API."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port),
                                             timeout=10)
        self.buf = b""
        self.sid = 0
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,'
                          b'"headers":true,"no_responders":true}\r\n')
        self.flush()

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("NATS closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _next(self):
        """Returns the next MSG/HMSG payload, replying to server PINGs."""
        while True:
            line = self._line()
            if line.startswith("PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith("-ERR"):
                raise RuntimeError(line)
            elif line.startswith("MSG"):
                return self._bytes(int(line.split()[-1]))
            elif line.startswith("HMSG"):
                parts = line.split()
                data = self._bytes(int(parts[-1]))
                return data[int(parts[-2]):]
            elif line.startswith("PONG"):
                return None

    def flush(self):
        self.sock.sendall(b"PING\r\n")
        while self._next() is not None:
            pass

    def publish(self, subject, payload, reply=None):
        if isinstance(payload, str):
            payload = payload.encode()
        head = "PUB %s %s%d\r\n" % (subject, reply + " " if reply else "",
                                     len(payload))
        self.sock.sendall(head.encode() + payload + b"\r\n")

    def request(self, subject, payload=b""):
        self.sid += 1
        inbox = "_INBOX.apitest.%d" % self.sid
        self.sock.sendall(("SUB %s %d\r\n" % (inbox, self.sid)).encode())
        self.publish(subject, payload, reply=inbox)
        data = self._next()
        self.sock.sendall(("UNSUB %d\r\n" % self.sid).encode())
        return data

    def js(self, api, body=None):
        raw = self.request("$JS.API." + api,
                           json.dumps(body or {}).encode())
        return json.loads(raw)

    def kv_put(self, bucket, key, value):
        r = self.js_publish("$KV.%s.%s" % (bucket, key), json.dumps(value))
        assert "error" not in r, r

    def js_publish(self, subject, payload):
        return json.loads(self.request(subject, payload))

    def last(self, stream, subject):
        """Last stored message on a subject, or None."""
        r = self.js("STREAM.MSG.GET." + stream, {"last_by_subj": subject})
        if "error" in r:
            return None
        return base64.b64decode(r["message"]["data"])

    def kv_get(self, bucket, key):
        data = self.last("KV_" + bucket, "$KV.%s.%s" % (bucket, key))
        return json.loads(data) if data else None

    def subjects(self, stream, filt):
        r = self.js("STREAM.INFO." + stream, {"subjects_filter": filt})
        return r.get("state", {}).get("subjects") or {}


def pb_fields(data):
    """Decodes a protobuf message into {field number: [values]}.

    Only varints and length-delimited fields, because the orders use no
    other wire type."""
    out, i = {}, 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value
    while i < len(data):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            out.setdefault(num, []).append(varint())
        elif wire == 2:
            n = varint()
            out.setdefault(num, []).append(data[i:i + n].decode())
            i += n
        else:
            raise ValueError("wire type %d" % wire)
    return out


def iso(delta_s=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (
        t.microsecond // 1000)


def cluster_record(cid, group, gpus, heartbeat_delta=0.0):
    return {"clusterId": cid, "name": cid, "group": group, "region": "local",
            "attributes": [], "gpus": gpus, "heartbeatAt":
            iso(heartbeat_delta), "health": "healthy"}


def gpu(name, types, capacity=8, allocated=None):
    # Fully allocated by default, so that a real cluster with free GPUs
    # wins placement when the spec does not name a cluster.
    return {"name": name, "capacity": capacity,
            "allocated": capacity if allocated is None else allocated,
            "instanceTypes": [
                {"name": t, "description": "%s on %s" % (t, name),
                 "default": i == 0, "gpuCount": 1}
                for i, t in enumerate(types)]}


# ---- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(api=True, gateway=False, nvca=HAVE_NVCA,
                        api_args=["--max-functions", "4",
                                  "--cluster-stale-ms", "600000"])
    with s:
        yield s


@pytest.fixture(scope="module")
def mn(stack):
    m = MiniNats(stack.nats_url)
    m.kv_put("nvcf_clusters", FAKE, cluster_record(
        FAKE, "fake", [gpu("L40S", [L40S_1X, "NCP.GPU.L40S_2x"]),
                       gpu("H100", ["NCP.GPU.H100_1x"], capacity=2)]))
    # The only cluster with B200 GPUs, but its heartbeat is an hour old.
    m.kv_put("nvcf_clusters", "stale-1", cluster_record(
        "stale-1", "stale", [gpu("B200", ["NCP.GPU.B200_1x"])],
        heartbeat_delta=-3600))
    yield m
    m.close()


_accounts = iter(range(1, 10000))


@pytest.fixture
def acct(stack):
    """A fresh account and a key with every scope."""
    nca = "acct-%d-%s" % (next(_accounts), uuid.uuid4().hex[:6])
    return nca, stack.create_key(nca)


def api(stack, method, path, key=None, **kw):
    return http(method, stack.api_url + path, key=key, **kw)


def new_function(stack, key, **body):
    req = {"name": "echo", "inferenceUrl": "/echo",
           "containerImage": "file://" + nvcfstack.PYECHO}
    req.update(body)
    r = api(stack, "POST", "/v2/nvcf/functions", key, json_body=req)
    assert r.status == 200, r
    return r.json()["function"]


def listing(stack, key):
    r = api(stack, "GET", "/v2/nvcf/functions", key)
    assert r.status == 200, r
    return sorted(f["versionId"] for f in r.json()["functions"])


def spec(**kw):
    s = {"gpu": "L40S", "instanceType": L40S_1X, "minInstances": 1,
         "maxInstances": 2, "clusters": [FAKE]}
    s.update(kw)
    return s


def dep_path(f):
    return "/v2/nvcf/deployments/functions/%s/versions/%s" % (
        f["id"], f["versionId"])


def ver_path(f):
    return "/v2/nvcf/functions/%s/versions/%s" % (f["id"], f["versionId"])


def assert_problem(r, status, *fragments):
    assert r.status == status, r
    assert r.headers["Content-Type"].startswith("application/problem+json")
    p = r.json()
    assert p["status"] == status
    assert p["title"]
    for frag in fragments:
        assert frag in p["detail"], (frag, p)
    return p


def status_of(stack, key, f):
    return api(stack, "GET", ver_path(f), key).json()["function"]["status"]


def wait_status(stack, key, f, want, timeout=20):
    wait_for(lambda: status_of(stack, key, f) == want, timeout=timeout,
             what="version %s to become %s" % (f["versionId"], want))


def put_instance(mn, f, icms, iid, status, error=None, spec_id=None):
    rec = {"instanceId": iid, "functionId": f["id"],
           "functionVersionId": f["versionId"], "ncaId": f["ncaId"],
           "clusterId": FAKE, "icmsRequestId": icms, "gpu": "L40S",
           "instanceType": L40S_1X, "instanceStatus": status,
           "instanceCreatedAt": iso(), "instanceUpdatedAt": iso()}
    if spec_id:
        rec["gpuSpecificationId"] = spec_id
    if error:
        rec["error"] = error
    mn.kv_put("nvcf_instances", "%s.%s" % (f["versionId"], iid), rec)


CREATE_SUBJECT = "Create.NVCA.Function.%s.L40S.NCP|GPU|L40S_1x" % FAKE


def create_orders(mn, vid):
    """Creation orders on the fake cluster for one version, oldest first."""
    out = []
    seq = 0
    while True:
        r = mn.js("STREAM.MSG.GET.CreateNvcaFunctionTaskStream",
                  {"seq": seq + 1, "next_by_subj": CREATE_SUBJECT})
        if "error" in r:
            return out
        seq = r["message"]["seq"]
        m = pb_fields(base64.b64decode(r["message"]["data"]))
        if m.get(5) == [vid]:
            out.append(m)


# ---- health, metrics, routing, auth ----------------------------------------

def test_health_and_metrics_need_no_key(stack):
    r = api(stack, "GET", "/health")
    assert r.status == 200
    assert r.json() == {"status": "OK"}
    api(stack, "GET", "/v2/nvcf/functions")  # one 401 to count
    r = api(stack, "GET", "/metrics")
    assert r.status == 200
    text = r.body.decode()
    assert 'nvcf_api_requests_total{code="200"}' in text
    assert 'nvcf_api_requests_total{code="401"}' in text
    assert "nvcf_api_nats_connected 1" in text


def test_routing_404_and_405(stack):
    k = stack.admin_key
    assert_problem(api(stack, "GET", "/v2/nvcf/nothing", k), 404)
    assert_problem(api(stack, "GET", "/v3/x", k), 404)
    r = api(stack, "PUT", "/v2/nvcf/functions", k, json_body={})
    assert_problem(r, 405)
    assert r.headers["Allow"] == "GET, POST"
    r = api(stack, "POST", "/v2/nvcf/clusterGroups", k, json_body={})
    assert_problem(r, 405)
    for method in ("POS", "GE", "PATCH"):
        assert_problem(api(stack, method, "/v2/nvcf/functions", k), 405)


def test_auth_missing_key_401(stack):
    for key in (None, "nvapi-" + "x" * 43, "not-a-key"):
        r = api(stack, "GET", "/v2/nvcf/functions", key)
        assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = api(stack, "GET", "/v2/nvcf/functions",
            headers={"Authorization": "Basic abc"})
    assert_problem(r, 401)


def test_auth_missing_scope_403(stack):
    key = stack.create_key("scoped-acct", scopes="invoke_function")
    assert_problem(api(stack, "GET", "/v2/nvcf/functions", key), 403,
                   "list_functions")
    r = api(stack, "POST", "/v2/nvcf/functions", key,
            json_body={"name": "x"})
    assert_problem(r, 403, "register_function")
    assert_problem(api(stack, "GET", "/v2/nvcf/clusterGroups", key), 403)
    lister = stack.create_key("scoped-acct", scopes="list_functions")
    f = "/v2/nvcf/deployments/functions/%s/versions/%s" % (uuid.uuid4(),
                                                           uuid.uuid4())
    assert_problem(api(stack, "GET", f, lister), 403, "deploy_function")
    assert_problem(api(stack, "DELETE", "/v2/nvcf/functions/%s/versions/%s"
                       % (uuid.uuid4(), uuid.uuid4()), lister), 403)
    assert_problem(api(stack, "GET", "/v2/nvcf/queues/functions/%s"
                       % uuid.uuid4(), lister), 403)
    # list_functions alone is enough for cluster groups.
    assert api(stack, "GET", "/v2/nvcf/clusterGroups", lister).status == 200


# ---- functions ---------------------------------------------------------------

def test_create_function_applies_nvcf_defaults(stack, acct):
    nca, key = acct
    f = new_function(stack, key, inferencePort=9000, healthUri="/ready",
                     tags=["team:a"])
    assert uuid.UUID(f["id"])
    assert uuid.UUID(f["versionId"])
    assert f["ncaId"] == nca
    assert f["status"] == "INACTIVE"
    assert f["description"] == "echo"
    assert f["functionType"] == "DEFAULT"
    assert f["apiBodyFormat"] == "CUSTOM"
    assert f["health"] == {"protocol": "HTTP", "uri": "/ready", "port": 9000,
                           "timeout": "PT10S", "expectedStatusCode": 200}
    assert f["inferencePort"] == 9000
    assert f["tags"] == ["team:a"]
    assert f["createdAt"].endswith("Z")
    g = new_function(stack, key, inferenceUrl="/grpc", name="g")
    assert g["health"]["protocol"] == "gRPC"
    assert g["health"]["uri"] == "/v2/health/ready"
    assert g["health"]["port"] == 8000
    assert "inferencePort" not in g


def test_versions_list_ids_get_delete(stack, acct):
    nca, key = acct
    f = new_function(stack, key)
    r = api(stack, "POST", "/v2/nvcf/functions/%s/versions" % f["id"], key,
            json_body={"name": "echo", "inferenceUrl": "/echo",
                       "containerImage": "img:2"})
    assert r.status == 200, r
    v2 = r.json()["function"]
    assert v2["id"] == f["id"]
    assert v2["versionId"] != f["versionId"]
    other = new_function(stack, key, name="other")

    assert listing(stack, key) == sorted(
        [f["versionId"], v2["versionId"], other["versionId"]])
    r = api(stack, "GET", "/v2/nvcf/functions/ids", key)
    assert r.status == 200
    assert sorted(r.json()["functionIds"]) == sorted([f["id"], other["id"]])
    r = api(stack, "GET", "/v2/nvcf/functions/%s/versions" % f["id"], key)
    assert sorted(x["versionId"] for x in r.json()["functions"]) == sorted(
        [f["versionId"], v2["versionId"]])
    r = api(stack, "GET", ver_path(v2), key)
    assert r.status == 200
    assert r.json()["function"] == v2

    r = api(stack, "DELETE", ver_path(v2), key)
    assert r.status == 204
    assert r.body == b""
    assert_problem(api(stack, "GET", ver_path(v2), key), 404,
                   v2["versionId"], nca)
    assert_problem(api(stack, "DELETE", ver_path(v2), key), 404)
    assert v2["versionId"] not in listing(stack, key)


def test_unknown_and_non_uuid_ids(stack, acct):
    _, key = acct
    u1, u2 = uuid.uuid4(), uuid.uuid4()
    assert_problem(api(stack, "GET", "/v2/nvcf/functions/%s/versions" % u1,
                       key), 404, str(u1))
    assert_problem(api(stack, "POST", "/v2/nvcf/functions/%s/versions" % u1,
                       key, json_body={"name": "a", "inferenceUrl": "/a",
                                       "containerImage": "i"}), 404)
    for path in ("/v2/nvcf/functions/abc/versions",
                 "/v2/nvcf/functions/abc/versions/%s" % u2,
                 "/v2/nvcf/functions/%s/versions/xyz" % u1,
                 "/v2/nvcf/deployments/functions/1/versions/%s" % u2,
                 "/v2/nvcf/deployments/not-a-uuid",
                 "/v2/nvcf/queues/functions/123"):
        assert_problem(api(stack, "GET", path, key), 400, "must be a UUID")
    assert_problem(api(stack, "PATCH", "/v2/nvcf/deployments/%s/"
                       "gpu-specifications/zz" % u1, key,
                       json_body={"minInstances": 1}), 400, "UUID")
    assert_problem(api(stack, "DELETE", "/v2/nvcf/functions/x/versions/y",
                       key), 400)


BAD_FUNCTIONS = [
    (b"{not json", "JSON"),
    (b"[]", "JSON object"),
    (b"", "JSON"),
    ({"inferenceUrl": "/a", "containerImage": "i"}, "field=name"),
    ({"name": 5, "inferenceUrl": "/a", "containerImage": "i"},
     "field=name"),
    ({"name": "bad name", "inferenceUrl": "/a", "containerImage": "i"},
     "must match ^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$"),
    ({"name": "x" * 129, "inferenceUrl": "/a", "containerImage": "i"},
     "field=name"),
    ({"name": "a", "containerImage": "i"}, "field=inferenceUrl"),
    ({"name": "a", "inferenceUrl": "a", "containerImage": "i"},
     "field=inferenceUrl"),
    ({"name": "a", "inferenceUrl": "/a"}, "containerImage"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": 3},
     "field=containerImage"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "inferencePort": "80"}, "field=inferencePort"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "inferencePort": 70000}, "field=inferencePort"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "health": {"protocol": "HTTP", "uri": "/h", "port": 1}},
     "field=health.timeout"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "health": {"protocol": "SMTP", "uri": "/h", "port": 1,
                 "timeout": "PT1S", "expectedStatusCode": 200}},
     "field=health.protocol"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "containerEnvironment": [{"key": "A"}]},
     "containerEnvironment.value"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "containerEnvironment": {"A": "b"}}, "field=containerEnvironment"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "tags": ["no spaces"]}, "field=tags"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "description": "d" * 257}, "field=description"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "functionType": "BATCH"}, "field=functionType"),
    ({"name": "a", "inferenceUrl": "/a", "helmChart": "h"},
     "helmChartServiceName"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "secrets": [{"name": "s", "value": "1"}, {"name": "s", "value": "2"}]},
     "Duplicate secrets"),
    ({"name": "a", "inferenceUrl": "/a", "containerImage": "i",
      "rateLimit": {"rateLimit": "10/s"}}, "field=rateLimit.rateLimit"),
]


@pytest.mark.parametrize("body,fragment", BAD_FUNCTIONS)
def test_function_malformed_400(stack, acct, body,
                                                      fragment):
    _, key = acct
    existing = new_function(stack, key)
    before = listing(stack, key)
    kw = {"body": body} if isinstance(body, bytes) else {"json_body": body}
    for path in ("/v2/nvcf/functions",
                 "/v2/nvcf/functions/%s/versions" % existing["id"]):
        r = api(stack, "POST", path, key,
                headers={"Content-Type": "application/json"}, **kw)
        assert_problem(r, 400, fragment)
    assert listing(stack, key) == before


def test_account_function_limit(stack, acct):
    nca, key = acct
    fs = [new_function(stack, key, name="f%d" % i) for i in range(4)]
    before = listing(stack, key)
    r = api(stack, "POST", "/v2/nvcf/functions", key,
            json_body={"name": "f5", "inferenceUrl": "/a",
                       "containerImage": "i"})
    assert_problem(r, 400, nca, "max limit", "4")
    assert listing(stack, key) == before
    # A new version of an existing function is not a new function.
    r = api(stack, "POST", "/v2/nvcf/functions/%s/versions" % fs[0]["id"],
            key, json_body={"name": "f0", "inferenceUrl": "/a",
                            "containerImage": "i"})
    assert r.status == 200, r


def test_accounts_are_isolated(stack, mn, acct):
    nca_a, key_a = acct
    key_b = stack.create_key("other-" + nca_a)
    f = new_function(stack, key_a)
    r = api(stack, "POST", dep_path(f), key_a,
            json_body={"deploymentSpecifications": [spec(minInstances=0)]})
    assert r.status == 200, r
    did = r.json()["deployment"]["deploymentId"]
    sid = r.json()["deployment"]["deploymentSpecifications"][0][
        "gpuSpecificationId"]

    assert listing(stack, key_b) == []
    r = api(stack, "GET", "/v2/nvcf/functions/ids", key_b)
    assert r.json()["functionIds"] == []
    for method, path, body in [
            ("GET", ver_path(f), None),
            ("DELETE", ver_path(f), None),
            ("GET", "/v2/nvcf/functions/%s/versions" % f["id"], None),
            ("POST", "/v2/nvcf/functions/%s/versions" % f["id"],
             {"name": "x", "inferenceUrl": "/x", "containerImage": "i"}),
            ("GET", dep_path(f), None),
            ("DELETE", dep_path(f), None),
            ("POST", dep_path(f), {"deploymentSpecifications": [spec()]}),
            ("GET", "/v2/nvcf/deployments/%s" % did, None),
            ("PATCH", "/v2/nvcf/deployments/%s/gpu-specifications/%s" % (
                did, sid), {"maxInstances": 3}),
            ("GET", "/v2/nvcf/queues/functions/%s" % f["id"], None)]:
        r = api(stack, method, path, key_b, json_body=body)
        assert_problem(r, 404)
    # Nothing changed for the owner.
    assert status_of(stack, key_a, f) == "ACTIVE"
    r = api(stack, "GET", "/v2/nvcf/deployments/%s" % did, key_a)
    assert r.status == 200
    assert r.json()["deployment"]["deploymentSpecifications"][0][
        "maxInstances"] == 2


# ---- cluster groups ----------------------------------------------------------

def test_cluster_groups_shape_and_health(stack, mn, acct):
    nca, key = acct
    r = api(stack, "GET", "/v2/nvcf/clusterGroups", key)
    assert r.status == 200, r
    groups = {g["name"]: g for g in r.json()["clusterGroups"]}
    assert "stale" not in groups  # heartbeat an hour old
    g = groups["fake"]
    assert uuid.UUID(g["id"])
    assert g["ncaId"] == nca
    assert g["clusters"] == [{
        "id": FAKE, "name": FAKE, "k8sVersion": "", "region": "local",
        "health": "healthy", "gpus": [
            {"name": "L40S", "capacity": 8, "allocated": 8, "available": 0},
            {"name": "H100", "capacity": 2, "allocated": 2, "available": 0}]}]
    gpus = {x["name"]: x for x in g["gpus"]}
    assert set(gpus) == {"L40S", "H100"}
    assert gpus["L40S"]["instanceTypes"][0] == {
        "name": L40S_1X, "description": L40S_1X + " on L40S",
        "default": True}
    assert [t["name"] for t in gpus["L40S"]["instanceTypes"]] == [
        L40S_1X, "NCP.GPU.L40S_2x"]
    if HAVE_NVCA:
        assert "local" in groups
    # The same id every time.
    r2 = api(stack, "GET", "/v2/nvcf/clusterGroups", key)
    assert {g["name"]: g["id"] for g in r2.json()["clusterGroups"]}[
        "fake"] == g["id"]


# ---- deployments -------------------------------------------------------------

BAD_DEPLOYMENTS = [
    (b"{oops", "JSON"),
    ({}, "deploymentSpecifications"),
    ({"deploymentSpecifications": []}, "non-empty"),
    ({"deploymentSpecifications": [spec(gpu="A999")]},
     "gpu 'A999' is not offered", "L40S", "H100"),
    ({"deploymentSpecifications": [spec(gpu="B200",
                                        instanceType="NCP.GPU.B200_1x",
                                        clusters=None)]},
     "gpu 'B200' is not offered"),
    ({"deploymentSpecifications": [spec(instanceType="NCP.GPU.L40S_9x")]},
     "instanceType 'NCP.GPU.L40S_9x'", L40S_1X),
    ({"deploymentSpecifications": [spec(backend="fake")]},
     "backend and clusters"),
    ({"deploymentSpecifications": [spec(minInstances=3, maxInstances=2)]},
     "field=deploymentSpecifications.minInstances"),
    ({"deploymentSpecifications": [spec(maxInstances=0, minInstances=0)]},
     "field=deploymentSpecifications.maxInstances"),
    ({"deploymentSpecifications": [spec(maxRequestConcurrency=0)]},
     "maxRequestConcurrency"),
    ({"deploymentSpecifications": [spec(maxRequestConcurrency=16385)]},
     "maxRequestConcurrency"),
    ({"deploymentSpecifications": [spec(minInstances="1")]},
     "minInstances"),
    ({"deploymentSpecifications": [{"instanceType": L40S_1X,
                                    "minInstances": 1,
                                    "maxInstances": 1}]},
     "field=deploymentSpecifications.gpu"),
    ({"deploymentSpecifications": [spec(clusters=["nowhere"])]},
     "no healthy cluster offers"),
]


@pytest.mark.parametrize("case", BAD_DEPLOYMENTS)
def test_deployment_malformed_400(stack, mn, acct,
                                                        case):
    _, key = acct
    body, fragments = case[0], case[1:]
    f = new_function(stack, key)
    kw = {"body": body} if isinstance(body, bytes) else {"json_body": body}
    r = api(stack, "POST", dep_path(f), key, **kw)
    assert_problem(r, 400, *fragments)
    assert status_of(stack, key, f) == "INACTIVE"
    assert_problem(api(stack, "GET", dep_path(f), key), 404,
                   "Deployment not found")
    assert create_orders(mn, f["versionId"]) == []


def test_deploy_status_patch_and_undeploy(stack, mn, acct):
    nca, key = acct
    f = new_function(stack, key)
    vid = f["versionId"]
    assert_problem(api(stack, "DELETE", dep_path(f), key), 404,
                   "Deployment not found")
    r = api(stack, "POST", dep_path(f), key, json_body={
        "deploymentSpecifications": [spec(gpu="l40s", minInstances=1,
                                          maxInstances=3)]})
    assert r.status == 200, r
    d = r.json()["deployment"]
    assert d["functionId"] == f["id"]
    assert d["functionVersionId"] == vid
    assert d["ncaId"] == nca
    assert d["functionName"] == "echo"
    assert d["functionStatus"] == "DEPLOYING"
    assert "placements" not in d
    s = d["deploymentSpecifications"][0]
    assert s["gpu"] == "L40S"  # matched case-insensitively, stored as offered
    assert s["maxRequestConcurrency"] == 1
    sid = s["gpuSpecificationId"]
    assert status_of(stack, key, f) == "DEPLOYING"

    # One creation order for max(min, 1) instances on the fake cluster.
    orders = create_orders(mn, vid)
    assert len(orders) == 1
    o = orders[0]
    assert o[3] == [nca]
    assert o[4] == [f["id"]]
    assert o[6] == [d["deploymentId"]]
    assert o[7] == [sid]
    assert o[8] == [FAKE]
    assert o[11] == [1]
    assert json.loads(o[13][0])["versionId"] == vid
    icms = o[1][0]

    # Deploying again is refused while busy.
    r = api(stack, "POST", dep_path(f), key,
            json_body={"deploymentSpecifications": [spec()]})
    assert_problem(r, 400, "Status DEPLOYING")
    assert len(create_orders(mn, vid)) == 1

    for path in (dep_path(f), "/v2/nvcf/deployments/" + d["deploymentId"]):
        r = api(stack, "GET", path, key)
        assert r.status == 200
        assert r.json()["deployment"]["deploymentId"] == d["deploymentId"]

    # Instance records drive the status.
    put_instance(mn, f, icms, "i-1", "STARTING", spec_id=sid)
    time.sleep(0.3)
    assert status_of(stack, key, f) == "DEPLOYING"
    put_instance(mn, f, icms, "i-1", "RUNNING", spec_id=sid)
    wait_status(stack, key, f, "ACTIVE")
    g = api(stack, "GET", ver_path(f), key).json()["function"]
    assert [i["instanceId"] for i in g["activeInstances"]] == ["i-1"]
    assert g["activeInstances"][0]["instanceStatus"] == "RUNNING"
    r = api(stack, "GET", dep_path(f), key)
    assert r.json()["deployment"]["functionStatus"] == "ACTIVE"

    # PATCH: raising min above what is placed orders the difference.
    patch = "/v2/nvcf/deployments/%s/gpu-specifications/%s" % (
        d["deploymentId"], sid)
    r = api(stack, "PATCH", patch, key, json_body={"minInstances": 2})
    assert r.status == 200, r
    gs = r.json()["gpuSpecification"]
    assert gs["minInstances"] == 2
    assert gs["maxInstances"] == 3
    orders = create_orders(mn, vid)
    assert len(orders) == 2
    assert orders[1][11] == [1]
    wait_status(stack, key, f, "DEGRADING")  # 1 ready < min 2
    put_instance(mn, f, orders[1][1][0], "i-2", "RUNNING", spec_id=sid)
    wait_status(stack, key, f, "ACTIVE")

    # Bad PATCH bodies change nothing.
    for body, frag in [({}, "minInstances"),
                       ({"minInstances": 4}, "maxInstances"),
                       ({"maxInstances": 0}, "maxInstances"),
                       (b"{x", "JSON")]:
        kw = {"body": body} if isinstance(body, bytes) else {
            "json_body": body}
        assert_problem(api(stack, "PATCH", patch, key, **kw), 400, frag)
    assert_problem(api(stack, "PATCH", "/v2/nvcf/deployments/%s/gpu-"
                       "specifications/%s" % (d["deploymentId"],
                                              uuid.uuid4()),
                       key, json_body={"minInstances": 1}), 404)

    # Lowering max below what is placed terminates the extra instance.
    r = api(stack, "PATCH", patch, key,
            json_body={"minInstances": 1, "maxInstances": 1})
    assert r.status == 200, r
    term = mn.last("TerminateNvcaStream", "Terminate.NVCA." + FAKE)
    t = pb_fields(term)
    assert t[2] == [vid]
    assert len(t[3]) == 1
    assert t[3][0] in ("i-1", "i-2")

    # An errored instance shows up in healthInfo.
    put_instance(mn, f, icms, "i-1", "ERRORED", error="exit status 3",
                 spec_id=sid)
    put_instance(mn, f, icms, "i-2", "TERMINATED", spec_id=sid)
    wait_status(stack, key, f, "DEGRADED")
    dep = api(stack, "GET", dep_path(f), key).json()["deployment"]
    assert dep["healthInfo"] == [{"icmsRequestId": icms, "gpu": "L40S",
                                  "backend": FAKE, "instanceType": L40S_1X,
                                  "error": "exit status 3"}]

    # Queue depth counts requests waiting in the version's stream.
    for n in range(3):
        r = mn.js_publish("rq.local.%s.req-%d" % (vid, n), b"x")
        assert "error" not in r, r
    r = api(stack, "GET", "/v2/nvcf/queues/functions/%s" % f["id"], key)
    assert r.status == 200
    assert r.json() == {"functionId": f["id"], "queues": [
        {"functionVersionId": vid, "functionName": "echo",
         "functionStatus": "DEGRADED", "queueDepth": 3}]}

    # Undeploy: terminate everything, drop the queue, INACTIVE.
    r = api(stack, "DELETE", dep_path(f), key)
    assert r.status == 200, r
    assert r.json()["function"]["status"] == "INACTIVE"
    assert r.json()["function"]["versionId"] == vid
    t = pb_fields(mn.last("TerminateNvcaStream", "Terminate.NVCA." + FAKE))
    assert t[2] == [vid]
    assert 3 not in t
    assert_problem(api(stack, "GET", dep_path(f), key), 404)
    assert_problem(api(stack, "GET", "/v2/nvcf/deployments/" +
                       d["deploymentId"], key), 404)
    r = api(stack, "GET", "/v2/nvcf/queues/functions/%s" % f["id"], key)
    assert r.json()["queues"][0]["queueDepth"] == 0
    assert "error" in mn.js("STREAM.INFO.rq_local_" + vid)
    # A late instance report does not revive it.
    put_instance(mn, f, icms, "i-9", "RUNNING", spec_id=sid)
    time.sleep(0.3)
    assert status_of(stack, key, f) == "INACTIVE"
    # And it can be deployed again.
    r = api(stack, "POST", dep_path(f), key,
            json_body={"deploymentSpecifications": [spec(minInstances=0)]})
    assert r.status == 200
    assert r.json()["deployment"]["functionStatus"] == "ACTIVE"


def test_deploy_min_zero_and_error(stack, mn, acct):
    _, key = acct
    f = new_function(stack, key)
    r = api(stack, "POST", dep_path(f), key, json_body={
        "deploymentSpecifications": [spec(minInstances=0, maxInstances=1)]})
    assert r.status == 200
    assert r.json()["deployment"]["functionStatus"] == "ACTIVE"
    assert status_of(stack, key, f) == "ACTIVE"
    # An instance still comes up to take the first requests.
    assert create_orders(mn, f["versionId"])[0][11] == [1]

    g = new_function(stack, key, name="fails")
    r = api(stack, "POST", dep_path(g), key,
            json_body={"deploymentSpecifications": [spec()]})
    icms = create_orders(mn, g["versionId"])[0][1][0]
    put_instance(mn, g, icms, "e-1", "ERRORED", error="no such file")
    wait_status(stack, key, g, "ERROR")
    r = api(stack, "POST", dep_path(g), key,
            json_body={"deploymentSpecifications": [spec()]})
    assert_problem(r, 400, "deployment with errors")


def test_delete_version_undeploys_first(stack, mn, acct):
    _, key = acct
    f = new_function(stack, key)
    r = api(stack, "POST", dep_path(f), key,
            json_body={"deploymentSpecifications": [spec()]})
    assert r.status == 200
    did = r.json()["deployment"]["deploymentId"]
    assert api(stack, "DELETE", ver_path(f), key).status == 204
    t = pb_fields(mn.last("TerminateNvcaStream", "Terminate.NVCA." + FAKE))
    assert t[2] == [f["versionId"]]
    assert_problem(api(stack, "GET", "/v2/nvcf/deployments/" + did, key),
                   404)
    assert f["versionId"] not in listing(stack, key)


# ---- with a real cluster agent -------------------------------------------------

@needs_nvca
def test_nvca_deploy_and_undeploy(stack, mn, acct):
    _, key = acct
    f = nvcfstack.create_function(stack, key)
    d = nvcfstack.deploy(stack, key, f["id"], f["versionId"])
    assert d["functionStatus"] == "DEPLOYING"
    g = api(stack, "GET", ver_path(f), key).json()["function"]
    assert g["status"] == "ACTIVE"
    inst = [i for i in g["activeInstances"]
            if i["instanceStatus"] == "RUNNING"]
    assert len(inst) == 1
    assert inst[0]["gpu"] == "L40S"
    iid = inst[0]["instanceId"]

    r = api(stack, "DELETE", dep_path(f), key)
    assert r.status == 200
    assert r.json()["function"]["status"] == "INACTIVE"

    def terminated():
        rec = mn.kv_get("nvcf_instances", "%s.%s" % (f["versionId"], iid))
        return rec is not None and rec["instanceStatus"] == "TERMINATED"
    wait_for(terminated, timeout=30, what="instance %s TERMINATED" % iid)
    assert status_of(stack, key, f) == "INACTIVE"
