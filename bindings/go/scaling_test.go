// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	nvcf "github.com/libnvcf/nvcf-go"
)

func TestDefaultParams(t *testing.T) {
	p := nvcf.DefaultParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	want := nvcf.Params{
		Policy: nvcf.PolicyTargetTracking, MaxInstances: 1,
		MaxRequestConcurrency: 1, TargetUtilization: 0.75,
		ScaleDownWindow: 30 * time.Second, IdleToZero: 5 * time.Minute,
		ScaleUpThreshold: 70, ScaleDownThreshold: 30,
		ScaleUpFactor: 1.2, ScaleDownFactor: 0.8,
		SampleInterval: time.Minute,
	}
	if p != want {
		t.Fatalf("DefaultParams() = %+v", p)
	}
	if err := (nvcf.Params{}).Validate(); !errors.Is(err, nvcf.ErrInvalid) {
		t.Fatalf("zero Params validate: %v", err)
	}
}

func TestScalingNames(t *testing.T) {
	var got []string
	for r := nvcf.ReasonSteady; r <= nvcf.ReasonPendingStart; r++ {
		got = append(got, r.String())
	}
	if strings.Join(got, ",") != "steady,up-load,down-load,wake-from-zero,"+
		"idle-to-zero,at-min,at-max,stabilizing,pending-start" {
		t.Fatalf("reason names %v", got)
	}
	if nvcf.PolicyUtilization.String() != "utilization" ||
		nvcf.PolicyTargetTracking.String() != "target-tracking" ||
		nvcf.Policy(7).String() != "unknown" ||
		nvcf.Reason(99).String() != "unknown" {
		t.Fatal("policy or unknown names differ")
	}
}

func TestTargetTracking(t *testing.T) {
	h, err := nvcf.NewHistory()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := nvcf.DefaultParams()
	p.MaxInstances, p.MaxRequestConcurrency = 4, 2
	d, err := h.Evaluate(p, nvcf.Metrics{Queued: 5, RequestSeen: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Desired != 4 || d.Reason != nvcf.ReasonWakeFromZero ||
		!math.IsInf(d.Utilization, 1) {
		t.Fatalf("wake: %+v", d)
	}
	if d.Detail != "queued 5, in flight 0, 0 ready, 0 starting: need 4 "+
		"at 75% of 2 slots" {
		t.Fatalf("detail %q", d.Detail)
	}
	d, _ = h.Evaluate(p, nvcf.Metrics{Now: time.Second, InFlight: 1,
		Ready: 4, LastRequest: 900 * time.Millisecond, RequestSeen: true})
	if d.Desired != 4 || d.Reason != nvcf.ReasonStabilizing ||
		d.Utilization != 0.125 {
		t.Fatalf("stabilizing: %+v", d)
	}
	d, _ = h.Evaluate(p, nvcf.Metrics{Now: 40 * time.Second, InFlight: 1,
		Ready: 4, LastRequest: 39 * time.Second, RequestSeen: true})
	if d.Desired != 1 || d.Reason != nvcf.ReasonDownLoad {
		t.Fatalf("down: %+v", d)
	}
	_, err = h.Evaluate(p, nvcf.Metrics{Now: 39 * time.Second})
	if e := asNvcf(t, err); e.Status != nvcf.StatusInvalid ||
		!strings.Contains(e.Message, "39000") {
		t.Fatalf("time going back: %v", err)
	}
}

func TestIdleToZeroAndReset(t *testing.T) {
	h, err := nvcf.NewHistory()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := nvcf.DefaultParams()
	p.MaxInstances, p.IdleToZero = 2, time.Second
	d, _ := h.Evaluate(p, nvcf.Metrics{Queued: 100, RequestSeen: true})
	if d.Desired != 2 || d.Reason != nvcf.ReasonAtMax {
		t.Fatalf("at max: %+v", d)
	}
	d, _ = h.Evaluate(p, nvcf.Metrics{Now: 5 * time.Second, Ready: 2,
		RequestSeen: true})
	if d.Desired != 0 || d.Reason != nvcf.ReasonIdleToZero {
		t.Fatalf("idle: %+v", d)
	}
	h.Reset()
	d, _ = h.Evaluate(p, nvcf.Metrics{Now: 5500 * time.Millisecond,
		Ready: 1})
	if d.Reason == nvcf.ReasonIdleToZero {
		t.Fatalf("idle clock survived Reset: %+v", d)
	}
}

func TestUtilizationPolicy(t *testing.T) {
	h, _ := nvcf.NewHistory()
	defer h.Close()
	p := nvcf.DefaultParams()
	p.Policy, p.MaxInstances, p.SampleInterval = nvcf.PolicyUtilization,
		10, time.Second
	d, err := h.Evaluate(p, nvcf.Metrics{InFlight: 5, Ready: 5,
		RequestSeen: true})
	if err != nil || d.Desired != 6 || d.Reason != nvcf.ReasonUpLoad {
		t.Fatalf("up: %+v %v", d, err)
	}
	d, _ = h.Evaluate(p, nvcf.Metrics{Now: 500 * time.Millisecond,
		InFlight: 5, Ready: 5, LastRequest: 400 * time.Millisecond,
		RequestSeen: true})
	if d.Desired != 6 {
		t.Fatalf("held: %+v", d)
	}
}

func TestParamsFromJSON(t *testing.T) {
	cfg := []byte(`{"scaleUpDetails": {"metric": "utilization",
		"factor": 1.5, "threshold": 80}, "scaleDownDetails": {
		"factor": 0.5, "threshold": 20, "stickiness": {"size": "PT10M",
		"threshold": "PT5M"}}}`)
	p, err := nvcf.ParamsFromJSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Policy != nvcf.PolicyUtilization || p.ScaleUpFactor != 1.5 ||
		p.ScaleUpThreshold != 80 || p.ScaleDownFactor != 0.5 ||
		p.ScaleDownThreshold != 20 ||
		p.DownStickinessWindow != 10*time.Minute ||
		p.DownStickinessRequired != 5*time.Minute {
		t.Fatalf("ParamsFromJSON = %+v", p)
	}
	base := nvcf.DefaultParams()
	base.MaxInstances = 10
	q, err := base.ApplyJSON(cfg)
	if err != nil || q.MaxInstances != 10 || q.ScaleUpFactor != 1.5 {
		t.Fatalf("ApplyJSON = %+v %v", q, err)
	}
	if base.Policy != nvcf.PolicyTargetTracking {
		t.Fatal("ApplyJSON changed its receiver")
	}
	_, err = nvcf.ParamsFromJSON([]byte(`{"scaleUpDetails": {"factor": 0.9}}`))
	e := asNvcf(t, err)
	if e.Status != nvcf.StatusInvalid || e.Message !=
		"autoscalingConfiguration.scaleUpDetails.factor must be > 1.0, got 0.9" {
		t.Fatalf("bad factor: %v", err)
	}
	if _, err := nvcf.ParamsFromJSON([]byte("[1, 2]")); !errors.Is(err,
		nvcf.ErrInvalid) {
		t.Fatalf("array: %v", err)
	}
}

func TestHistoryClose(t *testing.T) {
	h, err := nvcf.NewHistory()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	h.Reset()
	_, err = h.Evaluate(nvcf.DefaultParams(), nvcf.Metrics{})
	if err != nvcf.ErrClosed {
		t.Fatalf("Evaluate after Close: %v", err)
	}
}
