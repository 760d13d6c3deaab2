# SPDX-License-Identifier: Apache-2.0
"""NVCT tasks (/v1/nvct/...) on nvcf-api, against a real nats-server and a
real cluster agent whose cluster record (local-1) tasks are placed on.

The agent is stopped (SIGSTOP) once registered, so that its orders wait
in the stream and every task here stays QUEUED until the API moves it,
which is what these tests drive; test_task_run.py runs tasks for real.
"""
import json
import os
import signal
import uuid

import pytest

import nvcfstack
from nvcfstack import http, wait_for
from rawnats import Client, pb_decode, pb_str

pytestmark = pytest.mark.skipif(
    not os.path.exists(nvcfstack.binary("nvca")),
    reason="nvca binary is not built")

TASKS = "/v1/nvct/tasks"


@pytest.fixture(scope="module")
def stack():
    s = nvcfstack.Stack(api=True, gateway=False, nvca=True)
    s.start()
    s.keys = {}
    os.kill(s.procs["nvca"].pid, signal.SIGSTOP)
    try:
        yield s
    finally:
        os.kill(s.procs["nvca"].pid, signal.SIGCONT)
        s.stop()


def key_of(stack, nca, scopes="all"):
    k = (nca, scopes)
    if k not in stack.keys:
        stack.keys[k] = stack.create_key(nca, scopes)
    return stack.keys[k]


@pytest.fixture(scope="module")
def nats(stack):
    c = Client(stack.nats_url)
    yield c
    c.close()


def body(**over):
    b = {"name": "train-1", "containerImage": "nvcr.io/acme/train:1",
         "gpuSpecification": {"gpu": "L40S",
                              "instanceType": "NCP.GPU.L40S_1x"},
         "resultHandlingStrategy": "NONE"}
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def create(stack, nca="acct-a", **over):
    r = http("POST", stack.api_url + TASKS, key=key_of(stack, nca),
             json_body=body(**over))
    assert r.status == 200, r.body
    return r.json()["task"]


def get(stack, tid, nca="acct-a"):
    return http("GET", "%s%s/%s" % (stack.api_url, TASKS, tid),
                key=key_of(stack, nca))


def problem(r, status):
    assert r.status == status, (r.status, r.body)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    p = r.json()
    assert p["status"] == status
    return p["detail"]


# ---- create ---------------------------------------------------------------

def test_create_answers_queued_task_dto(stack):
    r = http("POST", stack.api_url + TASKS, key=key_of(stack, "acct-a"),
             json_body=body(containerArgs="--epochs 3",
                            containerEnvironment=[{"key": "MODE",
                                                   "value": "fast"}],
                            tags=["team:ml"], description="first",
                            maxRuntimeDuration="PT30M"))
    assert r.status == 200, r.body
    assert r.headers["Content-Type"].startswith("application/json")
    t = r.json()["task"]
    assert uuid.UUID(t["id"])
    assert t["ncaId"] == "acct-a"
    assert t["name"] == "train-1"
    assert t["status"] == "QUEUED"
    assert t["containerImage"] == "nvcr.io/acme/train:1"
    assert t["containerArgs"] == "--epochs 3"
    assert t["containerEnvironment"] == [{"key": "MODE", "value": "fast"}]
    assert t["gpuSpecification"] == {"gpu": "L40S",
                                     "instanceType": "NCP.GPU.L40S_1x"}
    assert t["tags"] == ["team:ml"]
    assert t["description"] == "first"
    assert t["resultHandlingStrategy"] == "NONE"
    assert t["maxRuntimeDuration"] == "PT30M"
    assert t["maxQueuedDuration"] == "PT72H"
    # The default grace (PT1H) never exceeds the runtime.
    assert t["terminationGracePeriodDuration"] == "PT30M"
    assert t["createdAt"].endswith("Z")
    assert "placement" not in t
    assert "helmChart" not in t
    assert get(stack, t["id"]).json() == {"task": t}


