# SPDX-License-Identifier: Apache-2.0
"""HTTP clients of the REST API and the invocation gateway (urllib only).

Paths, bodies and headers are NVCF's, so these clients work against any
NVCF-compatible endpoint by changing the base URL.
"""
import json
import time
import urllib.error
import urllib.parse
import urllib.request

from .errors import NvcfError, NvcfHttpError

# Loopback stacks must never be reached through a proxy from the
# environment (http_proxy), so proxies are switched off.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Headers(dict):
    """Response headers with case-insensitive lookup."""

    def __init__(self, pairs=()):
        super().__init__()
        for k, v in pairs:
            lk = k.lower()
            if lk in self:
                v = dict.__getitem__(self, lk) + ", " + v
            dict.__setitem__(self, lk, v)

    def __getitem__(self, key):
        return dict.__getitem__(self, key.lower())

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)

    def __contains__(self, key):
        return dict.__contains__(self, key.lower())


class Response:
    """An HTTP response: status, headers (case-insensitive), body bytes."""

    def __init__(self, status, headers, body, elapsed=0.0):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        """Decodes the body as JSON."""
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def ok(self):
        return 200 <= self.status < 400

    @property
    def request_id(self):
        """NVCF-REQID of a gateway response, or None."""
        return self.headers.get("NVCF-REQID")

    @property
    def nvcf_status(self):
        """NVCF-STATUS of a gateway response ("fulfilled", ...), or None."""
        return self.headers.get("NVCF-STATUS")

    def raise_for_status(self):
        """Raises NvcfHttpError when the status is 400 or above."""
        if self.status >= 400:
            raise NvcfHttpError(self)
        return self

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class _Http:
    def __init__(self, base_url, key=None, timeout=60.0):
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    def request(self, method, path, json_body=None, body=None,
                headers=None, timeout=None):
        """Sends one request; returns a Response for every status."""
        hdrs = {}
        if self.key:
            hdrs["Authorization"] = "Bearer " + self.key
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        hdrs.update(headers or {})
        url = self.base_url + path
        req = urllib.request.Request(url, data=body, method=method,
                                     headers=hdrs)
        start = time.monotonic()
        try:
            with _OPENER.open(req, timeout=timeout or self.timeout) as r:
                data = r.read()
                status, pairs = r.status, r.getheaders()
        except urllib.error.HTTPError as e:
            data = e.read()
            status, pairs = e.code, list(e.headers.items())
            e.close()
        return Response(status, Headers(pairs), data,
                        time.monotonic() - start)

    def _json(self, method, path, json_body=None, ok=(200,)):
        r = self.request(method, path, json_body=json_body)
        if r.status not in ok:
            raise NvcfHttpError(r, method, self.base_url + path)
        return r


def _q(value):
    return urllib.parse.quote(str(value), safe="")


