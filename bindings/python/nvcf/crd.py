# SPDX-License-Identifier: Apache-2.0
"""The compute plane's custom resources (nvcf/crd.h).

    with nvcf.crd.ICMSRequest.from_yaml(text) as req:
        actions, status = nvcf.crd.reconcile(req, nvcf.crd.Observation(
            now_ms=now, ack=nvcf.crd.Ack.OK))
        status.request_status, [a.name for a in actions], req.to_yaml()

An ICMSRequest, MiniService or NVCFBackend owns the C object it was
decoded into. Its properties read that object, so they show what each
reconcile step changed. Nothing here reads a clock or does I/O: the
caller passes the time and its observations, and performs the returned
actions itself.
"""
import ctypes
import dataclasses
import enum
import json
from typing import Dict, List, Optional

from . import _lib
from .errors import _text, check

_c = ctypes
_status = _c.c_int
_str = _c.c_char_p
_size = _c.c_size_t

OBSERVATION_VERSION = 1
OPTIONS_VERSION = 1
ACTIONS_VERSION = 1
ICMS_VERSION = 1
MINISERVICE_VERSION = 1
BACKEND_VERSION = 1

ICMS_API_VERSION = "nvca.nvcf.nvidia.io/v2beta1"
MINISERVICE_API_VERSION = "nvca.nvcf.nvidia.io/v1alpha1"
BACKEND_API_VERSION = "nvcf.nvidia.io/v1"


# -- enumerations ------------------------------------------------------------

class ObservedState(enum.IntEnum):
    """nvcf_crd_observed_t: an instance as the agent's runtime reports it."""
    ABSENT = 0
    STARTING = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    TERMINATED = 5

    @property
    def label(self):
        """The library's name ("running", ...)."""
        return observed_name(self)


class Ack(enum.IntEnum):
    """nvcf_crd_ack_t: the result of acking an order message."""
    NONE = 0
    OK = 1
    RETRY = 2
    REJECTED = 3

    @property
    def label(self):
        """The library's name ("ok", ...)."""
        return ack_name(self)


class ActionKind(enum.IntEnum):
    """nvcf_crd_action_kind_t: what a reconcile step requests."""
    ACK_MESSAGE = 0
    CREATE_INSTANCE = 1
    DELETE_INSTANCE = 2
    REPORT_STATUS = 3
    GARBAGE_COLLECT = 4
    REQUEUE = 5

    @property
    def label(self):
        """The library's name ("create-instance", ...)."""
        return action_name(self)


class IcmsAction(enum.IntEnum):
    """nvcf_crd_icms_action_t: spec.action of an ICMSRequest."""
    REQUEST_INSTANCES = 0
    REQUEST_INSTANCES_FOR_TASK = 1
    TERMINATE_INSTANCES = 2

    @property
    def label(self):
        """The library's name ("RequestICMSInstances", ...)."""
        return icms_action_name(self)


class RequestStatus(enum.IntEnum):
    """nvcf_crd_request_status_t: status.requestStatus."""
    NEW = 0
    PENDING = 1
    IN_PROGRESS = 2
    CACHING_IN_PROGRESS = 3
    INSTANCES_IN_PROGRESS = 4
    COMPLETED = 5
    COMPLETION_ACKNOWLEDGED = 6
    FAILED = 7
    FAILURE_ACKNOWLEDGED = 8

    @property
    def label(self):
        """The library's name ("" for NEW, "RequestPending", ...)."""
        return request_status_name(self)


class InstanceKind(enum.IntEnum):
    """nvcf_crd_instance_kind_t: status.instances[].instanceType."""
    POD = 0
    MINISERVICE = 1

    @property
    def label(self):
        """The library's name ("Pod" or "MiniService")."""
        return instance_kind_name(self)


class Phase(enum.IntEnum):
    """nvcf_crd_phase_t: status.phase of a MiniService."""
    NONE = 0
    CACHING_IN_PROGRESS = 1
    INSTALLING = 2
    INSTALLED = 3
    STARTING = 4
    RUNNING = 5
    COMPLETED = 6
    INSTALL_FAILED = 7
    FAILED = 8

    @property
    def label(self):
        """The library's name ("" for NONE, "Installing", ...)."""
        return phase_name(self)


