# SPDX-License-Identifier: Apache-2.0
"""Cluster inventory and placement (nvcf/routing.h).

    with nvcf.routing.Inventory() as inv:
        inv.add_cluster({"clusterId": "c1", "gpus": [...],
                         "heartbeatAtMs": now_ms})
        route = inv.place(nvcf.routing.PlacementSpec(
            "L40S", "NCP.GPU.L40S_1x", instance_count=2, now_ms=now_ms))
        route.eligible, route.excluded, route.unplaced

Pure functions: the caller passes the time; nothing does I/O.
"""
import ctypes
import dataclasses
import enum
import json
from typing import List, Optional, Tuple

from . import _lib
from .errors import _text, check

_c = ctypes
_status = _c.c_int
_str = _c.c_char_p
_strs = _c.POINTER(_c.c_char_p)

CLUSTER_INFO_VERSION = 1
PLACEMENT_SPEC_VERSION = 1
HEARTBEAT_TIMEOUT_MS_DEFAULT = 30000
NAME_MAX = 320


class PlacementMode(enum.IntEnum):
    """nvcf_placement_mode."""
    PACK = 0
    SPREAD = 1


class RouteReason(enum.IntEnum):
    """nvcf_route_reason: why a cluster cannot take a placement."""
    EXCLUDED_BY_CALLER = 1
    NOT_IN_CLUSTERS = 2
    NOT_IN_BACKEND = 3
    NOT_IN_REGIONS = 4
    MISSING_ATTRIBUTE = 5
    UNHEALTHY = 6
    NO_SUCH_GPU = 7
    NO_SUCH_INSTANCE_TYPE = 8
    NO_CAPACITY = 9


class WorkloadKind(enum.IntEnum):
    """nvcf_workload_kind."""
    FUNCTION = 0
    TASK = 1


class _CInstanceType(_c.Structure):
    _fields_ = [("name", _str), ("description", _str),
                ("is_default", _c.c_bool), ("gpu_count", _c.c_uint)]


class _CGpu(_c.Structure):
    _fields_ = [("name", _str), ("capacity", _c.c_uint),
                ("allocated", _c.c_uint),
                ("instance_types", _c.POINTER(_CInstanceType)),
                ("instance_types_count", _c.c_size_t)]


class _CCluster(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("cluster_id", _str),
                ("name", _str), ("group", _str), ("region", _str),
                ("attributes", _strs), ("attributes_count", _c.c_size_t),
                ("gpus", _c.POINTER(_CGpu)), ("gpus_count", _c.c_size_t),
                ("healthy", _c.c_bool), ("heartbeat_ms", _c.c_int64)]


class _CSpec(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("gpu", _str),
                ("instance_type", _str),
                ("clusters", _strs), ("clusters_count", _c.c_size_t),
                ("backend", _str),
                ("regions", _strs), ("regions_count", _c.c_size_t),
                ("attributes", _strs), ("attributes_count", _c.c_size_t),
                ("instance_count", _c.c_uint), ("now_ms", _c.c_int64),
                ("heartbeat_timeout_ms", _c.c_int64),
                ("exclude", _strs), ("exclude_count", _c.c_size_t),
                ("mode", _c.c_int)]


class _CEntry(_c.Structure):
    _fields_ = [("cluster_id", _str), ("gpu", _str),
                ("instance_type", _str), ("gpu_count", _c.c_uint),
                ("free_gpus", _c.c_uint), ("free_slots", _c.c_uint),
                ("assigned", _c.c_uint)]


class _CExclusion(_c.Structure):
    _fields_ = [("cluster_id", _str), ("reason", _c.c_int), ("text", _str)]