def test_creation_order_is_published_and_recorded(stack, nats):
    sid = nats.subscribe("Create.NVCA.Task.>")
    t = create(stack, name="ordered", containerArgs="a b")
    subject, data = nats.next_msg(sid, timeout=10)
    assert subject == "Create.NVCA.Task.local-1.L40S.NCP|GPU|L40S_1x"
    m = pb_decode(data)
    assert m[2] == [2]                       # WORKLOAD_KIND_TASK
    assert pb_str(m, 3) == "acct-a"
    assert pb_str(m, 8) == "local-1"
    assert pb_str(m, 9) == "L40S"
    assert pb_str(m, 10) == "NCP.GPU.L40S_1x"
    assert m[11] == [1]                      # instance_count
    assert pb_str(m, 4) == ""
    assert pb_str(m, 5) == ""
    assert pb_str(m, 16) == t["id"]
    rec = json.loads(pb_str(m, 17))
    assert rec["id"] == t["id"]
    assert rec["containerArgs"] == "a b"
    assert rec["placement"]["clusterId"] == "local-1"
    assert rec["placement"]["icmsRequestId"] == pb_str(m, 1)
    stored = nats.kv_get("nvcf_tasks", "acct-a." + t["id"])
    assert stored["placement"] == rec["placement"]
    assert stored["status"] == "QUEUED"


def test_helm_task_and_resources(stack):
    t = create(stack, containerImage=None,
               helmChart="https://charts.example/t-1.0.tgz",
               gpuSpecification={"gpu": "H100",
                                 "instanceType": "NCP.GPU.H100_1x",
                                 "configuration": {"replicas": 1}},
               models=[{"name": "llama", "version": "1", "uri": "ngc://m"}])
    assert t["helmChart"] == "https://charts.example/t-1.0.tgz"
    assert t["models"][0]["name"] == "llama"
    assert "containerImage" not in t


BAD = [
    (dict(name=None), "field=name"),
    (dict(name="-bad"), "field=name"),
    (dict(name="x" * 129), "field=name"),
    (dict(helmChart="https://c/x.tgz"), "containerImage and helmChart"),
    (dict(containerImage=None), "one of containerImage or helmChart"),
    (dict(foo=1), "field=foo"),
    (dict(secrets=[{"name": "a", "value": "b"}]), "field=secrets"),
    (dict(helmChartServiceName="svc"), "field=helmChartServiceName"),
    (dict(gpuSpecification=None), "field=gpuSpecification"),
    (dict(gpuSpecification={"instanceType": "NCP.GPU.L40S_1x"}),
     "field=gpuSpecification.gpu"),
    (dict(gpuSpecification={"gpu": "L40S"}),
     "field=gpuSpecification.instanceType"),
    (dict(gpuSpecification={"gpu": "L40S", "instanceType": "x",
                            "zone": "a"}), "field=gpuSpecification.zone"),
    (dict(gpuSpecification={"gpu": "L40S",
                            "instanceType": "NCP.GPU.L40S_1x",
                            "configuration": {}}),
     "field=gpuSpecification.configuration"),
    (dict(maxRuntimeDuration="-PT5S"),
     "field=maxRuntimeDuration, rejected=-PT5S, message=must not be "
     "negative"),
    (dict(maxQueuedDuration="PT-5S"), "field=maxQueuedDuration"),
    (dict(terminationGracePeriodDuration="-PT1S"),
     "field=terminationGracePeriodDuration"),
    (dict(maxRuntimeDuration="10 minutes"), "field=maxRuntimeDuration"),
    (dict(maxQueuedDuration="PT0S"), "must be greater than zero"),
    (dict(maxRuntimeDuration="PT10M",
          terminationGracePeriodDuration="PT20M"),
     "must not exceed maxRuntimeDuration"),
    (dict(resultHandlingStrategy="KEEP"), "field=resultHandlingStrategy"),
    (dict(resultHandlingStrategy=None), "field=resultsLocation"),
    (dict(resultHandlingStrategy="UPLOAD", resultsLocation="a/b/c/d"),
     "field=resultsLocation"),
    (dict(containerEnvironment=[{"key": "1-x", "value": "v"}]),
     "field=containerEnvironment.key"),
    (dict(containerEnvironment=[{"key": "A"}]),
     "field=containerEnvironment.value"),
    (dict(tags=["no spaces"]), "field=tags"),
    (dict(description="d" * 257), "field=description"),
    (dict(models=[{"name": "m", "version": "1"}]), "field=models.uri"),
    (dict(containerArgs=5), "field=containerArgs"),
]