class AgentStatus(enum.IntEnum):
    """nvcf_crd_agent_status_t: status.agentStatus of an NVCFBackend."""
    UNKNOWN = 0
    HEALTHY = 1
    UNHEALTHY = 2

    @property
    def label(self):
        """The library's name ("Healthy", ...)."""
        return agent_status_name(self)


def _enum(cls, value):
    """Returns @value as a member of @cls, or the bare int when a newer
    library returns a value that this binding does not define."""
    try:
        return cls(value)
    except ValueError:
        return value


# -- C structures ------------------------------------------------------------

class _CLabel(_c.Structure):
    _fields_ = [("key", _str), ("value", _str)]


class _CMeta(_c.Structure):
    _fields_ = [("name", _str), ("namespace_name", _str),
                ("labels", _c.POINTER(_CLabel)), ("labels_count", _size),
                ("created_ms", _c.c_int64), ("generation", _c.c_int64)]


class _CObservedInstance(_c.Structure):
    _fields_ = [("id", _str), ("state", _c.c_int), ("reason", _str)]


class _CGpuAllocation(_c.Structure):
    _fields_ = [("gpu", _str), ("allocated", _c.c_uint32)]


class _CObservation(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("now_ms", _c.c_int64),
                ("instances", _c.POINTER(_CObservedInstance)),
                ("instances_count", _size), ("ack", _c.c_int),
                ("error", _str), ("error_terminal", _c.c_bool),
                ("heartbeat_ms", _c.c_int64),
                ("allocations", _c.POINTER(_CGpuAllocation)),
                ("allocations_count", _size)]


_OPTION_FIELDS = ("max_running_timeout_ms", "cleanup_window_ms",
                  "ack_retry_timeout_ms", "report_interval_ms",
                  "sync_interval_ms", "failure_backoff_ms",
                  "failure_requeue_ms", "heartbeat_timeout_ms")


class _COptions(_c.Structure):
    _fields_ = [("version", _c.c_uint)] + [(f, _c.c_int64)
                                           for f in _OPTION_FIELDS]


class _CAction(_c.Structure):
    _fields_ = [("kind", _c.c_int), ("instance_id", _str),
                ("index", _c.c_uint32), ("miniservice", _c.c_uint32),
                ("state", _str), ("reason", _str), ("after_ms", _c.c_int64)]


class _CActions(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("items", _c.POINTER(_CAction)),
                ("count", _size)]


class _CIcmsInstance(_c.Structure):
    _fields_ = [("id", _str), ("kind", _c.c_int), ("status", _str),
                ("last_reported_status", _str),
                ("last_reported_ms", _c.c_int64), ("reason", _str)]


class _CIcmsSpec(_c.Structure):
    _fields_ = [("request_id", _str), ("nca_id", _str),
                ("action", _c.c_int), ("function_id", _str),
                ("function_version_id", _str), ("task_id", _str),
                ("gpu", _str), ("instance_type", _str),
                ("instance_count", _c.c_uint32),
                ("gpu_specification_id", _str), ("deployment_id", _str),
                ("launch_specification", _str),
                ("termination_instance_ids", _c.POINTER(_str)),
                ("termination_instance_ids_count", _size)]


class _CIcmsStatus(_c.Structure):
    _fields_ = [("request_status", _c.c_int),
                ("last_status_updated_ms", _c.c_int64),
                ("last_ack_ms", _c.c_int64),
                ("reconcile_errors", _c.c_uint32),
                ("last_reconcile_error", _str),
                ("instances", _c.POINTER(_CIcmsInstance)),
                ("instances_count", _size)]


class _CIcms(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("metadata", _CMeta),
                ("spec", _CIcmsSpec), ("status", _CIcmsStatus)]


class _CCondition(_c.Structure):
    _fields_ = [("type", _str), ("status", _str), ("reason", _str),
                ("message", _str), ("last_transition_ms", _c.c_int64)]


class _CMiniServiceSpec(_c.Structure):
    _fields_ = [("namespace_name", _str), ("icms_request_name", _str),
                ("chart_url", _str), ("service_name", _str),
                ("service_port", _c.c_uint32), ("values", _str),
                ("is_task", _c.c_bool)]


