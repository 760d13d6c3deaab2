# SPDX-License-Identifier: Apache-2.0
"""The bus (nvcf/bus.h): NATS JetStream streams, queues and KV buckets."""
import ctypes

from . import _lib
from .errors import _text, check

BUCKET_FUNCTIONS = "nvcf_functions"
BUCKET_DEPLOYMENTS = "nvcf_deployments"
BUCKET_CLUSTERS = "nvcf_clusters"
BUCKET_INSTANCES = "nvcf_instances"
BUCKET_TASKS = "nvcf_tasks"
BUCKET_KEYS = "nvcf_keys"

STREAM_RESULTS = "NVCF_RESULTS"
STREAM_CREATION = "CreateNvcaFunctionTaskStream"
STREAM_TERMINATION = "TerminateNvcaStream"


def _b(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _data(value):
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


class Bus:
    """A connection to NATS with a JetStream context (nvcf_bus).

    Use it as a context manager, or call close(). Keyword options map to
    the fields of nvcf_bus_options; 0 or None means the library default.
    A method called after close() raises ValueError. Close it only when
    no other thread is inside one of its methods.

    Raises Unavailable when no server accepts the connection and
    InvalidArgument for options the library rejects.
    """

    def __init__(self, url=None, name=None, region=None, replicas=0,
                 connect_timeout_ms=0, max_reconnect=0,
                 results_max_age_ms=0, results_max_bytes=0,
                 request_ack_wait_ms=0, max_msg_size=0):
        lib = _lib.lib()
        self._handle = None
        opts = _lib.nvcf_bus_options()
        check(lib.nvcf_bus_options_init(ctypes.byref(opts),
                                        _lib.NVCF_BUS_OPTIONS_VERSION))
        # The library copies the options, but the strings must outlive
        # the call, so they are held here until it returns.
        self._strings = [_b(url), _b(name), _b(region)]
        opts.url, opts.name, opts.region = self._strings
        opts.replicas = replicas
        opts.connect_timeout_ms = connect_timeout_ms
        opts.max_reconnect = max_reconnect
        opts.results_max_age_ms = results_max_age_ms
        opts.results_max_bytes = results_max_bytes
        opts.request_ack_wait_ms = request_ack_wait_ms
        opts.max_msg_size = max_msg_size
        handle = ctypes.c_void_p()
        check(lib.nvcf_bus_new(ctypes.byref(handle), ctypes.byref(opts)))
        self._handle = handle
        self._lib = lib

    def _h(self):
        if self._handle is None:
            raise ValueError("the Bus is closed: create a new one")
        return self._handle

    @property
    def closed(self):
        return self._handle is None

    def close(self):
        """Closes the connection; calling it again does nothing."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._lib.nvcf_bus_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    @property
    def region(self):
        """The region of the request queues ("local" by default)."""
        return _text(self._lib.nvcf_bus_region(self._h()))

    def ensure_control(self):
        """Creates the control-plane streams and KV buckets if missing."""
        check(self._lib.nvcf_bus_ensure_control(self._h()))

    def ensure_queue(self, version_id, max_msgs=0):
        """Creates a version's request stream and worker consumer."""
        check(self._lib.nvcf_bus_ensure_queue(self._h(), _b(version_id),
                                              int(max_msgs)))

    def delete_queue(self, version_id):
        """Deletes a version's request stream and what it holds."""
        check(self._lib.nvcf_bus_delete_queue(self._h(), _b(version_id)))

    def queue_depth(self, version_id):
        """Returns (queued, in_flight) of a version's request queue.

        Raises NotFound when the version has no queue.
        """
        queued = ctypes.c_uint64(0)
        in_flight = ctypes.c_uint64(0)
        check(self._lib.nvcf_bus_queue_depth(
            self._h(), _b(version_id), ctypes.byref(queued),
            ctypes.byref(in_flight)))
        return queued.value, in_flight.value

    def ensure_cluster(self, cluster_id):
        """Creates one cluster's consumers and its nvca_{id} bucket."""
        check(self._lib.nvcf_bus_ensure_cluster(self._h(), _b(cluster_id)))

    def publish(self, subject, data, msg_id=None):
        """Publishes @data (bytes or str) to a JetStream subject and waits
        for the store. Raises QuotaExceeded when the stream is full and
        NotFound when no stream takes the subject."""
        raw = _data(data)
        check(self._lib.nvcf_bus_publish(self._h(), _b(subject), raw,
                                         len(raw), _b(msg_id)))

    def kv_get(self, bucket, key):
        """Returns (value bytes, revision). Raises NotFound."""
        ptr = ctypes.c_void_p()
        length = ctypes.c_size_t(0)
        revision = ctypes.c_uint64(0)
        check(self._lib.nvcf_bus_kv_get(
            self._h(), _b(bucket), _b(key), ctypes.byref(ptr),
            ctypes.byref(length), ctypes.byref(revision)))
        try:
            value = ctypes.string_at(ptr, length.value) if ptr else b""
        finally:
            self._lib.nvcf_free(ptr)
        return value, revision.value

    def kv_put(self, bucket, key, value):
        """Writes a value unconditionally; returns its revision."""
        raw = _data(value)
        revision = ctypes.c_uint64(0)
        check(self._lib.nvcf_bus_kv_put(self._h(), _b(bucket), _b(key),
                                        raw, len(raw),
                                        ctypes.byref(revision)))
        return revision.value

    def kv_create(self, bucket, key, value):
        """Writes a value only if the key is new; returns its revision.
        Raises AlreadyExists otherwise."""
        raw = _data(value)
        revision = ctypes.c_uint64(0)
        check(self._lib.nvcf_bus_kv_create(self._h(), _b(bucket), _b(key),
                                           raw, len(raw),
                                           ctypes.byref(revision)))
        return revision.value

    def kv_update(self, bucket, key, value, last_revision):
        """Writes a value only if the key is still at @last_revision;
        returns the new revision. Raises Conflict otherwise."""
        raw = _data(value)
        revision = ctypes.c_uint64(0)
        check(self._lib.nvcf_bus_kv_update(
            self._h(), _b(bucket), _b(key), raw, len(raw),
            int(last_revision), ctypes.byref(revision)))
        return revision.value

    def kv_delete(self, bucket, key):
        """Deletes a key; deleting a missing key is not an error."""
        check(self._lib.nvcf_bus_kv_delete(self._h(), _b(bucket), _b(key)))

    def kv_keys(self, bucket, filter=None):
        """Lists the keys of @bucket that match a subject pattern ("acct.>"),
        or all keys, as a list of str."""
        keys = ctypes.POINTER(ctypes.c_void_p)()
        count = ctypes.c_size_t(0)
        check(self._lib.nvcf_bus_kv_keys(self._h(), _b(bucket), _b(filter),
                                         ctypes.byref(keys),
                                         ctypes.byref(count)))
        try:
            return [ctypes.string_at(keys[i]).decode("utf-8", "replace")
                    for i in range(count.value)]
        finally:
            if keys:
                self._lib.nvcf_strings_free(keys, count.value)
