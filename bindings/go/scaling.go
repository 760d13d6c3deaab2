// SPDX-License-Identifier: Apache-2.0

package nvcf

/*
#include <stdlib.h>
#include <nvcf/scaling.h>

static void nvcfgo_scaling_defaults(nvcf_scaling_params *p)
{
	nvcf_scaling_params d = NVCF_SCALING_PARAMS_INIT;

	*p = d;
}
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Limits of the scaling parameters.
const (
	ScalingSamplesMax     = C.NVCF_SCALING_SAMPLES_MAX
	ScalingConcurrencyMax = C.NVCF_SCALING_CONCURRENCY_MAX
)

// Policy is the rule that turns load into desired instances.
type Policy int

// Scaling policies.
const (
	// PolicyTargetTracking keeps request slots busy at a target
	// fraction; the default.
	PolicyTargetTracking Policy = 0
	// PolicyUtilization is NVCF's rule: thresholds, factors and
	// stickiness.
	PolicyUtilization Policy = 1
)

// String returns the library's name ("target-tracking"), or "unknown".
func (p Policy) String() string {
	return C.GoString(C.nvcf_scaling_policy_name(C.nvcf_scaling_policy_t(p)))
}

// Reason is the cause of a Decision.
type Reason int

// Reasons of a decision; the numbers are frozen by the ABI.
const (
	ReasonSteady       Reason = 0
	ReasonUpLoad       Reason = 1
	ReasonDownLoad     Reason = 2
	ReasonWakeFromZero Reason = 3
	ReasonIdleToZero   Reason = 4
	ReasonAtMin        Reason = 5
	ReasonAtMax        Reason = 6
	ReasonStabilizing  Reason = 7
	ReasonPendingStart Reason = 8
)

// String returns the library's name ("wake-from-zero"), or "unknown".
func (r Reason) String() string {
	return C.GoString(C.nvcf_scaling_reason_name(C.nvcf_scaling_reason_t(r)))
}

// Params are one function version's scaling parameters. Start from
// DefaultParams (the zero value is not valid: MaxInstances is 0). The
// durations go to the library in whole milliseconds; see nvcf/scaling.h
// for each field's range.
type Params struct {
	Policy                Policy
	MinInstances          uint32
	MaxInstances          uint32
	MaxRequestConcurrency uint32
	// Target tracking.
	TargetUtilization float64
	ScaleDownWindow   time.Duration
	// Both policies: a version with no request for this long goes to
	// zero when MinInstances is 0.
	IdleToZero time.Duration
	// Utilization policy.
	ScaleUpThreshold       float64
	ScaleDownThreshold     float64
	ScaleUpFactor          float64
	ScaleDownFactor        float64
	UpStickinessWindow     time.Duration
	UpStickinessRequired   time.Duration
	DownStickinessWindow   time.Duration
	DownStickinessRequired time.Duration
	SampleInterval         time.Duration
}

func ms(d time.Duration) C.int64_t { return C.int64_t(d.Milliseconds()) }

func fromMs(v C.int64_t) time.Duration {
	return time.Duration(v) * time.Millisecond
}

func (p *Params) toC(c *C.nvcf_scaling_params) {
	c.version = C.NVCF_SCALING_PARAMS_VERSION
	c.policy = C.nvcf_scaling_policy_t(p.Policy)
	c.min_instances = C.uint32_t(p.MinInstances)
	c.max_instances = C.uint32_t(p.MaxInstances)
	c.max_request_concurrency = C.uint32_t(p.MaxRequestConcurrency)
	c.target_utilization = C.double(p.TargetUtilization)
	c.scale_down_window_ms = ms(p.ScaleDownWindow)
	c.idle_to_zero_ms = ms(p.IdleToZero)
	c.scale_up_threshold = C.double(p.ScaleUpThreshold)
	c.scale_down_threshold = C.double(p.ScaleDownThreshold)
	c.scale_up_factor = C.double(p.ScaleUpFactor)
	c.scale_down_factor = C.double(p.ScaleDownFactor)
	c.up_stickiness_window_ms = ms(p.UpStickinessWindow)
	c.up_stickiness_required_ms = ms(p.UpStickinessRequired)
	c.down_stickiness_window_ms = ms(p.DownStickinessWindow)
	c.down_stickiness_required_ms = ms(p.DownStickinessRequired)
	c.sample_interval_ms = ms(p.SampleInterval)
}

func paramsFromC(c *C.nvcf_scaling_params) Params {
	return Params{
		Policy:                 Policy(c.policy),
		MinInstances:           uint32(c.min_instances),
		MaxInstances:           uint32(c.max_instances),
		MaxRequestConcurrency:  uint32(c.max_request_concurrency),
		TargetUtilization:      float64(c.target_utilization),
		ScaleDownWindow:        fromMs(c.scale_down_window_ms),
		IdleToZero:             fromMs(c.idle_to_zero_ms),
		ScaleUpThreshold:       float64(c.scale_up_threshold),
		ScaleDownThreshold:     float64(c.scale_down_threshold),
		ScaleUpFactor:          float64(c.scale_up_factor),
		ScaleDownFactor:        float64(c.scale_down_factor),
		UpStickinessWindow:     fromMs(c.up_stickiness_window_ms),
		UpStickinessRequired:   fromMs(c.up_stickiness_required_ms),
		DownStickinessWindow:   fromMs(c.down_stickiness_window_ms),
		DownStickinessRequired: fromMs(c.down_stickiness_required_ms),
		SampleInterval:         fromMs(c.sample_interval_ms),
	}
}

// DefaultParams returns the library's defaults (NVCF_SCALING_PARAMS_INIT
// of the headers the binding was built with).
func DefaultParams() Params {
	var c C.nvcf_scaling_params
	C.nvcfgo_scaling_defaults(&c)
	return paramsFromC(&c)
}

// Validate checks every field, including those of the policy not in use.
// The ErrInvalid *Error names the field and its value
// ("max_instances (0) must be >= 1").
func (p Params) Validate() error {
	var c C.nvcf_scaling_params
	p.toC(&c)
	return call(func() C.nvcf_status {
		return C.nvcf_scaling_params_validate(&c)
	})
}

// ApplyJSON returns a copy of p with an NVCF autoscalingConfiguration
// object applied ({"scaleUpDetails": ..., "scaleDownDetails": ...}).
// The copy uses PolicyUtilization unless the object sets "policy":
// "TARGET_TRACKING". p is not changed. The ErrInvalid *Error names the
// JSON path and the value.
func (p Params) ApplyJSON(data []byte) (Params, error) {
	cs, err := cString("autoscalingConfiguration", string(data))
	if err != nil {
		return p, err
	}
	defer C.free(unsafe.Pointer(cs))
	var c C.nvcf_scaling_params
	p.toC(&c)
	if err := call(func() C.nvcf_status {
		return C.nvcf_scaling_params_from_json(&c, cs)
	}); err != nil {
		return p, err
	}
	return paramsFromC(&c), nil
}

// ParamsFromJSON returns DefaultParams with an autoscalingConfiguration
// applied; see Params.ApplyJSON.
func ParamsFromJSON(data []byte) (Params, error) {
	return DefaultParams().ApplyJSON(data)
}

// Metrics is one measurement of a version's load. Now and LastRequest
// are readings of the caller's monotonic clock, as offsets from any
// fixed origin; the library never reads a clock.
type Metrics struct {
	Now      time.Duration
	Queued   uint64 // requests waiting in the version's queue
	InFlight uint64 // requests taken by workers, not completed
	Ready    uint32 // instances serving
	Starting uint32 // instances asked for, not ready yet
	// LastRequest is the time of the newest request; it counts only
	// when RequestSeen is true. With no request seen, the version is
	// idle since the history's first evaluation.
	LastRequest time.Duration
	RequestSeen bool
}

// Decision is the outcome of History.Evaluate.
type Decision struct {
	// Desired is the total of instances (ready plus starting) the
	// version should have.
	Desired uint32
	Reason  Reason
	// Utilization is (in flight + queued) / (concurrency * instances);
	// +Inf when work waits and no instance exists.
	Utilization float64
	Detail      string // one line explaining the numbers
}

// History is one version's scaling state between evaluations. Its
// methods may be called from several goroutines; they take turns.
type History struct {
	mu sync.Mutex
	h  *C.nvcf_scaling_history
}

// NewHistory allocates an empty history. Close releases it.
func NewHistory() (*History, error) {
	h := &History{}
	if err := call(func() C.nvcf_status {
		return C.nvcf_scaling_history_new(&h.h)
	}); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(h, (*History).Close)
	return h, nil
}

// Evaluate returns how many instances the version should have under p
// for the load m, and records m in the history. It fails with ErrInvalid
// for invalid parameters or an m.Now before the previous evaluation's,
// and with ErrClosed after Close.
func (h *History) Evaluate(p Params, m Metrics) (Decision, error) {
	var cp C.nvcf_scaling_params
	var cm C.nvcf_scaling_metrics
	var out C.nvcf_scaling_decision

	p.toC(&cp)
	cm.version = C.NVCF_SCALING_METRICS_VERSION
	cm.now_ms = ms(m.Now)
	cm.queued = C.uint64_t(m.Queued)
	cm.in_flight = C.uint64_t(m.InFlight)
	cm.ready = C.uint32_t(m.Ready)
	cm.starting = C.uint32_t(m.Starting)
	cm.last_request_ms = -1
	if m.RequestSeen {
		cm.last_request_ms = ms(m.LastRequest)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h == nil {
		return Decision{}, ErrClosed
	}
	if err := call(func() C.nvcf_status {
		return C.nvcf_scaling_evaluate(&cp, &cm, h.h, &out)
	}); err != nil {
		return Decision{}, err
	}
	return Decision{
		Desired:     uint32(out.desired),
		Reason:      Reason(out.reason),
		Utilization: float64(out.utilization),
		Detail:      C.GoString(&out.detail[0]),
	}, nil
}

// Reset clears the history, as if it were new.
func (h *History) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	C.nvcf_scaling_history_reset(h.h)
}

// Close releases the history; later calls fail with ErrClosed. It is
// safe to call more than once.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	C.nvcf_scaling_history_free(h.h)
	h.h = nil
	runtime.SetFinalizer(h, nil)
	return nil
}