class _CMiniServiceStatus(_c.Structure):
    _fields_ = [("phase", _c.c_int),
                ("last_phase_transition_ms", _c.c_int64),
                ("conditions", _c.POINTER(_CCondition)),
                ("conditions_count", _size), ("revision", _c.c_uint32),
                ("observed_generation", _c.c_int64)]


class _CMiniService(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("metadata", _CMeta),
                ("spec", _CMiniServiceSpec),
                ("status", _CMiniServiceStatus)]


class _CInstanceType(_c.Structure):
    _fields_ = [("name", _str), ("description", _str),
                ("gpu_count", _c.c_uint32), ("is_default", _c.c_bool)]


class _CBackendGpu(_c.Structure):
    _fields_ = [("name", _str), ("capacity", _c.c_uint32),
                ("instance_types", _c.POINTER(_CInstanceType)),
                ("instance_types_count", _size)]


class _CGpuUsage(_c.Structure):
    _fields_ = [("gpu", _str), ("capacity", _c.c_uint32),
                ("allocated", _c.c_uint32), ("available", _c.c_uint32)]


class _CBackendSpec(_c.Structure):
    _fields_ = [("cluster_id", _str), ("cluster_name", _str),
                ("cluster_group", _str), ("region", _str),
                ("attributes", _c.POINTER(_str)),
                ("attributes_count", _size),
                ("gpus", _c.POINTER(_CBackendGpu)), ("gpus_count", _size)]


class _CBackendStatus(_c.Structure):
    _fields_ = [("agent_status", _c.c_int),
                ("last_updated_agent_status_ms", _c.c_int64),
                ("gpu_usage", _c.POINTER(_CGpuUsage)),
                ("gpu_usage_count", _size)]


class _CBackend(_c.Structure):
    _fields_ = [("version", _c.c_uint), ("metadata", _CMeta),
                ("spec", _CBackendSpec), ("status", _CBackendStatus)]


def _decoders(prefix, ctype):
    """Prototypes of one kind's from_json, from_yaml, to_json, to_yaml,
    free and reconcile."""
    obj = _c.POINTER(ctype)
    return [
        (prefix + "_from_json", _status,
         [_c.POINTER(obj), _c.c_char_p, _size]),
        (prefix + "_from_yaml", _status,
         [_c.POINTER(obj), _c.c_char_p, _size]),
        # the text is released with nvcf_free(), so it stays a pointer
        (prefix + "_to_json", _status, [_c.POINTER(_c.c_void_p), obj]),
        (prefix + "_to_yaml", _status, [_c.POINTER(_c.c_void_p), obj]),
        (prefix + "_free", None, [obj]),
        (prefix + "_reconcile", _status,
         [_c.POINTER(_c.POINTER(_CActions)), obj,
          _c.POINTER(_CObservation), _c.POINTER(_COptions)]),
    ]


_lib.OPTIONAL["crd"] = [
    ("nvcf_crd_observed_name", _str, [_c.c_int]),
    ("nvcf_crd_ack_name", _str, [_c.c_int]),
    ("nvcf_crd_action_name", _str, [_c.c_int]),
    ("nvcf_crd_icms_action_name", _str, [_c.c_int]),
    ("nvcf_crd_request_status_name", _str, [_c.c_int]),
    ("nvcf_crd_instance_kind_name", _str, [_c.c_int]),
    ("nvcf_crd_phase_name", _str, [_c.c_int]),
    ("nvcf_crd_phase_observed", _c.c_int, [_c.c_int]),
    ("nvcf_crd_agent_status_name", _str, [_c.c_int]),
    ("nvcf_crd_options_init", _status,
     [_c.POINTER(_COptions), _c.c_uint]),
    ("nvcf_crd_actions_free", None, [_c.POINTER(_CActions)]),
    ("nvcf_crd_backend_validate", _status, [_c.POINTER(_CBackend)]),
] + (_decoders("nvcf_crd_icms", _CIcms) +
     _decoders("nvcf_crd_miniservice", _CMiniService) +
     _decoders("nvcf_crd_backend", _CBackend))


def _crd_lib():
    lib = _lib.lib()
    lib.require("crd")
    return lib


def available():
    """True when the loaded libnvcf exports the crd module."""
    return _lib.lib().has("crd")


def _b(value):
    if value is None:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


def _s(value):
    return None if value is None else value.decode("utf-8", "replace")