_p = _c.c_void_p
_lib.OPTIONAL["routing"] = [
    ("nvcf_inventory_new", _status, [_c.POINTER(_p)]),
    ("nvcf_inventory_free", None, [_p]),
    ("nvcf_inventory_add_cluster", _status, [_p, _c.POINTER(_CCluster)]),
    ("nvcf_inventory_add_cluster_json", _status, [_p, _str]),
    ("nvcf_inventory_remove", _status, [_p, _str]),
    ("nvcf_inventory_count", _c.c_size_t, [_p]),
    ("nvcf_inventory_cluster", _c.POINTER(_CCluster), [_p, _c.c_size_t]),
    ("nvcf_inventory_find", _status,
     [_p, _str, _c.POINTER(_c.c_size_t)]),
    ("nvcf_inventory_cluster_healthy", _c.c_bool,
     [_p, _c.c_size_t, _c.c_int64, _c.c_int64]),
    ("nvcf_inventory_remove_unhealthy", _status,
     [_p, _c.c_int64, _c.c_int64, _c.POINTER(_c.c_size_t)]),
    ("nvcf_inventory_cluster_groups_json", _status,
     [_p, _str, _c.POINTER(_p)]),
    ("nvcf_route_reason_name", _str, [_c.c_int]),
    ("nvcf_routing_place", _status,
     [_p, _c.POINTER(_CSpec), _c.POINTER(_p)]),
    ("nvcf_route_free", None, [_p]),
    ("nvcf_route_count", _c.c_size_t, [_p]),
    ("nvcf_route_entry_at", _c.POINTER(_CEntry), [_p, _c.c_size_t]),
    ("nvcf_route_excluded_count", _c.c_size_t, [_p]),
    ("nvcf_route_excluded_at", _c.POINTER(_CExclusion),
     [_p, _c.c_size_t]),
    ("nvcf_route_unplaced", _c.c_uint, [_p]),
    ("nvcf_route_explanation", _str, [_p]),
    ("nvcf_inventory_validate_spec", _status,
     [_p, _c.POINTER(_CSpec), _c.c_char_p, _c.c_size_t]),
    ("nvcf_routing_create_subject", _status,
     [_c.c_int, _str, _str, _str, _c.c_char_p, _c.c_size_t]),
    ("nvcf_routing_create_consumer", _status,
     [_str, _c.c_char_p, _c.c_size_t]),
    ("nvcf_routing_create_filter", _status,
     [_str, _c.c_char_p, _c.c_size_t]),
    ("nvcf_routing_terminate_subject", _status,
     [_str, _c.c_char_p, _c.c_size_t]),
    ("nvcf_routing_terminate_consumer", _status,
     [_str, _c.c_char_p, _c.c_size_t]),
]


def _routing_lib():
    lib = _lib.lib()
    lib.require("routing")
    return lib


def available():
    """True when the loaded libnvcf exports the routing module."""
    return _lib.lib().has("routing")


def _b(value):
    if value is None:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


def _s(value):
    return None if value is None else value.decode("utf-8", "replace")


class _StringArray:
    """A char ** built from Python strings, alive as long as this is."""

    def __init__(self, values):
        self.values = [_b(v) for v in (values or ())]
        self.array = (_c.c_char_p * max(1, len(self.values)))(*self.values)
        self.count = len(self.values)


# -- inventory ---------------------------------------------------------------

@dataclasses.dataclass
class InstanceType:
    name: str
    gpu_count: int = 1
    description: str = ""
    default: bool = False


@dataclasses.dataclass
class Gpu:
    name: str
    capacity: int
    allocated: int = 0
    instance_types: List[InstanceType] = dataclasses.field(
        default_factory=list)


@dataclasses.dataclass
class Cluster:
    """One cluster as stored in the inventory (nvcf_cluster_info)."""
    cluster_id: str
    gpus: List[Gpu] = dataclasses.field(default_factory=list)
    name: Optional[str] = None
    group: Optional[str] = None
    region: Optional[str] = None
    attributes: List[str] = dataclasses.field(default_factory=list)
    healthy: bool = True
    heartbeat_ms: int = 0

    def to_record(self):
        """Returns the cluster as an `nvcf_clusters` KV record (a dict)."""
        rec = {"clusterId": self.cluster_id,
               "attributes": list(self.attributes),
               "health": "healthy" if self.healthy else "unhealthy",
               "heartbeatAtMs": int(self.heartbeat_ms),
               "gpus": [{"name": g.name, "capacity": g.capacity,
                         "allocated": g.allocated,
                         "instanceTypes": [
                             {"name": t.name, "gpuCount": t.gpu_count,
                              "description": t.description,
                              "default": t.default}
                             for t in g.instance_types]}
                        for g in self.gpus]}
        for key, value in (("name", self.name), ("group", self.group),
                           ("region", self.region)):
            if value is not None:
                rec[key] = value
        return rec

    @classmethod
    def _from_c(cls, c):
        gpus = []
        for i in range(c.gpus_count):
            g = c.gpus[i]
            types = [InstanceType(_s(t.name), t.gpu_count,
                                  _s(t.description) or "", t.is_default)
                     for t in (g.instance_types[j]
                               for j in range(g.instance_types_count))]
            gpus.append(Gpu(_s(g.name), g.capacity, g.allocated, types))
        return cls(_s(c.cluster_id), gpus, _s(c.name), _s(c.group),
                   _s(c.region),
                   [_s(c.attributes[i]) for i in range(c.attributes_count)],
                   bool(c.healthy), c.heartbeat_ms)


