// SPDX-License-Identifier: Apache-2.0

package nvcf

/*
#include <stdlib.h>
#include <string.h>
#include <nvcf/crd.h>

static void nvcfgo_crd_options_defaults(nvcf_crd_options *o)
{
	nvcf_crd_options d = NVCF_CRD_OPTIONS_INIT;

	*o = d;
}
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// apiVersion of each custom resource.
const (
	ICMSAPIVersion        = C.NVCF_CRD_ICMS_API_VERSION
	MiniServiceAPIVersion = C.NVCF_CRD_MINISERVICE_API_VERSION
	BackendAPIVersion     = C.NVCF_CRD_BACKEND_API_VERSION
)

// ---- enumerations -------------------------------------------------------

// ObservedState is an instance (or workload pod) as the agent's runtime
// reports it (nvcf_crd_observed_t).
type ObservedState int

// Observed states. The ABI freezes their numbers.
const (
	ObservedAbsent     ObservedState = 0
	ObservedStarting   ObservedState = 1
	ObservedRunning    ObservedState = 2
	ObservedSucceeded  ObservedState = 3
	ObservedFailed     ObservedState = 4
	ObservedTerminated ObservedState = 5
)

// String returns the library's name ("running"), or "unknown".
func (s ObservedState) String() string {
	return C.GoString(C.nvcf_crd_observed_name(C.nvcf_crd_observed_t(s)))
}

// Ack is the result of acking an ICMSRequest's order message.
type Ack int

// Ack results.
const (
	// AckNone means no ack was attempted since the last step.
	AckNone     Ack = 0
	AckOK       Ack = 1
	AckRetry    Ack = 2 // transient failure, so the step requests it again
	AckRejected Ack = 3 // the bus rejected it for good
)

// String returns the library's name ("rejected"), or "unknown".
func (a Ack) String() string {
	return C.GoString(C.nvcf_crd_ack_name(C.nvcf_crd_ack_t(a)))
}

// ActionKind is the kind of work a reconcile step requests from the agent.
type ActionKind int

// Action kinds. nvcf/crd.h describes each one's contract.
const (
	ActionAckMessage     ActionKind = 0
	ActionCreateInstance ActionKind = 1
	ActionDeleteInstance ActionKind = 2
	ActionReportStatus   ActionKind = 3
	ActionGarbageCollect ActionKind = 4
	ActionRequeue        ActionKind = 5
)

// String returns the library's name ("create-instance"), or "unknown".
func (k ActionKind) String() string {
	return C.GoString(C.nvcf_crd_action_name(C.nvcf_crd_action_kind_t(k)))
}

// ICMSAction is spec.action of an ICMSRequest.
type ICMSAction int

// ICMSRequest actions.
const (
	ICMSRequestInstances        ICMSAction = 0 // function instances
	ICMSRequestInstancesForTask ICMSAction = 1 // task instances
	ICMSTerminateInstances      ICMSAction = 2
)

// String returns the library's name ("TerminateInstances"), or
// "unknown".
func (a ICMSAction) String() string {
	return C.GoString(C.nvcf_crd_icms_action_name(
		C.nvcf_crd_icms_action_t(a)))
}

// RequestStatus is status.requestStatus of an ICMSRequest.
type RequestStatus int

// Request statuses, in the order of the creation lifecycle.
const (
	RequestNew                    RequestStatus = 0
	RequestPending                RequestStatus = 1
	RequestInProgress             RequestStatus = 2
	RequestCachingInProgress      RequestStatus = 3
	RequestInstancesInProgress    RequestStatus = 4
	RequestCompleted              RequestStatus = 5
	RequestCompletionAcknowledged RequestStatus = 6
	RequestFailed                 RequestStatus = 7
	RequestFailureAcknowledged    RequestStatus = 8
)

// String returns requestStatus as documents spell it ("RequestPending",
// or "" for RequestNew), or "unknown".
func (s RequestStatus) String() string {
	return C.GoString(C.nvcf_crd_request_status_name(
		C.nvcf_crd_request_status_t(s)))
}

// InstanceKind is status.instances[].instanceType of an ICMSRequest.
type InstanceKind int

// Instance kinds.
const (
	InstancePod         InstanceKind = 0 // a process or container
	InstanceMiniService InstanceKind = 1 // a Helm workload
)

// String returns "Pod", "MiniService" or "unknown".
func (k InstanceKind) String() string {
	return C.GoString(C.nvcf_crd_instance_kind_name(
		C.nvcf_crd_instance_kind_t(k)))
}

// Phase is status.phase of a MiniService.
type Phase int

// MiniService phases. Completed, InstallFailed and Failed are sinks.
const (
	PhaseNone              Phase = 0
	PhaseCachingInProgress Phase = 1
	PhaseInstalling        Phase = 2
	PhaseInstalled         Phase = 3
	PhaseStarting          Phase = 4
	PhaseRunning           Phase = 5
	PhaseCompleted         Phase = 6
	PhaseInstallFailed     Phase = 7
	PhaseFailed            Phase = 8
)

// String returns the phase as documents spell it ("Installing", or "" for
// PhaseNone), or "unknown".
func (p Phase) String() string {
	return C.GoString(C.nvcf_crd_phase_name(C.nvcf_crd_phase_t(p)))
}

// Observed returns the state to give an ICMSRequest step for a
// MiniService instance in phase p.
func (p Phase) Observed() ObservedState {
	return ObservedState(C.nvcf_crd_phase_observed(C.nvcf_crd_phase_t(p)))
}

// AgentStatus is status.agentStatus of an NVCFBackend.
type AgentStatus int

// Agent statuses.
const (
	AgentUnknown   AgentStatus = 0 // no heartbeat yet
	AgentHealthy   AgentStatus = 1
	AgentUnhealthy AgentStatus = 2
)

// String returns "Unknown", "Healthy", "Unhealthy" or "unknown".
func (s AgentStatus) String() string {
	return C.GoString(C.nvcf_crd_agent_status_name(
		C.nvcf_crd_agent_status_t(s)))
}

// ---- inputs of a reconcile step -------------------------------------------

// ObservedInstance is one instance (for a MiniService, one workload pod)
// as the agent's runtime reports it. Reason is the cause of a failure.
type ObservedInstance struct {
	ID     string
	State  ObservedState
	Reason string
}

// GPUAllocation is how many GPUs of one type instances hold, an input of
// the NVCFBackend step.
type GPUAllocation struct {
	GPU       string
	Allocated uint32
}

// Observation is the input of a reconcile step: the agent's view of the
// runtime (nvcf_crd_observation). Each kind of object ignores the members
// it does not use.
type Observation struct {
	// Now is the time of the step. The zero time means time.Now().
	Now time.Time
	// Instances of the object. An id missing here counts as absent.
	Instances []ObservedInstance
	// Ack is the ICMSRequest's result of the last ACK_MESSAGE action.
	Ack Ack
	// Error is the failure met performing the previous step's actions,
	// or "". ErrorTerminal marks one that retrying cannot clear.
	Error         string
	ErrorTerminal bool
	// Heartbeat is the time of the NVCFBackend agent's last heartbeat.
	// The zero time means none yet.
	Heartbeat time.Time
	// Allocations per GPU type (NVCFBackend). Absent types count 0.
	Allocations []GPUAllocation
}

func (o *Observation) toC(a *cArena, c *C.nvcf_crd_observation) {
	c.version = C.NVCF_CRD_OBSERVATION_VERSION
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	c.now_ms = epochMs(now)
	c.ack = C.nvcf_crd_ack_t(o.Ack)
	c.error = a.str("observation error", o.Error, true)
	c.error_terminal = C.bool(o.ErrorTerminal)
	c.heartbeat_ms = epochMs(o.Heartbeat)
	if n := len(o.Instances); n > 0 {
		size := C.size_t(unsafe.Sizeof(C.nvcf_crd_observed_instance{}))
		arr := (*C.nvcf_crd_observed_instance)(a.alloc(
			size * C.size_t(n)))
		for i, in := range o.Instances {
			if in.ID == "" && a.err == nil {
				a.err = invalid("observation instances[%d].id is "+
					"empty: give the id the runtime reports", i)
			}
			ci := &unsafe.Slice(arr, n)[i]
			ci.id = a.str("instance id", in.ID, false)
			ci.state = C.nvcf_crd_observed_t(in.State)
			ci.reason = a.str("instance reason", in.Reason, true)
		}
		c.instances = arr
		c.instances_count = C.size_t(n)
	}
	if n := len(o.Allocations); n > 0 {
		size := C.size_t(unsafe.Sizeof(C.nvcf_crd_gpu_allocation{}))
		arr := (*C.nvcf_crd_gpu_allocation)(a.alloc(size * C.size_t(n)))
		for i, g := range o.Allocations {
			ca := &unsafe.Slice(arr, n)[i]
			ca.gpu = a.str("allocation GPU", g.GPU, false)
			ca.allocated = C.uint32_t(g.Allocated)
		}
		c.allocations = arr
		c.allocations_count = C.size_t(n)
	}
}

// CRDOptions are the time constants of the reconcile steps
// (nvcf_crd_options). A zero field takes the library's default. See
// DefaultCRDOptions, and nvcf/crd.h for each one's meaning.
type CRDOptions struct {
	MaxRunningTimeout time.Duration // an instance still starting fails
	CleanupWindow     time.Duration // failed requests are cleaned up
	AckRetryTimeout   time.Duration // transient ack failures retried
	ReportInterval    time.Duration // unchanged states reported again
	SyncInterval      time.Duration // requeue while waiting on the world
	FailureBackoff    time.Duration // MiniService failures tolerated
	FailureRequeue    time.Duration // requeue inside that backoff
	HeartbeatTimeout  time.Duration // NVCFBackend turns Unhealthy
}

func crdOptionsFromC(c *C.nvcf_crd_options) CRDOptions {
	return CRDOptions{
		MaxRunningTimeout: fromMs(c.max_running_timeout_ms),
		CleanupWindow:     fromMs(c.cleanup_window_ms),
		AckRetryTimeout:   fromMs(c.ack_retry_timeout_ms),
		ReportInterval:    fromMs(c.report_interval_ms),
		SyncInterval:      fromMs(c.sync_interval_ms),
		FailureBackoff:    fromMs(c.failure_backoff_ms),
		FailureRequeue:    fromMs(c.failure_requeue_ms),
		HeartbeatTimeout:  fromMs(c.heartbeat_timeout_ms),
	}
}

// DefaultCRDOptions returns the loaded library's defaults
// (nvcf_crd_options_init), which are NVCF's reference values.
func DefaultCRDOptions() CRDOptions {
	var c C.nvcf_crd_options
	// Only an unknown version fails. The defaults of the headers this
	// binding was built with are then the closest values.
	if call(func() C.nvcf_status {
		return C.nvcf_crd_options_init(&c, C.NVCF_CRD_OPTIONS_VERSION)
	}) != nil {
		C.nvcfgo_crd_options_defaults(&c)
	}
	return crdOptionsFromC(&c)
}

func (o *CRDOptions) toC(c *C.nvcf_crd_options) error {
	c.version = C.NVCF_CRD_OPTIONS_VERSION
	fields := []struct {
		name string
		d    time.Duration
		dst  *C.int64_t
	}{
		{"MaxRunningTimeout", o.MaxRunningTimeout,
			&c.max_running_timeout_ms},
		{"CleanupWindow", o.CleanupWindow, &c.cleanup_window_ms},
		{"AckRetryTimeout", o.AckRetryTimeout, &c.ack_retry_timeout_ms},
		{"ReportInterval", o.ReportInterval, &c.report_interval_ms},
		{"SyncInterval", o.SyncInterval, &c.sync_interval_ms},
		{"FailureBackoff", o.FailureBackoff, &c.failure_backoff_ms},
		{"FailureRequeue", o.FailureRequeue, &c.failure_requeue_ms},
		{"HeartbeatTimeout", o.HeartbeatTimeout,
			&c.heartbeat_timeout_ms},
	}
	for _, f := range fields {
		// The library reads 0 as "default", so a negative or sub-ms
		// value would silently become the default.
		if f.d < 0 || (f.d > 0 && f.d < time.Millisecond) {
			return invalid("invalid CRDOptions.%s (%s): give at "+
				"least 1ms, or 0 for the default", f.name, f.d)
		}
		*f.dst = ms(f.d)
	}
	return nil
}

// ---- outputs --------------------------------------------------------------

// Action is one action of a reconcile step, to perform in list order.
// InstanceID is set for create, delete and report. For a create, Index
// is the instance's index, and MiniService is true for a Helm workload.
// State and Reason are what to report, and Reason is also the cause of a
// delete. After is the delay of a requeue.
type Action struct {
	Kind        ActionKind
	InstanceID  string
	Index       uint32
	MiniService bool
	State       string
	Reason      string
	After       time.Duration
}

// String returns the kind's name and its set fields, for logs and test
// failures.
func (a Action) String() string {
	s := a.Kind.String()
	if a.InstanceID != "" {
		s += " " + a.InstanceID
	}
	if a.Kind == ActionCreateInstance {
		s += fmt.Sprintf(" index=%d miniservice=%t", a.Index,
			a.MiniService)
	}
	if a.State != "" {
		s += " state=" + a.State
	}
	if a.Reason != "" {
		s += " reason=" + a.Reason
	}
	if a.Kind == ActionRequeue {
		s += " after=" + a.After.String()
	}
	return s
}

func actionsFromC(p *C.nvcf_crd_actions) []Action {
	if p == nil || p.count == 0 {
		return []Action{}
	}
	out := make([]Action, 0, int(p.count))
	for _, a := range unsafe.Slice(p.items, p.count) {
		out = append(out, Action{
			Kind:        ActionKind(a.kind),
			InstanceID:  goStr(a.instance_id),
			Index:       uint32(a.index),
			MiniService: a.miniservice != 0,
			State:       goStr(a.state),
			Reason:      goStr(a.reason),
			After:       fromMs(a.after_ms),
		})
	}
	return out
}

// reconcileC runs one step through f with C copies of obs and opts.
func reconcileC(obs Observation, opts *CRDOptions,
	f func(**C.nvcf_crd_actions, *C.nvcf_crd_observation,
		*C.nvcf_crd_options) C.nvcf_status) ([]Action, error) {
	var a cArena
	defer a.free()
	var co C.nvcf_crd_observation
	obs.toC(&a, &co)
	if a.err != nil {
		return nil, a.err
	}
	var copts C.nvcf_crd_options
	popts := (*C.nvcf_crd_options)(nil)
	if opts != nil {
		if err := opts.toC(&copts); err != nil {
			return nil, err
		}
		popts = &copts
	}
	var acts *C.nvcf_crd_actions
	if err := call(func() C.nvcf_status {
		return f(&acts, &co, popts)
	}); err != nil {
		return nil, err
	}
	defer C.nvcf_crd_actions_free(acts)
	return actionsFromC(acts), nil
}

// ---- shared pieces of the objects -------------------------------------------

// Label is one metadata label.
type Label struct {
	Key   string
	Value string
}

// Metadata is an object's metadata: the parts the compute plane uses.
// Created is zero when creationTimestamp is unset.
type Metadata struct {
	Name       string
	Namespace  string
	Labels     []Label // in document order
	Created    time.Time
	Generation int64
}

// Label returns the value of label key and whether the label exists.
func (m Metadata) Label(key string) (string, bool) {
	for _, l := range m.Labels {
		if l.Key == key {
			return l.Value, true
		}
	}
	return "", false
}

// msTime converts the library's ms since the epoch to a UTC time. The
// value 0 (unset) becomes the zero time.
func msTime(v C.int64_t) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(v)).UTC()
}

func strsFromC(p **C.char, n C.size_t) []string {
	out := []string{}
	if n == 0 {
		return out
	}
	for _, s := range unsafe.Slice(p, n) {
		out = append(out, goStr(s))
	}
	return out
}

// rawJSON copies the library's compact JSON text, or returns nil for NULL.
func rawJSON(s *C.char) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(C.GoString(s))
}

func metadataFromC(m *C.nvcf_crd_meta) Metadata {
	out := Metadata{
		Name:       goStr(m.name),
		Namespace:  goStr(m.namespace_name),
		Labels:     []Label{},
		Created:    msTime(m.created_ms),
		Generation: int64(m.generation),
	}
	if m.labels_count > 0 {
		for _, l := range unsafe.Slice(m.labels, m.labels_count) {
			out.Labels = append(out.Labels,
				Label{Key: goStr(l.key), Value: goStr(l.value)})
		}
	}
	return out
}

// decodeC passes text to a decoder as a pointer and a length. The decoder
// needs no terminating NUL and keeps no reference to the text.
func decodeC(text []byte, f func(*C.char, C.size_t) C.nvcf_status) error {
	var empty C.char
	p := (*C.char)(bytesPtr(text))
	if p == nil {
		p = &empty
	}
	return call(func() C.nvcf_status {
		return f(p, C.size_t(len(text)))
	})
}

// encodeC runs one encoder and copies its text.
func encodeC(f func(**C.char) C.nvcf_status) ([]byte, error) {
	var out *C.char
	if err := call(func() C.nvcf_status { return f(&out) }); err != nil {
		return nil, err
	}
	defer C.nvcf_free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(C.strlen(out))), nil
}

// Resource is one of *ICMSRequest, *MiniService and *NVCFBackend: an
// object decoded by the library that the Go value owns.
type Resource interface {
	// Kind returns "ICMSRequest", "MiniService" or "NVCFBackend".
	Kind() string
	// Name returns metadata.name, or "" after Close.
	Name() string
	// ToJSON returns the object as compact JSON.
	ToJSON() ([]byte, error)
	// ToYAML returns the object as a YAML document.
	ToYAML() ([]byte, error)
	// Close releases the C object.
	Close() error
	reconcile(obs Observation, opts *CRDOptions) ([]Action, error)
}

// Reconcile runs one reconcile step of obj with what the agent observed
// and the time constants opts (nil for the defaults). It updates obj's
// status in place and returns the actions to perform in order. Read the
// new status with obj's Status method. It fails with ErrInvalid for an
// invalid observation, options or NVCFBackend spec (obj is then
// unchanged), and with ErrClosed after Close. After ErrNoMemory obj may
// be partly updated and should be discarded.
func Reconcile(obj Resource, obs Observation, opts *CRDOptions) ([]Action, error) {
	if obj == nil {
		return nil, invalid("reconcile of a nil object: pass an " +
			"*ICMSRequest, *MiniService or *NVCFBackend")
	}
	return obj.reconcile(obs, opts)
}

// ---- ICMSRequest ----------------------------------------------------------

// ICMSSpec is an ICMSRequest's spec. Absent strings are "".
// LaunchSpecification is the function or task launch specification as
// compact JSON, or nil. TerminationInstanceIDs lists the instances a
// TerminateInstances order stops.
type ICMSSpec struct {
	RequestID              string
	NCAID                  string
	Action                 ICMSAction
	FunctionID             string
	FunctionVersionID      string
	TaskID                 string
	GPU                    string
	InstanceType           string
	InstanceCount          uint32
	GPUSpecificationID     string
	DeploymentID           string
	LaunchSpecification    json.RawMessage
	TerminationInstanceIDs []string
}

// ICMSInstance is one entry of an ICMSRequest's status.instances. Status
// is the ICMS instance state ("starting", "running", "terminated", ...).
// LastReportedStatus is "" and LastReported zero until the first report.
type ICMSInstance struct {
	ID                 string
	Kind               InstanceKind
	Status             string
	LastReportedStatus string
	LastReported       time.Time
	Reason             string
}

// ICMSStatus is an ICMSRequest's status. Unset times are zero.
type ICMSStatus struct {
	RequestStatus      RequestStatus
	LastStatusUpdated  time.Time
	LastAck            time.Time
	ReconcileErrors    uint32
	LastReconcileError string
	Instances          []ICMSInstance // in document order
}

// ICMSRequest is one creation or termination order of a cluster agent.
// Its reconcile step moves status.requestStatus from "" through
// RequestPending and RequestInProgress to RequestCompleted (or
// RequestFailed) and their Acknowledged states. Its methods may be called
// from several goroutines, which take turns. Accessors return Go copies,
// and zero values after Close.
type ICMSRequest struct {
	mu sync.Mutex
	p  *C.nvcf_crd_icms
}

func newICMSRequest(f func(**C.nvcf_crd_icms) error) (*ICMSRequest, error) {
	r := &ICMSRequest{}
	if err := f(&r.p); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(r, (*ICMSRequest).Close)
	return r, nil
}

// ICMSRequestFromYAML decodes an ICMSRequest from one YAML document. The
// ErrInvalid *Error names the field that is missing or wrong
// ("ICMSRequest spec.instanceCount: expected a positive integer, got 0").
func ICMSRequestFromYAML(text []byte) (*ICMSRequest, error) {
	return newICMSRequest(func(out **C.nvcf_crd_icms) error {
		return decodeC(text, func(p *C.char, n C.size_t) C.nvcf_status {
			return C.nvcf_crd_icms_from_yaml(out, p, n)
		})
	})
}

// ICMSRequestFromJSON decodes an ICMSRequest from JSON with the rules of
// ICMSRequestFromYAML.
func ICMSRequestFromJSON(text []byte) (*ICMSRequest, error) {
	return newICMSRequest(func(out **C.nvcf_crd_icms) error {
		return decodeC(text, func(p *C.char, n C.size_t) C.nvcf_status {
			return C.nvcf_crd_icms_from_json(out, p, n)
		})
	})
}

// Kind returns "ICMSRequest".
func (r *ICMSRequest) Kind() string { return "ICMSRequest" }

// read runs f with the object held, unless it is closed.
func (r *ICMSRequest) read(f func(*C.nvcf_crd_icms)) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return false
	}
	f(r.p)
	return true
}

func (r *ICMSRequest) locked(f func(*C.nvcf_crd_icms) error) error {
	err := error(ErrClosed)
	r.read(func(p *C.nvcf_crd_icms) { err = f(p) })
	return err
}

// Closed reports whether Close was called.
func (r *ICMSRequest) Closed() bool {
	return !r.read(func(*C.nvcf_crd_icms) {})
}

// Name returns metadata.name.
func (r *ICMSRequest) Name() string {
	var s string
	r.read(func(p *C.nvcf_crd_icms) { s = goStr(p.metadata.name) })
	return s
}

// Metadata returns a copy of metadata.
func (r *ICMSRequest) Metadata() Metadata {
	var m Metadata
	r.read(func(p *C.nvcf_crd_icms) { m = metadataFromC(&p.metadata) })
	return m
}

// Spec returns a copy of the spec.
func (r *ICMSRequest) Spec() ICMSSpec {
	var out ICMSSpec
	r.read(func(p *C.nvcf_crd_icms) {
		s := &p.spec
		out = ICMSSpec{
			RequestID:           goStr(s.request_id),
			NCAID:               goStr(s.nca_id),
			Action:              ICMSAction(s.action),
			FunctionID:          goStr(s.function_id),
			FunctionVersionID:   goStr(s.function_version_id),
			TaskID:              goStr(s.task_id),
			GPU:                 goStr(s.gpu),
			InstanceType:        goStr(s.instance_type),
			InstanceCount:       uint32(s.instance_count),
			GPUSpecificationID:  goStr(s.gpu_specification_id),
			DeploymentID:        goStr(s.deployment_id),
			LaunchSpecification: rawJSON(s.launch_specification),
			TerminationInstanceIDs: strsFromC(
				s.termination_instance_ids,
				s.termination_instance_ids_count),
		}
	})
	return out
}

// Status returns a copy of the status as it is now.
func (r *ICMSRequest) Status() ICMSStatus {
	var out ICMSStatus
	r.read(func(p *C.nvcf_crd_icms) {
		s := &p.status
		out = ICMSStatus{
			RequestStatus:      RequestStatus(s.request_status),
			LastStatusUpdated:  msTime(s.last_status_updated_ms),
			LastAck:            msTime(s.last_ack_ms),
			ReconcileErrors:    uint32(s.reconcile_errors),
			LastReconcileError: goStr(s.last_reconcile_error),
			Instances:          []ICMSInstance{},
		}
		if s.instances_count == 0 {
			return
		}
		for _, i := range unsafe.Slice(s.instances, s.instances_count) {
			out.Instances = append(out.Instances, ICMSInstance{
				ID:                 goStr(i.id),
				Kind:               InstanceKind(i.kind),
				Status:             goStr(i.status),
				LastReportedStatus: goStr(i.last_reported_status),
				LastReported:       msTime(i.last_reported_ms),
				Reason:             goStr(i.reason),
			})
		}
	})
	return out
}

// ToJSON returns the object as compact JSON without its unset members.
// ICMSRequestFromJSON of it gives an equal object.
func (r *ICMSRequest) ToJSON() ([]byte, error) {
	var out []byte
	err := r.locked(func(p *C.nvcf_crd_icms) (err error) {
		out, err = encodeC(func(t **C.char) C.nvcf_status {
			return C.nvcf_crd_icms_to_json(t, p)
		})
		return err
	})
	return out, err
}

// ToYAML returns the object as a YAML document.
func (r *ICMSRequest) ToYAML() ([]byte, error) {
	var out []byte
	err := r.locked(func(p *C.nvcf_crd_icms) (err error) {
		out, err = encodeC(func(t **C.char) C.nvcf_status {
			return C.nvcf_crd_icms_to_yaml(t, p)
		})
		return err
	})
	return out, err
}

// Clone returns an independent copy that owns its own C object.
func (r *ICMSRequest) Clone() (*ICMSRequest, error) {
	j, err := r.ToJSON()
	if err != nil {
		return nil, err
	}
	return ICMSRequestFromJSON(j)
}

func (r *ICMSRequest) reconcile(obs Observation, opts *CRDOptions) ([]Action, error) {
	var out []Action
	err := r.locked(func(p *C.nvcf_crd_icms) (err error) {
		out, err = reconcileC(obs, opts, func(a **C.nvcf_crd_actions,
			o *C.nvcf_crd_observation,
			op *C.nvcf_crd_options) C.nvcf_status {
			return C.nvcf_crd_icms_reconcile(a, p, o, op)
		})
		return err
	})
	return out, err
}

// Reconcile runs one reconcile step (see the package-level Reconcile)
// and returns the actions and a copy of the new status.
func (r *ICMSRequest) Reconcile(obs Observation, opts *CRDOptions) ([]Action, ICMSStatus, error) {
	acts, err := r.reconcile(obs, opts)
	if err != nil {
		return nil, ICMSStatus{}, err
	}
	return acts, r.Status(), nil
}

// Close releases the object. Later calls fail with ErrClosed or return
// zero values. It is safe to call more than once.
func (r *ICMSRequest) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	C.nvcf_crd_icms_free(r.p)
	r.p = nil
	runtime.SetFinalizer(r, nil)
	return nil
}

// ---- MiniService ----------------------------------------------------------

// Condition is one status.conditions entry of a MiniService. Status is
// "True", "False" or "Unknown".
type Condition struct {
	Type           string
	Status         string
	Reason         string
	Message        string
	LastTransition time.Time
}

// MiniServiceSpec is a MiniService's spec. Values is
// helmChartConfig.values as compact JSON, or nil. ServicePort is 0 when
// unset.
type MiniServiceSpec struct {
	Namespace       string
	ICMSRequestName string
	ChartURL        string
	ServiceName     string
	ServicePort     uint32
	Values          json.RawMessage
	IsTask          bool
}

// MiniServiceStatus is a MiniService's status.
type MiniServiceStatus struct {
	Phase               Phase
	LastPhaseTransition time.Time
	Conditions          []Condition
	Revision            uint32
	ObservedGeneration  int64
}

// Condition returns the condition of type t ("ObjectsHealthy") and
// whether there is one.
func (s MiniServiceStatus) Condition(t string) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// MiniService is one Helm workload. Its reconcile step installs the chart
// and follows its pods from Installing to Running (Completed for a
// task), InstallFailed or Failed. Methods behave as ICMSRequest's.
type MiniService struct {
	mu sync.Mutex
	p  *C.nvcf_crd_miniservice
}

func newMiniService(f func(**C.nvcf_crd_miniservice) error) (*MiniService, error) {
	m := &MiniService{}
	if err := f(&m.p); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(m, (*MiniService).Close)
	return m, nil
}

// MiniServiceFromYAML decodes a MiniService from one YAML document. The
// ErrInvalid *Error names the field that is missing or wrong.
func MiniServiceFromYAML(text []byte) (*MiniService, error) {
	return newMiniService(func(out **C.nvcf_crd_miniservice) error {
		return decodeC(text, func(p *C.char, n C.size_t) C.nvcf_status {
			return C.nvcf_crd_miniservice_from_yaml(out, p, n)
		})
	})
}

// MiniServiceFromJSON decodes a MiniService from JSON with the rules of
// MiniServiceFromYAML.
func MiniServiceFromJSON(text []byte) (*MiniService, error) {
	return newMiniService(func(out **C.nvcf_crd_miniservice) error {
		return decodeC(text, func(p *C.char, n C.size_t) C.nvcf_status {
			return C.nvcf_crd_miniservice_from_json(out, p, n)
		})
	})
}

// Kind returns "MiniService".
func (m *MiniService) Kind() string { return "MiniService" }

func (m *MiniService) read(f func(*C.nvcf_crd_miniservice)) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p == nil {
		return false
	}
	f(m.p)
	return true
}

func (m *MiniService) locked(f func(*C.nvcf_crd_miniservice) error) error {
	err := error(ErrClosed)
	m.read(func(p *C.nvcf_crd_miniservice) { err = f(p) })
	return err
}

// Closed reports whether Close was called.
func (m *MiniService) Closed() bool {
	return !m.read(func(*C.nvcf_crd_miniservice) {})
}

// Name returns metadata.name.
func (m *MiniService) Name() string {
	var s string
	m.read(func(p *C.nvcf_crd_miniservice) { s = goStr(p.metadata.name) })
	return s
}

// Metadata returns a copy of metadata.
func (m *MiniService) Metadata() Metadata {
	var out Metadata
	m.read(func(p *C.nvcf_crd_miniservice) {
		out = metadataFromC(&p.metadata)
	})
	return out
}

// Spec returns a copy of the spec.
func (m *MiniService) Spec() MiniServiceSpec {
	var out MiniServiceSpec
	m.read(func(p *C.nvcf_crd_miniservice) {
		s := &p.spec
		out = MiniServiceSpec{
			Namespace:       goStr(s.namespace_name),
			ICMSRequestName: goStr(s.icms_request_name),
			ChartURL:        goStr(s.chart_url),
			ServiceName:     goStr(s.service_name),
			ServicePort:     uint32(s.service_port),
			Values:          rawJSON(s.values),
			IsTask:          bool(s.is_task),
		}
	})
	return out
}

// Status returns a copy of the status as it is now.
func (m *MiniService) Status() MiniServiceStatus {
	var out MiniServiceStatus
	m.read(func(p *C.nvcf_crd_miniservice) {
		s := &p.status
		out = MiniServiceStatus{
			Phase:               Phase(s.phase),
			LastPhaseTransition: msTime(s.last_phase_transition_ms),
			Conditions:          []Condition{},
			Revision:            uint32(s.revision),
			ObservedGeneration:  int64(s.observed_generation),
		}
		if s.conditions_count == 0 {
			return
		}
		for _, c := range unsafe.Slice(s.conditions,
			s.conditions_count) {
			out.Conditions = append(out.Conditions, Condition{
				Type:           goStr(c._type),
				Status:         goStr(c.status),
				Reason:         goStr(c.reason),
				Message:        goStr(c.message),
				LastTransition: msTime(c.last_transition_ms),
			})
		}
	})
	return out
}

// ToJSON returns the object as compact JSON.
func (m *MiniService) ToJSON() ([]byte, error) {
	var out []byte
	err := m.locked(func(p *C.nvcf_crd_miniservice) (err error) {
		out, err = encodeC(func(t **C.char) C.nvcf_status {
			return C.nvcf_crd_miniservice_to_json(t, p)
		})
		return err
	})
	return out, err
}

// ToYAML returns the object as a YAML document.
func (m *MiniService) ToYAML() ([]byte, error) {
	var out []byte
	err := m.locked(func(p *C.nvcf_crd_miniservice) (err error) {
		out, err = encodeC(func(t **C.char) C.nvcf_status {
			return C.nvcf_crd_miniservice_to_yaml(t, p)
		})
		return err
	})
	return out, err
}

// Clone returns an independent copy that owns its own C object.
func (m *MiniService) Clone() (*MiniService, error) {
	j, err := m.ToJSON()
	if err != nil {
		return nil, err
	}
	return MiniServiceFromJSON(j)
}

func (m *MiniService) reconcile(obs Observation, opts *CRDOptions) ([]Action, error) {
	var out []Action
	err := m.locked(func(p *C.nvcf_crd_miniservice) (err error) {
		out, err = reconcileC(obs, opts, func(a **C.nvcf_crd_actions,
			o *C.nvcf_crd_observation,
			op *C.nvcf_crd_options) C.nvcf_status {
			return C.nvcf_crd_miniservice_reconcile(a, p, o, op)
		})
		return err
	})
	return out, err
}

// Reconcile runs one reconcile step, in which the observed instances are
// the workload's pods. It returns the actions and a copy of the new status.
func (m *MiniService) Reconcile(obs Observation, opts *CRDOptions) ([]Action, MiniServiceStatus, error) {
	acts, err := m.reconcile(obs, opts)
	if err != nil {
		return nil, MiniServiceStatus{}, err
	}
	return acts, m.Status(), nil
}

// Close releases the object. It is safe to call more than once.
func (m *MiniService) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	C.nvcf_crd_miniservice_free(m.p)
	m.p = nil
	runtime.SetFinalizer(m, nil)
	return nil
}

// ---- NVCFBackend ----------------------------------------------------------

// BackendGPU is one GPU type of an NVCFBackend's spec.gpus. Its instance
// types use the routing InstanceType.
type BackendGPU struct {
	Name          string
	Capacity      uint32
	InstanceTypes []InstanceType
}

// BackendSpec is an NVCFBackend's spec, as the agent's backend file has
// it.
type BackendSpec struct {
	ClusterID    string
	ClusterName  string
	ClusterGroup string
	Region       string
	Attributes   []string
	GPUs         []BackendGPU
}

// GPUUsage is one entry of status.gpuUsage. Available is at least 0.
type GPUUsage struct {
	GPU       string
	Capacity  uint32
	Allocated uint32
	Available uint32
}

// BackendStatus is an NVCFBackend's status. GPUUsage follows the order
// of spec.gpus.
type BackendStatus struct {
	AgentStatus            AgentStatus
	LastUpdatedAgentStatus time.Time
	GPUUsage               []GPUUsage
}

// Usage returns the usage of GPU type gpu and whether there is one.
func (s BackendStatus) Usage(gpu string) (GPUUsage, bool) {
	for _, u := range s.GPUUsage {
		if u.GPU == gpu {
			return u, true
		}
	}
	return GPUUsage{}, false
}

// NVCFBackend is the cluster an agent serves, its GPUs and its health.
// Its reconcile step sets agentStatus from the heartbeat age and gpuUsage
// from the observed allocations. Methods behave as ICMSRequest's.
type NVCFBackend struct {
	mu sync.Mutex
	p  *C.nvcf_crd_backend
}

func newNVCFBackend(f func(**C.nvcf_crd_backend) error) (*NVCFBackend, error) {
	b := &NVCFBackend{}
	if err := f(&b.p); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(b, (*NVCFBackend).Close)
	return b, nil
}

// NVCFBackendFromYAML decodes and validates an NVCFBackend from one YAML
// document, which may be one of the agent's backend files. The ErrInvalid
// *Error names the field that is missing or wrong.
func NVCFBackendFromYAML(text []byte) (*NVCFBackend, error) {
	return newNVCFBackend(func(out **C.nvcf_crd_backend) error {
		return decodeC(text, func(p *C.char, n C.size_t) C.nvcf_status {
			return C.nvcf_crd_backend_from_yaml(out, p, n)
		})
	})
}

// NVCFBackendFromJSON decodes and validates an NVCFBackend from JSON with
// the rules of NVCFBackendFromYAML.
func NVCFBackendFromJSON(text []byte) (*NVCFBackend, error) {
	return newNVCFBackend(func(out **C.nvcf_crd_backend) error {
		return decodeC(text, func(p *C.char, n C.size_t) C.nvcf_status {
			return C.nvcf_crd_backend_from_json(out, p, n)
		})
	})
}

// Kind returns "NVCFBackend".
func (b *NVCFBackend) Kind() string { return "NVCFBackend" }

func (b *NVCFBackend) read(f func(*C.nvcf_crd_backend)) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		return false
	}
	f(b.p)
	return true
}

func (b *NVCFBackend) locked(f func(*C.nvcf_crd_backend) error) error {
	err := error(ErrClosed)
	b.read(func(p *C.nvcf_crd_backend) { err = f(p) })
	return err
}

// Closed reports whether Close was called.
func (b *NVCFBackend) Closed() bool {
	return !b.read(func(*C.nvcf_crd_backend) {})
}

// Name returns metadata.name.
func (b *NVCFBackend) Name() string {
	var s string
	b.read(func(p *C.nvcf_crd_backend) { s = goStr(p.metadata.name) })
	return s
}

// Metadata returns a copy of metadata.
func (b *NVCFBackend) Metadata() Metadata {
	var out Metadata
	b.read(func(p *C.nvcf_crd_backend) {
		out = metadataFromC(&p.metadata)
	})
	return out
}

// Spec returns a copy of the spec.
func (b *NVCFBackend) Spec() BackendSpec {
	var out BackendSpec
	b.read(func(p *C.nvcf_crd_backend) {
		s := &p.spec
		out = BackendSpec{
			ClusterID:    goStr(s.cluster_id),
			ClusterName:  goStr(s.cluster_name),
			ClusterGroup: goStr(s.cluster_group),
			Region:       goStr(s.region),
			Attributes:   strsFromC(s.attributes, s.attributes_count),
			GPUs:         []BackendGPU{},
		}
		if s.gpus_count == 0 {
			return
		}
		for _, g := range unsafe.Slice(s.gpus, s.gpus_count) {
			gpu := BackendGPU{Name: goStr(g.name),
				Capacity:      uint32(g.capacity),
				InstanceTypes: []InstanceType{}}
			if g.instance_types_count > 0 {
				for _, t := range unsafe.Slice(g.instance_types,
					g.instance_types_count) {
					gpu.InstanceTypes = append(gpu.InstanceTypes,
						InstanceType{
							Name:        goStr(t.name),
							Description: goStr(t.description),
							Default:     bool(t.is_default),
							GPUCount:    uint(t.gpu_count),
						})
				}
			}
			out.GPUs = append(out.GPUs, gpu)
		}
	})
	return out
}

// Status returns a copy of the status as it is now.
func (b *NVCFBackend) Status() BackendStatus {
	var out BackendStatus
	b.read(func(p *C.nvcf_crd_backend) {
		s := &p.status
		out = BackendStatus{
			AgentStatus: AgentStatus(s.agent_status),
			LastUpdatedAgentStatus: msTime(
				s.last_updated_agent_status_ms),
			GPUUsage: []GPUUsage{},
		}
		if s.gpu_usage_count == 0 {
			return
		}
		for _, u := range unsafe.Slice(s.gpu_usage, s.gpu_usage_count) {
			out.GPUUsage = append(out.GPUUsage, GPUUsage{
				GPU:       goStr(u.gpu),
				Capacity:  uint32(u.capacity),
				Allocated: uint32(u.allocated),
				Available: uint32(u.available),
			})
		}
	})
	return out
}

// Validate checks the spec: names, uniqueness and GPU counts. The
// ErrInvalid *Error names the field. It fails with ErrClosed after Close.
func (b *NVCFBackend) Validate() error {
	return b.locked(func(p *C.nvcf_crd_backend) error {
		return call(func() C.nvcf_status {
			return C.nvcf_crd_backend_validate(p)
		})
	})
}

// ToJSON returns the object as compact JSON.
func (b *NVCFBackend) ToJSON() ([]byte, error) {
	var out []byte
	err := b.locked(func(p *C.nvcf_crd_backend) (err error) {
		out, err = encodeC(func(t **C.char) C.nvcf_status {
			return C.nvcf_crd_backend_to_json(t, p)
		})
		return err
	})
	return out, err
}

// ToYAML returns the object as a YAML document.
func (b *NVCFBackend) ToYAML() ([]byte, error) {
	var out []byte
	err := b.locked(func(p *C.nvcf_crd_backend) (err error) {
		out, err = encodeC(func(t **C.char) C.nvcf_status {
			return C.nvcf_crd_backend_to_yaml(t, p)
		})
		return err
	})
	return out, err
}

// Clone returns an independent copy that owns its own C object.
func (b *NVCFBackend) Clone() (*NVCFBackend, error) {
	j, err := b.ToJSON()
	if err != nil {
		return nil, err
	}
	return NVCFBackendFromJSON(j)
}

func (b *NVCFBackend) reconcile(obs Observation, opts *CRDOptions) ([]Action, error) {
	var out []Action
	err := b.locked(func(p *C.nvcf_crd_backend) (err error) {
		out, err = reconcileC(obs, opts, func(a **C.nvcf_crd_actions,
			o *C.nvcf_crd_observation,
			op *C.nvcf_crd_options) C.nvcf_status {
			return C.nvcf_crd_backend_reconcile(a, p, o, op)
		})
		return err
	})
	return out, err
}

// Reconcile runs one reconcile step and returns the actions and a copy of
// the new status. An invalid spec fails with ErrInvalid and leaves the
// object unchanged.
func (b *NVCFBackend) Reconcile(obs Observation, opts *CRDOptions) ([]Action, BackendStatus, error) {
	acts, err := b.reconcile(obs, opts)
	if err != nil {
		return nil, BackendStatus{}, err
	}
	return acts, b.Status(), nil
}

// Close releases the object. It is safe to call more than once.
func (b *NVCFBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	C.nvcf_crd_backend_free(b.p)
	b.p = nil
	runtime.SetFinalizer(b, nil)
	return nil
}