def _json(value):
    """Decodes compact JSON text from the library. None stays None."""
    return None if value is None else json.loads(value.decode("utf-8"))


def _items(pointer, count):
    return [pointer[i] for i in range(count)]


# -- names -------------------------------------------------------------------

def observed_name(state):
    """Returns the name of an ObservedState ("running"), or "unknown"."""
    return _text(_crd_lib().nvcf_crd_observed_name(int(state)))


def ack_name(ack):
    """Returns the name of an Ack ("rejected"), or "unknown"."""
    return _text(_crd_lib().nvcf_crd_ack_name(int(ack)))


def action_name(kind):
    """Returns the name of an ActionKind ("garbage-collect"), or
    "unknown"."""
    return _text(_crd_lib().nvcf_crd_action_name(int(kind)))


def icms_action_name(action):
    """Returns the name of an IcmsAction ("TerminateInstances"), or
    "unknown"."""
    return _text(_crd_lib().nvcf_crd_icms_action_name(int(action)))


def request_status_name(status):
    """Returns the name of a RequestStatus ("RequestCompleted"; "" for
    NEW), or "unknown"."""
    return _text(_crd_lib().nvcf_crd_request_status_name(int(status)))


def instance_kind_name(kind):
    """Returns the name of an InstanceKind ("Pod"), or "unknown"."""
    return _text(_crd_lib().nvcf_crd_instance_kind_name(int(kind)))


def phase_name(phase):
    """Returns the name of a Phase ("Installing"; "" for NONE), or
    "unknown"."""
    return _text(_crd_lib().nvcf_crd_phase_name(int(phase)))


def phase_observed(phase):
    """Returns the ObservedState to give an ICMSRequest step for a
    MiniService instance in @phase."""
    return _enum(ObservedState,
                 _crd_lib().nvcf_crd_phase_observed(int(phase)))


def agent_status_name(status):
    """Returns the name of an AgentStatus ("Healthy"), or "unknown"."""
    return _text(_crd_lib().nvcf_crd_agent_status_name(int(status)))


# -- inputs of a reconcile step ----------------------------------------------

@dataclasses.dataclass
class ObservedInstance:
    """One instance (for a MiniService, one workload pod) as the agent's
    runtime reports it; reason is the cause of a failure."""
    id: str
    state: ObservedState = ObservedState.RUNNING
    reason: Optional[str] = None


@dataclasses.dataclass
class GpuAllocation:
    """GPUs of one type held by instances (an NVCFBackend input)."""
    gpu: str
    allocated: int


@dataclasses.dataclass
class Observation:
    """Observations of the agent before a reconcile step
    (nvcf_crd_observation).

    now_ms and heartbeat_ms are ms since the epoch, and heartbeat_ms 0
    means no heartbeat yet. An instance id missing from instances counts
    as absent. allocations is a list of GpuAllocation or a
    {gpu: allocated} dict. error is the failure met performing the
    previous step's actions, or None. Each kind of object ignores the
    members it does not use.
    """
    now_ms: int
    instances: List[ObservedInstance] = dataclasses.field(
        default_factory=list)
    ack: Ack = Ack.NONE
    error: Optional[str] = None
    error_terminal: bool = False
    heartbeat_ms: int = 0
    allocations: object = dataclasses.field(default_factory=list)

    def _to_c(self):
        """Returns (struct, keep). keep contains the arrays and strings
        that the struct points to, and must outlive the call."""
        inst = [i if isinstance(i, ObservedInstance)
                else ObservedInstance(*i) for i in self.instances]
        alloc = self.allocations
        if isinstance(alloc, dict):
            alloc = [GpuAllocation(g, n) for g, n in alloc.items()]

        alloc = [a if isinstance(a, GpuAllocation) else GpuAllocation(*a)
                 for a in alloc]
        for a in alloc:
            if int(a.allocated) < 0:
                raise ValueError("invalid allocations[%r] (%d): give a "
                                 "count >= 0" % (a.gpu, a.allocated))

        keep = []
        ci = (_CObservedInstance * max(1, len(inst)))()
        for n, i in enumerate(inst):
            if i.id is None:
                raise ValueError("missing instances[%d].id: give the "
                                 "id that the runtime reports" % n)
            keep += [_b(i.id), _b(i.reason)]
            ci[n].id, ci[n].reason = keep[-2], keep[-1]
            ci[n].state = int(i.state)
        ca = (_CGpuAllocation * max(1, len(alloc)))()
        for n, a in enumerate(alloc):
            keep.append(_b(a.gpu))
            ca[n].gpu = keep[-1]
            ca[n].allocated = int(a.allocated)
        keep += [ci, ca, _b(self.error)]

        obs = _CObservation(version=OBSERVATION_VERSION,
                            now_ms=int(self.now_ms), ack=int(self.ack),
                            error=keep[-1],
                            error_terminal=bool(self.error_terminal),
                            heartbeat_ms=int(self.heartbeat_ms))

        obs.instances = ci
        obs.instances_count = len(inst)
        obs.allocations = ca
        obs.allocations_count = len(alloc)
        return obs, keep