class ApiClient:
    """The control-plane REST API (nvcf-api): functions, versions and
    deployments. Each method raises NvcfHttpError, with the RFC 7807
    problem fields, when the API replies with an error."""

    def __init__(self, base_url, key=None, timeout=60.0):
        self._http = _Http(base_url, key, timeout)

    @property
    def base_url(self):
        return self._http.base_url

    def request(self, method, path, json_body=None, **kw):
        """A raw call; returns the Response whatever its status."""
        return self._http.request(method, path, json_body=json_body, **kw)

    @staticmethod
    def function_body(name, inference_url, container_image,
                      inference_port=None, health_uri=None, args=None,
                      env=None, description=None, tags=None, **extra):
        """The JSON body of a function (version) creation."""
        body = {"name": name, "inferenceUrl": inference_url,
                "containerImage": container_image}
        if inference_port is not None:
            body["inferencePort"] = inference_port
        if health_uri is not None:
            body["healthUri"] = health_uri
        if args:
            body["containerArgs"] = args
        if env:
            body["containerEnvironment"] = [
                {"key": k, "value": str(v)} for k, v in env.items()]
        if description is not None:
            body["description"] = description
        if tags:
            body["tags"] = list(tags)
        body.update(extra)
        return body

    def create_function(self, name, inference_url, container_image,
                        **kw):
        """Creates a function and its first version; returns the
        function record (with "id" and "versionId").

        Keywords: inference_port, health_uri, args (a string), env (a
        dict), description, tags, and any other NVCF field by its JSON
        name (health={...}, apiBodyFormat=...).
        """
        body = self.function_body(name, inference_url, container_image,
                                  **kw)
        return self._http._json("POST", "/v2/nvcf/functions",
                                body).json()["function"]

    def create_version(self, function_id, name, inference_url,
                       container_image, **kw):
        """Adds a version to a function; returns its record."""
        body = self.function_body(name, inference_url, container_image,
                                  **kw)
        return self._http._json(
            "POST", "/v2/nvcf/functions/%s/versions" % _q(function_id),
            body).json()["function"]

    def list_functions(self):
        """Every function version of the account."""
        return self._http._json("GET", "/v2/nvcf/functions").json()[
            "functions"]

    def list_versions(self, function_id):
        """The versions of one function."""
        return self._http._json(
            "GET", "/v2/nvcf/functions/%s/versions" % _q(function_id)
        ).json()["functions"]

    def get_function(self, function_id, version_id):
        """One function version's record (its "status" included)."""
        return self._http._json(
            "GET", "/v2/nvcf/functions/%s/versions/%s" % (
                _q(function_id), _q(version_id))).json()["function"]

    def delete_version(self, function_id, version_id):
        """Deletes a version, undeploying it first."""
        self._http._json("DELETE", "/v2/nvcf/functions/%s/versions/%s" % (
            _q(function_id), _q(version_id)), ok=(200, 204))

    @staticmethod
    def deployment_spec(gpu, instance_type, min_instances=1,
                        max_instances=1, max_request_concurrency=1,
                        **extra):
        """Builds one entry of deploymentSpecifications."""
        spec = {"gpu": gpu, "instanceType": instance_type,
                "minInstances": min_instances,
                "maxInstances": max_instances,
                "maxRequestConcurrency": max_request_concurrency}
        spec.update(extra)
        return spec

    def deploy(self, function_id, version_id, gpu=None, instance_type=None,
               min_instances=1, max_instances=1, max_request_concurrency=1,
               specs=None, wait=False, timeout=60.0, **extra):
        """Deploys a version; returns the deployment record.

        Give either gpu and instance_type (plus the instance counts and
        any extra spec field such as regions=[...], clusters=[...] or
        backend="group"), or specs, a list of deployment_spec() dicts.
        With wait=True it returns only once the version is ACTIVE (see
        wait_active()).
        """
        if specs is None:
            if gpu is None or instance_type is None:
                raise ValueError("deploy() needs gpu and instance_type, or "
                                 "specs=[ApiClient.deployment_spec(...)]")
            specs = [self.deployment_spec(
                gpu, instance_type, min_instances, max_instances,
                max_request_concurrency, **extra)]
        deployment = self._http._json(
            "POST", "/v2/nvcf/deployments/functions/%s/versions/%s" % (
                _q(function_id), _q(version_id)),
            {"deploymentSpecifications": specs}).json()["deployment"]
        if wait:
            self.wait_active(function_id, version_id, timeout)
        return deployment

    def wait_active(self, function_id, version_id, timeout=60.0,
                    interval=0.1):
        """Polls the version until it is ACTIVE; returns its record.

        Raises NvcfError naming the status when it becomes ERROR, and
        TimeoutError naming the last status when @timeout ends first.
        """
        deadline = time.monotonic() + timeout
        status = None
        while True:
            fn = self.get_function(function_id, version_id)
            status = fn.get("status")
            if status == "ACTIVE":
                return fn
            if status == "ERROR":
                raise NvcfError(-1, "NVCF_ERROR", "function %s version %s "
                                "failed to deploy: %s" % (
                                    function_id, version_id,
                                    json.dumps(fn.get("healthInfo") or
                                               fn)[:500]))
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    "function %s version %s is still %s after %.0f s" % (
                        function_id, version_id, status, timeout))
            time.sleep(interval)

    def get_deployment(self, function_id, version_id):
        """Returns a version's deployment record."""
        return self._http._json(
            "GET", "/v2/nvcf/deployments/functions/%s/versions/%s" % (
                _q(function_id), _q(version_id))).json()["deployment"]

    def get_deployment_by_id(self, deployment_id):
        """Returns a deployment record by its deploymentId."""
        return self._http._json(
            "GET", "/v2/nvcf/deployments/%s" % _q(deployment_id)
        ).json()["deployment"]

    def delete_deployment(self, function_id, version_id):
        """Undeploys a version; returns the function record."""
        return self._http._json(
            "DELETE", "/v2/nvcf/deployments/functions/%s/versions/%s" % (
                _q(function_id), _q(version_id))).json()["function"]

    def queue_details(self, function_id):
        """Queue depth of each version of a function."""
        return self._http._json(
            "GET", "/v2/nvcf/queues/functions/%s" % _q(function_id)).json()

    def cluster_groups(self):
        """Lists the cluster groups (backends) visible to the account."""
        return self._http._json("GET", "/v2/nvcf/clusterGroups").json()[
            "clusterGroups"]