@pytest.mark.parametrize("over,needle", BAD)
def test_create_rejects_with_field_named(stack, over, needle):
    r = http("POST", stack.api_url + TASKS, key=key_of(stack, "acct-v"),
             json_body=body(**over))
    assert needle in problem(r, 400)


def test_create_rejects_unknown_gpu_and_bad_json(stack):
    key = key_of(stack, "acct-v")
    r = http("POST", stack.api_url + TASKS, key=key, json_body=body(
        gpuSpecification={"gpu": "B200", "instanceType": "NCP.GPU.B200_1x"}))
    assert "B200" in problem(r, 400)
    r = http("POST", stack.api_url + TASKS, key=key, body=b"{not json",
             headers={"Content-Type": "application/json"})
    assert problem(r, 400).startswith("JSON parse error")
    r = http("GET", stack.api_url + TASKS, key=key)
    assert r.status == 200
    assert r.json() == {"tasks": []}


# ---- read, list, page -----------------------------------------------------

def test_get_unknown_and_malformed_ids(stack):
    tid = str(uuid.uuid4())
    assert problem(get(stack, tid), 404) == \
        "Task id '%s': Not found in account 'acct-a'" % tid
    r = get(stack, "not-a-uuid")
    assert r.status == 400
    assert r.json()["type"] == "about:blank"
    assert "taskId 'not-a-uuid'" in r.json()["detail"]


def test_list_pages_with_cursor(stack):
    made = [create(stack, nca="acct-page", name="p%d" % i)["id"]
            for i in range(5)]
    key = key_of(stack, "acct-page")
    seen, cursor, pages = [], None, []
    while True:
        url = stack.api_url + TASKS + "?limit=2"
        if cursor:
            url += "&cursor=" + cursor
        r = http("GET", url, key=key)
        assert r.status == 200, r.body
        page = r.json()
        pages.append(len(page["tasks"]))
        seen += [t["id"] for t in page["tasks"]]
        if "cursor" not in page:
            assert "limit" not in page
            break
        assert page["limit"] == 2
        int(page["cursor"], 16)
        cursor = page["cursor"]
    assert pages == [2, 2, 1]
    assert seen == made  # creation order
    r = http("GET", stack.api_url + TASKS, key=key)
    assert [t["id"] for t in r.json()["tasks"]] == made
    assert "cursor" not in r.json()


def test_list_rejects_bad_paging(stack):
    key = key_of(stack, "acct-page")
    assert problem(http("GET", stack.api_url + TASKS + "?cursor=zz",
                        key=key), 400) == "Invalid cursor: 'zz'"
    assert "limit" in problem(http("GET", stack.api_url + TASKS + "?limit=0",
                                   key=key), 400)
    assert "status" in problem(http(
        "GET", stack.api_url + TASKS + "?status=DONE", key=key), 400)


def test_list_status_filter_and_bulk(stack):
    key = key_of(stack, "acct-bulk")
    a = create(stack, nca="acct-bulk", name="a")["id"]
    b = create(stack, nca="acct-bulk", name="b")["id"]
    r = http("POST", "%s%s/%s/cancel" % (stack.api_url, TASKS, b), key=key)
    assert r.status == 200
    r = http("GET", stack.api_url + TASKS + "?status=CANCELED", key=key)
    assert [t["id"] for t in r.json()["tasks"]] == [b]
    missing = str(uuid.uuid4())
    r = http("POST", stack.api_url + TASKS + "/bulk", key=key,
             json_body={"taskIds": [a, b, missing]})
    assert r.status == 200, r.body
    assert r.json() == {"ncaId": "acct-bulk", "tasks": [
        {"id": a, "name": "a", "status": "QUEUED"},
        {"id": b, "name": "b", "status": "CANCELED"}]}
    r = http("POST", stack.api_url + TASKS + "/bulk", key=key,
             json_body={"taskIds": []})
    assert "taskIds" in problem(r, 400)