@dataclasses.dataclass
class Options:
    """Time constants of the state machines in ms (nvcf_crd_options).

    The defaults are the reference values of NVCF_CRD_OPTIONS_INIT; a
    field set to 0 also takes its default. Tests shorten them.
    """
    max_running_timeout_ms: int = 180 * 60000
    cleanup_window_ms: int = 3600000
    ack_retry_timeout_ms: int = 300000
    report_interval_ms: int = 300000
    sync_interval_ms: int = 15000
    failure_backoff_ms: int = 90000
    failure_requeue_ms: int = 30000
    heartbeat_timeout_ms: int = 600000

    @classmethod
    def defaults(cls):
        """Returns the loaded library's defaults
        (nvcf_crd_options_init())."""
        c = _COptions()
        check(_crd_lib().nvcf_crd_options_init(_c.byref(c),
                                               OPTIONS_VERSION))
        return cls(**{f: getattr(c, f) for f in _OPTION_FIELDS})

    def _to_c(self):
        c = _COptions(version=OPTIONS_VERSION)
        for f in _OPTION_FIELDS:
            value = int(getattr(self, f))
            # the library would quietly take the default instead
            if value < 0:
                raise ValueError("invalid %s (%d): give a value >= 0, "
                                 "or 0 for the default" % (f, value))
            setattr(c, f, value)
        return c


# -- outputs -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Action:
    """One action of a reconcile step, to perform in list order.

    kind is an ActionKind, and name is the library's name for it
    ("create-instance"). instance_id is set for create, delete and
    report. For a create, index is the instance's index and miniservice
    tells whether it is a Helm workload. state and reason are what to
    report, and reason is also the cause of a delete. after_ms is the
    delay of a requeue.
    """
    kind: ActionKind
    name: str
    instance_id: Optional[str] = None
    index: int = 0
    miniservice: bool = False
    state: Optional[str] = None
    reason: Optional[str] = None
    after_ms: int = 0


def _actions_from_c(lib, ptr):
    out = []
    for a in _items(ptr.contents.items, ptr.contents.count):
        out.append(Action(_enum(ActionKind, a.kind),
                          _text(lib.nvcf_crd_action_name(a.kind)),
                          _s(a.instance_id), a.index, bool(a.miniservice),
                          _s(a.state), _s(a.reason), a.after_ms))
    return out


@dataclasses.dataclass(frozen=True)
class Metadata:
    """metadata: name, namespace (or None), labels in document order,
    creationTimestamp in ms (0 when unset) and generation."""
    name: str
    namespace: Optional[str]
    labels: Dict[str, str]
    created_ms: int
    generation: int

    @classmethod
    def _from_c(cls, m):
        return cls(_s(m.name), _s(m.namespace_name),
                   {_s(x.key): _s(x.value) or ""
                    for x in _items(m.labels, m.labels_count)},
                   m.created_ms, m.generation)


@dataclasses.dataclass(frozen=True)
class IcmsSpec:
    """ICMSRequest spec. launch_specification is the decoded function or
    task launch specification (a dict), or None; termination_instance_ids
    lists the instances a TerminateInstances order stops."""
    request_id: str
    nca_id: Optional[str]
    action: IcmsAction
    function_id: Optional[str]
    function_version_id: Optional[str]
    task_id: Optional[str]
    gpu: Optional[str]
    instance_type: Optional[str]
    instance_count: int
    gpu_specification_id: Optional[str]
    deployment_id: Optional[str]
    launch_specification: Optional[dict]
    termination_instance_ids: List[str]

    @classmethod
    def _from_c(cls, s):
        return cls(_s(s.request_id), _s(s.nca_id),
                   _enum(IcmsAction, s.action), _s(s.function_id),
                   _s(s.function_version_id), _s(s.task_id), _s(s.gpu),
                   _s(s.instance_type), s.instance_count,
                   _s(s.gpu_specification_id), _s(s.deployment_id),
                   _json(s.launch_specification),
                   [_s(x) for x in _items(s.termination_instance_ids,
                                          s.termination_instance_ids_count)])