@dataclasses.dataclass
class PlacementSpec:
    """Placement request (nvcf_placement_spec). Times are in ms since the
    epoch."""
    gpu: str
    instance_type: str
    instance_count: int = 1
    now_ms: int = 0
    clusters: Tuple[str, ...] = ()
    backend: Optional[str] = None
    regions: Tuple[str, ...] = ()
    attributes: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    heartbeat_timeout_ms: int = 0
    mode: PlacementMode = PlacementMode.PACK

    def _to_c(self):
        keep = [_StringArray(self.clusters), _StringArray(self.regions),
                _StringArray(self.attributes), _StringArray(self.exclude)]
        spec = _CSpec(version=PLACEMENT_SPEC_VERSION, gpu=_b(self.gpu),
                      instance_type=_b(self.instance_type),
                      backend=_b(self.backend),
                      instance_count=int(self.instance_count),
                      now_ms=int(self.now_ms),
                      heartbeat_timeout_ms=int(self.heartbeat_timeout_ms),
                      mode=int(self.mode))
        for i, field in enumerate(("clusters", "regions", "attributes",
                                   "exclude")):
            setattr(spec, field, keep[i].array)
            setattr(spec, field + "_count", keep[i].count)
        return spec, keep


@dataclasses.dataclass(frozen=True)
class RouteEntry:
    """An eligible cluster and how many instances it was given."""
    cluster_id: str
    gpu: str
    instance_type: str
    gpu_count: int
    free_gpus: int
    free_slots: int
    assigned: int


@dataclasses.dataclass(frozen=True)
class Exclusion:
    """A cluster left out, and why."""
    cluster_id: str
    reason: RouteReason
    text: str


@dataclasses.dataclass(frozen=True)
class Route:
    """Result of Inventory.place(): eligible clusters in rank order, the
    excluded ones in inventory order, instances that fit nowhere, and
    one paragraph explaining it all."""
    eligible: List[RouteEntry]
    excluded: List[Exclusion]
    unplaced: int
    explanation: str

    @property
    def assignments(self):
        """{cluster_id: instances} of the clusters that got some."""
        return {e.cluster_id: e.assigned for e in self.eligible
                if e.assigned}


def reason_name(reason):
    """Returns the name of a RouteReason ("UNHEALTHY"), or "UNKNOWN"."""
    return _text(_routing_lib().nvcf_route_reason_name(int(reason)))