# ---- cancel, expiry, delete -----------------------------------------------

def events_of(stack, tid, nca="acct-a"):
    r = http("GET", "%s%s/%s/events?limit=100" % (stack.api_url, TASKS, tid),
             key=key_of(stack, nca))
    assert r.status == 200, r.body
    return r.json()["events"]


def test_cancel_queued_task_orders_termination(stack, nats):
    t = create(stack, name="to-cancel")
    sid = nats.subscribe("Terminate.NVCA.>")
    r = http("POST", "%s%s/%s/cancel" % (stack.api_url, TASKS, t["id"]),
             key=key_of(stack, "acct-a"))
    assert r.status == 200, r.body
    c = r.json()["task"]
    assert c["status"] == "CANCELED"
    assert c["id"] == t["id"]
    assert get(stack, t["id"]).json()["task"]["status"] == "CANCELED"
    subject, data = nats.next_msg(sid, timeout=10)
    assert subject == "Terminate.NVCA.local-1"
    m = pb_decode(data)
    assert pb_str(m, 6) == t["id"]
    assert pb_str(m, 1) == "local-1"
    assert pb_str(m, 2) == ""
    assert 3 not in m
    r = http("POST", "%s%s/%s/cancel" % (stack.api_url, TASKS, t["id"]),
             key=key_of(stack, "acct-a"))
    assert problem(r, 400) == \
        "Cannot cancel a Task with 'CANCELED' terminal status"
    messages = [e["message"] for e in events_of(stack, t["id"])]
    assert messages[0] == "Task created with status 'QUEUED'"
    assert "Changing status from 'QUEUED' to 'CANCELED'" in messages
    e = events_of(stack, t["id"])[0]
    assert set(e) == {"eventId", "taskId", "ncaId", "message", "createdAt"}
    assert e["taskId"] == t["id"]
    assert e["ncaId"] == "acct-a"


def test_queued_task_expires(stack):
    t = create(stack, name="short-wait", maxQueuedDuration="PT2S")
    assert t["maxQueuedDuration"] == "PT2S"
    wait_for(lambda: get(stack, t["id"]).json()["task"]["status"] ==
             "EXCEEDED_MAX_QUEUED_DURATION", timeout=15,
             what="the task to exceed its queue time")
    assert ("Changing status from 'QUEUED' to "
            "'EXCEEDED_MAX_QUEUED_DURATION'") in \
        [e["message"] for e in events_of(stack, t["id"])]
    r = http("POST", "%s%s/%s/cancel" % (stack.api_url, TASKS, t["id"]),
             key=key_of(stack, "acct-a"))
    assert "'EXCEEDED_MAX_QUEUED_DURATION' terminal status" in \
        problem(r, 400)


def test_delete_removes_task_and_events(stack):
    t = create(stack, name="to-delete")
    key = key_of(stack, "acct-a")
    r = http("DELETE", "%s%s/%s" % (stack.api_url, TASKS, t["id"]), key=key)
    assert r.status == 204
    assert r.body == b""
    assert get(stack, t["id"]).status == 404
    r = http("GET", "%s%s/%s/events" % (stack.api_url, TASKS, t["id"]),
             key=key)
    assert r.status == 404
    r = http("DELETE", "%s%s/%s" % (stack.api_url, TASKS, t["id"]), key=key)
    assert r.status == 404


# ---- events and results paging ---------------------------------------------