@dataclasses.dataclass(frozen=True)
class IcmsInstance:
    """One entry of an ICMSRequest's status.instances.

    status is the ICMS instance state ("starting", "running",
    "terminated", ...). last_reported_status is "" until the first
    report.
    """
    id: str
    kind: InstanceKind
    status: str
    last_reported_status: str
    last_reported_ms: int
    reason: Optional[str]


@dataclasses.dataclass(frozen=True)
class IcmsStatus:
    """ICMSRequest status. Times are ms since the epoch, 0 when unset."""
    request_status: RequestStatus
    last_status_updated_ms: int
    last_ack_ms: int
    reconcile_errors: int
    last_reconcile_error: Optional[str]
    instances: List[IcmsInstance]

    @property
    def label(self):
        """requestStatus as the document spells it."""
        return request_status_name(self.request_status)

    @classmethod
    def _from_c(cls, s):
        inst = [IcmsInstance(_s(i.id), _enum(InstanceKind, i.kind),
                             _s(i.status), _s(i.last_reported_status) or "",
                             i.last_reported_ms, _s(i.reason))
                for i in _items(s.instances, s.instances_count)]
        return cls(_enum(RequestStatus, s.request_status),
                   s.last_status_updated_ms, s.last_ack_ms,
                   s.reconcile_errors, _s(s.last_reconcile_error), inst)


@dataclasses.dataclass(frozen=True)
class Condition:
    """One status.conditions entry of a MiniService."""
    type: str
    status: str
    reason: Optional[str]
    message: Optional[str]
    last_transition_ms: int


@dataclasses.dataclass(frozen=True)
class MiniServiceSpec:
    """MiniService spec; values is the decoded helmChartConfig.values
    (a dict), or None. service_port is 0 when unset."""
    namespace: str
    icms_request_name: str
    chart_url: str
    service_name: Optional[str]
    service_port: int
    values: Optional[dict]
    is_task: bool

    @classmethod
    def _from_c(cls, s):
        return cls(_s(s.namespace_name), _s(s.icms_request_name),
                   _s(s.chart_url), _s(s.service_name), s.service_port,
                   _json(s.values), bool(s.is_task))


@dataclasses.dataclass(frozen=True)
class MiniServiceStatus:
    """MiniService status. last_phase_transition_ms is 0 when unset."""
    phase: Phase
    last_phase_transition_ms: int
    conditions: List[Condition]
    revision: int
    observed_generation: int

    @property
    def label(self):
        """status.phase as the document spells it."""
        return phase_name(self.phase)

    def condition(self, type_):
        """Returns the Condition of @type_ ("ObjectsHealthy"), or
        None."""
        for c in self.conditions:
            if c.type == type_:
                return c
        return None

    @classmethod
    def _from_c(cls, s):
        conds = [Condition(_s(c.type), _s(c.status), _s(c.reason),
                           _s(c.message), c.last_transition_ms)
                 for c in _items(s.conditions, s.conditions_count)]
        return cls(_enum(Phase, s.phase), s.last_phase_transition_ms, conds,
                   s.revision, s.observed_generation)


@dataclasses.dataclass(frozen=True)
class InstanceType:
    """One instance type of a GPU of an NVCFBackend."""
    name: str
    description: Optional[str]
    gpu_count: int
    default: bool