class Inventory:
    """The clusters known to a control plane (nvcf_inventory).

    A context manager; close() frees it. One thread changes it at a time.
    """

    def __init__(self, clusters=()):
        lib = _routing_lib()
        handle = _c.c_void_p()
        check(lib.nvcf_inventory_new(_c.byref(handle)))
        self._handle = handle
        self._lib = lib
        for c in clusters:
            self.add_cluster(c)

    def _h(self):
        if self._handle is None:
            raise ValueError("the Inventory is closed: create a new one")
        return self._handle

    def close(self):
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._lib.nvcf_inventory_free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def add_cluster(self, cluster):
        """Adds or replaces a cluster: a Cluster, an `nvcf_clusters`
        record (dict) or its JSON text. Raises InvalidArgument naming the
        field that is wrong."""
        if isinstance(cluster, Cluster):
            cluster = cluster.to_record()
        text = cluster if isinstance(cluster, (str, bytes)) else \
            json.dumps(cluster)
        check(self._lib.nvcf_inventory_add_cluster_json(self._h(),
                                                        _b(text)))

    def remove(self, cluster_id):
        """Removes a cluster by id; raises NotFound."""
        check(self._lib.nvcf_inventory_remove(self._h(), _b(cluster_id)))

    def __len__(self):
        return self._lib.nvcf_inventory_count(self._h())

    def cluster(self, index):
        """Cluster @index (insertion order) as a Cluster copy."""
        ptr = self._lib.nvcf_inventory_cluster(self._h(), index)
        if not ptr:
            raise IndexError("cluster index %d out of range (%d clusters)"
                             % (index, len(self)))
        return Cluster._from_c(ptr.contents)

    def clusters(self):
        """Returns every cluster, in insertion order."""
        return [self.cluster(i) for i in range(len(self))]

    def find(self, id_or_name):
        """Index of a cluster by id, else by name; raises NotFound."""
        index = _c.c_size_t(0)
        check(self._lib.nvcf_inventory_find(self._h(), _b(id_or_name),
                                            _c.byref(index)))
        return index.value

    def healthy(self, index, now_ms, heartbeat_timeout_ms=0):
        """True when cluster @index may take work at @now_ms."""
        return bool(self._lib.nvcf_inventory_cluster_healthy(
            self._h(), index, int(now_ms), int(heartbeat_timeout_ms)))

    def remove_unhealthy(self, now_ms, heartbeat_timeout_ms=0):
        """Drops unhealthy clusters; returns how many were removed."""
        removed = _c.c_size_t(0)
        check(self._lib.nvcf_inventory_remove_unhealthy(
            self._h(), int(now_ms), int(heartbeat_timeout_ms),
            _c.byref(removed)))
        return removed.value

    def cluster_groups(self, nca_id):
        """Returns the body of GET /v2/nvcf/clusterGroups for @nca_id."""
        out = _c.c_void_p()
        check(self._lib.nvcf_inventory_cluster_groups_json(
            self._h(), _b(nca_id), _c.byref(out)))
        try:
            return json.loads(_c.string_at(out).decode("utf-8"))
        finally:
            _lib.lib().nvcf_free(out)

    def validate_spec(self, spec):
        """Raises InvalidArgument, naming the field and value, when @spec
        can never be placed on this inventory; returns None otherwise."""
        cspec, keep = spec._to_c()
        err = _c.create_string_buffer(512)
        check(self._lib.nvcf_inventory_validate_spec(
            self._h(), _c.byref(cspec), err, len(err)))
        del keep

    def place(self, spec):
        """Chooses clusters for @spec; returns a Route (copied out)."""
        cspec, keep = spec._to_c()
        route = _c.c_void_p()
        check(self._lib.nvcf_routing_place(self._h(), _c.byref(cspec),
                                           _c.byref(route)))
        del keep
        lib = self._lib
        try:
            eligible = []
            for i in range(lib.nvcf_route_count(route)):
                e = lib.nvcf_route_entry_at(route, i).contents
                eligible.append(RouteEntry(
                    _s(e.cluster_id), _s(e.gpu), _s(e.instance_type),
                    e.gpu_count, e.free_gpus, e.free_slots, e.assigned))
            excluded = []
            for i in range(lib.nvcf_route_excluded_count(route)):
                x = lib.nvcf_route_excluded_at(route, i).contents
                try:
                    reason = RouteReason(x.reason)
                except ValueError:
                    reason = x.reason
                excluded.append(Exclusion(_s(x.cluster_id), reason,
                                          _s(x.text)))
            return Route(eligible, excluded, lib.nvcf_route_unplaced(route),
                         _s(lib.nvcf_route_explanation(route)) or "")
        finally:
            lib.nvcf_route_free(route)


# -- subjects and consumers --------------------------------------------------

def _name(fn, *args):
    buf = _c.create_string_buffer(NAME_MAX)
    check(fn(*(list(args) + [buf, len(buf)])))
    return buf.value.decode("utf-8")


def create_subject(cluster_id, gpu, instance_type,
                   kind=WorkloadKind.FUNCTION):
    """Create.NVCA.{Function|Task}.{clusterId}.{gpu}.{type with '|'}."""
    return _name(_routing_lib().nvcf_routing_create_subject, int(kind),
                 _b(cluster_id), _b(gpu), _b(instance_type))


def create_consumer(cluster_id):
    """CreateNvcaFunctionTaskStream-{clusterId}."""
    return _name(_routing_lib().nvcf_routing_create_consumer,
                 _b(cluster_id))


def create_filter(cluster_id):
    """Create.NVCA.*.{clusterId}.*.*"""
    return _name(_routing_lib().nvcf_routing_create_filter, _b(cluster_id))


def terminate_subject(cluster_id):
    """Terminate.NVCA.{clusterId}."""
    return _name(_routing_lib().nvcf_routing_terminate_subject,
                 _b(cluster_id))


def terminate_consumer(cluster_id):
    """TerminateNvcaStream-{clusterId}."""
    return _name(_routing_lib().nvcf_routing_terminate_consumer,
                 _b(cluster_id))