def test_events_and_results_page(stack, nats):
    t = create(stack, name="results")
    key = key_of(stack, "acct-a")
    for i in range(3):
        rid = str(uuid.uuid4())
        ack = nats.request("nvct.res.%s.%s" % (t["id"], rid), {
            "resultId": rid, "taskId": t["id"], "ncaId": "acct-a",
            "name": "part-%d" % i, "metadata": {"i": i},
            "createdAt": "2026-01-01T00:00:00.000Z"})
        assert ack.get("stream") == "NVCT_RESULTS", ack

    url = "%s%s/%s/results" % (stack.api_url, TASKS, t["id"])
    r = http("GET", url + "?limit=2", key=key)
    assert r.status == 200, r.body
    page = r.json()
    assert [x["name"] for x in page["results"]] == ["part-0", "part-1"]
    assert page["limit"] == 2
    r = http("GET", url + "?limit=2&cursor=" + page["cursor"], key=key)
    page = r.json()
    assert [x["name"] for x in page["results"]] == ["part-2"]
    assert page["results"][0]["metadata"] == {"i": 2}
    assert "cursor" not in page
    assert problem(http("GET", url + "?cursor=xyz", key=key), 400) == \
        "Invalid cursor: 'xyz'"

    # Another task's results stay apart.
    other = create(stack, name="no-results")
    r = http("GET", "%s%s/%s/results" % (stack.api_url, TASKS, other["id"]),
             key=key)
    assert r.json() == {"results": []}
    r = http("GET", "%s%s/%s/events?limit=1" % (stack.api_url, TASKS,
                                                t["id"]), key=key)
    assert len(r.json()["events"]) == 1
    assert "cursor" in r.json()


# ---- accounts, scopes, methods ---------------------------------------------

def test_accounts_cannot_see_each_other(stack):
    t = create(stack, nca="acct-x", name="private")
    kb = key_of(stack, "acct-y")
    base = "%s%s/%s" % (stack.api_url, TASKS, t["id"])
    assert "account 'acct-y'" in problem(http("GET", base, key=kb), 404)
    assert http("POST", base + "/cancel", key=kb).status == 404
    assert http("DELETE", base, key=kb).status == 404
    assert http("GET", base + "/events", key=kb).status == 404
    assert http("GET", base + "/results", key=kb).status == 404
    r = http("GET", stack.api_url + TASKS, key=kb)
    assert r.json() == {"tasks": []}
    r = http("POST", stack.api_url + TASKS + "/bulk", key=kb,
             json_body={"taskIds": [t["id"]]})
    assert r.json()["tasks"] == []
    assert get(stack, t["id"], nca="acct-x").json()["task"]["status"] == \
        "QUEUED"


def test_scopes_are_enforced(stack):
    lister = key_of(stack, "acct-s", "list_tasks")
    r = http("POST", stack.api_url + TASKS, key=lister, json_body=body())
    assert "lacks scope 'launch_task'" in problem(r, 403)
    assert http("GET", stack.api_url + TASKS, key=lister).status == 200
    launcher = key_of(stack, "acct-s", "launch_task")
    r = http("POST", stack.api_url + TASKS, key=launcher, json_body=body())
    assert r.status == 200
    tid = r.json()["task"]["id"]
    base = "%s%s/%s" % (stack.api_url, TASKS, tid)
    for method, url, scope in [
            ("GET", stack.api_url + TASKS, "list_tasks"),
            ("GET", base, "task_details"),
            ("POST", base + "/cancel", "cancel_task"),
            ("DELETE", base, "delete_task"),
            ("GET", base + "/events", "list_events"),
            ("GET", base + "/results", "list_results")]:
        r = http(method, url, key=launcher)
        assert "lacks scope '%s'" % scope in problem(r, 403), url
    assert http("GET", stack.api_url + TASKS).status == 401


def test_wrong_method_and_path(stack):
    key = key_of(stack, "acct-a")
    r = http("PUT", stack.api_url + TASKS, key=key, json_body={})
    assert r.status == 405
    assert r.headers["Allow"] == "GET, POST"
    r = http("GET", stack.api_url + TASKS + "/%s/nothing" % uuid.uuid4(),
             key=key)
    assert r.status == 404