@dataclasses.dataclass(frozen=True)
class BackendGpu:
    """One GPU type of an NVCFBackend's spec.gpus."""
    name: str
    capacity: int
    instance_types: List[InstanceType]


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    """NVCFBackend spec, as the agent's backend file has it."""
    cluster_id: str
    cluster_name: str
    cluster_group: str
    region: str
    attributes: List[str]
    gpus: List[BackendGpu]

    @classmethod
    def _from_c(cls, s):
        gpus = [BackendGpu(_s(g.name), g.capacity,
                           [InstanceType(_s(t.name), _s(t.description),
                                         t.gpu_count, bool(t.is_default))
                            for t in _items(g.instance_types,
                                            g.instance_types_count)])
                for g in _items(s.gpus, s.gpus_count)]
        return cls(_s(s.cluster_id), _s(s.cluster_name),
                   _s(s.cluster_group), _s(s.region),
                   [_s(a) for a in _items(s.attributes,
                                          s.attributes_count)], gpus)


@dataclasses.dataclass(frozen=True)
class GpuUsage:
    """One entry of status.gpuUsage; available never goes below 0."""
    gpu: str
    capacity: int
    allocated: int
    available: int


@dataclasses.dataclass(frozen=True)
class BackendStatus:
    """NVCFBackend status; gpu_usage follows spec.gpus order."""
    agent_status: AgentStatus
    last_updated_agent_status_ms: int
    gpu_usage: List[GpuUsage]

    @property
    def label(self):
        """agentStatus as the document spells it."""
        return agent_status_name(self.agent_status)

    def usage(self, gpu):
        """Returns the GpuUsage of @gpu, or None."""
        for u in self.gpu_usage:
            if u.gpu == gpu:
                return u
        return None

    @classmethod
    def _from_c(cls, s):
        return cls(_enum(AgentStatus, s.agent_status),
                   s.last_updated_agent_status_ms,
                   [GpuUsage(_s(u.gpu), u.capacity, u.allocated,
                             u.available)
                    for u in _items(s.gpu_usage, s.gpu_usage_count)])


# -- the objects -------------------------------------------------------------

class _Resource:
    """An object decoded by the library, which this wrapper owns.

    A context manager; close() frees it (also on garbage collection).
    One thread at a time may use one object.
    """
    _PREFIX = None      # "nvcf_crd_icms"
    _CTYPE = None
    _SPEC = None
    _STATUS = None

    def __init__(self, _handle=None, _owner_lib=None):
        if _handle is None:
            raise TypeError("missing object: create a %s with "
                            "from_yaml() or from_json()"
                            % type(self).__name__)
        self._handle = _handle
        self._lib = _owner_lib

    def _fn(self, verb):
        return getattr(self._lib, "%s_%s" % (self._PREFIX, verb))

    @classmethod
    def _decode(cls, verb, text):
        lib = _crd_lib()
        data = text.encode("utf-8") if isinstance(text, str) else \
            bytes(text)
        out = _c.POINTER(cls._CTYPE)()
        check(getattr(lib, "%s_%s" % (cls._PREFIX, verb))(
            _c.byref(out), data, len(data)))
        return cls(out, lib)

    @classmethod
    def from_yaml(cls, text):
        """Decodes one YAML document (str or bytes). Raises
        InvalidArgument naming the field that is missing or wrong."""
        return cls._decode("from_yaml", text)

    @classmethod
    def from_json(cls, text):
        """Decodes JSON text (str or bytes) or a dict. Raises
        InvalidArgument naming the field that is missing or wrong."""
        if isinstance(text, dict):
            text = json.dumps(text)
        return cls._decode("from_json", text)

    def _o(self):
        if self._handle is None:
            raise ValueError("the %s is closed: decode it again"
                             % type(self).__name__)
        return self._handle.contents

    def _encode(self, verb):
        self._o()
        out = _c.c_void_p()
        check(self._fn(verb)(_c.byref(out), self._handle))
        try:
            return _c.string_at(out).decode("utf-8")
        finally:
            self._lib.nvcf_free(out)

    def to_json(self):
        """Returns the object as compact JSON text (unset members left
        out); from_json() of it gives an equal object."""
        return self._encode("to_json")

    def to_yaml(self):
        """Returns the object as a YAML document."""
        return self._encode("to_yaml")

    def to_dict(self):
        """Returns the object as a dict (its JSON form, decoded)."""
        return json.loads(self.to_json())

    def copy(self):
        """Returns an independent copy that owns its own C object."""
        return type(self).from_json(self.to_json())

    def reconcile(self, observation, options=None):
        """Runs one reconcile step with @observation (an Observation) and
        @options (Options, or None for the defaults).

        Updates this object's status and returns (actions, status): the
        list of Action to perform in order, and a copy of the new status.
        Raises InvalidArgument for an invalid observation, options or
        NVCFBackend spec (the object is then unchanged). After
        OutOfMemory the object may be partly updated, so discard it.
        """
        self._o()
        if not isinstance(observation, Observation):
            raise TypeError("invalid observation %s: pass an "
                            "nvcf.crd.Observation"
                            % type(observation).__name__)
        obs, keep = observation._to_c()
        opts = (options or Options())._to_c()
        acts = _c.POINTER(_CActions)()
        check(self._fn("reconcile")(_c.byref(acts), self._handle,
                                    _c.byref(obs), _c.byref(opts)))
        del keep
        try:
            actions = _actions_from_c(self._lib, acts)
        finally:
            self._lib.nvcf_crd_actions_free(acts)
        return actions, self.status

    @property
    def metadata(self):
        """A copy of metadata (Metadata)."""
        return Metadata._from_c(self._o().metadata)

    @property
    def name(self):
        """metadata.name."""
        return _s(self._o().metadata.name)

    @property
    def spec(self):
        """A copy of the spec."""
        return self._SPEC._from_c(self._o().spec)

    @property
    def status(self):
        """A copy of the status as it is now."""
        return self._STATUS._from_c(self._o().status)

    def close(self):
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._fn("free")(handle)

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self):
        if self._handle is None:
            return "<%s closed>" % type(self).__name__
        return "<%s %s %r>" % (type(self).__name__, self.name,
                               self.status.label)