class GatewayClient:
    """The invocation gateway (nvcf-invocation).

    invoke() and poll() return the Response whatever its status, so that
    callers can count outcomes. Call raise_for_status() on it, or use
    call(), which follows a 202 by polling and raises NvcfHttpError.
    """

    def __init__(self, base_url, key=None, timeout=120.0):
        self._http = _Http(base_url, key, timeout)

    @property
    def base_url(self):
        return self._http.base_url

    def invoke(self, function_id, body=None, version_id=None,
               poll_seconds=None, headers=None, timeout=None):
        """POST /v2/nvcf/pexec/functions/{id}[/versions/{vid}].

        @body is sent as JSON unless it is bytes or str. The gateway
        returns 200 with the function's response, or 202 with NVCF-REQID
        when the poll window (NVCF-POLL-SECONDS) ends first.
        """
        path = "/v2/nvcf/pexec/functions/%s" % _q(function_id)
        if version_id is not None:
            path += "/versions/%s" % _q(version_id)
        hdrs = dict(headers or {})
        if poll_seconds is not None:
            hdrs["NVCF-POLL-SECONDS"] = str(int(poll_seconds))
        if body is None or isinstance(body, (bytes, str)):
            return self._http.request("POST", path, body=body or b"",
                                      headers=hdrs, timeout=timeout)
        return self._http.request("POST", path, json_body=body,
                                  headers=hdrs, timeout=timeout)

    def poll(self, request_id, poll_seconds=None, timeout=None):
        """GET /v2/nvcf/pexec/status/{requestId}: 200 with the result,
        202 while it is still running, 404 for an unknown id."""
        hdrs = {}
        if poll_seconds is not None:
            hdrs["NVCF-POLL-SECONDS"] = str(int(poll_seconds))
        return self._http.request(
            "GET", "/v2/nvcf/pexec/status/%s" % _q(request_id),
            headers=hdrs, timeout=timeout)

    def call(self, function_id, body=None, version_id=None,
             poll_seconds=None, deadline=300.0):
        """invoke(), then poll() while the answer is 202; returns the
        final Response and raises NvcfHttpError for 400 and above, or
        TimeoutError when @deadline seconds pass first."""
        end = time.monotonic() + deadline
        r = self.invoke(function_id, body, version_id, poll_seconds)
        while r.status == 202:
            request_id = r.request_id
            if not request_id:
                raise NvcfHttpError(r, "POST", self.base_url)
            if time.monotonic() >= end:
                raise TimeoutError("request %s still running after %.0f s"
                                   % (request_id, deadline))
            r = self.poll(request_id, poll_seconds)
        return r.raise_for_status()

    def health(self):
        """True when GET /health returns 200."""
        return self._http.request("GET", "/health", timeout=5).status == 200