class ICMSRequest(_Resource):
    """An ICMSRequest: one creation or termination order of a cluster
    agent. The reconcile step moves status.requestStatus from "" through
    RequestPending and RequestInProgress to RequestCompleted (or
    RequestFailed) and their Acknowledged states."""
    _PREFIX = "nvcf_crd_icms"
    _CTYPE = _CIcms
    _SPEC = IcmsSpec
    _STATUS = IcmsStatus

    @property
    def request_id(self):
        """spec.requestId."""
        return _s(self._o().spec.request_id)

    @property
    def action(self):
        """spec.action (IcmsAction)."""
        return _enum(IcmsAction, self._o().spec.action)

    @property
    def request_status(self):
        """status.requestStatus (RequestStatus)."""
        return _enum(RequestStatus, self._o().status.request_status)

    @property
    def instances(self):
        """status.instances as a list of IcmsInstance."""
        return self.status.instances


class MiniService(_Resource):
    """A MiniService: one Helm workload. The reconcile step installs the
    chart and follows its pods from Installing to Running (or Completed
    for a task), InstallFailed or Failed."""
    _PREFIX = "nvcf_crd_miniservice"
    _CTYPE = _CMiniService
    _SPEC = MiniServiceSpec
    _STATUS = MiniServiceStatus

    @property
    def phase(self):
        """status.phase (Phase)."""
        return _enum(Phase, self._o().status.phase)

    @property
    def conditions(self):
        """status.conditions as a list of Condition."""
        return self.status.conditions


class NVCFBackend(_Resource):
    """An NVCFBackend: the cluster an agent serves, its GPUs and its
    health. The reconcile step sets agentStatus from the heartbeat age
    and gpuUsage from the observed allocations."""
    _PREFIX = "nvcf_crd_backend"
    _CTYPE = _CBackend
    _SPEC = BackendSpec
    _STATUS = BackendStatus

    @property
    def cluster_id(self):
        """spec.clusterId."""
        return _s(self._o().spec.cluster_id)

    @property
    def agent_status(self):
        """status.agentStatus (AgentStatus)."""
        return _enum(AgentStatus, self._o().status.agent_status)

    def validate(self):
        """Checks the spec (names, uniqueness, GPU counts); raises
        InvalidArgument naming the field. Returns self."""
        self._o()
        check(self._lib.nvcf_crd_backend_validate(self._handle))
        return self


def reconcile(obj, observation, options=None):
    """Runs one reconcile step of @obj (an ICMSRequest, MiniService or
    NVCFBackend); returns (actions, status). See _Resource.reconcile()."""
    if not isinstance(obj, _Resource):
        raise TypeError("invalid object %s: reconcile() takes an "
                        "ICMSRequest, MiniService or NVCFBackend"
                        % type(obj).__name__)
    return obj.reconcile(observation, options)
