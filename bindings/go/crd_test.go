// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	nvcf "github.com/libnvcf/nvcf-go"
)

// t0 is 2024-05-01T12:00:00Z, the creation time of most fixtures.
var t0 = time.UnixMilli(1714564800000).UTC()

func at(d time.Duration) time.Time { return t0.Add(d) }

func fixturePath(name string) string {
	return filepath.Join(sourceDir(), "tests", "crd", "fixtures", name)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadICMS(t *testing.T, name string) *nvcf.ICMSRequest {
	t.Helper()
	r, err := nvcf.ICMSRequestFromYAML(fixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func loadMS(t *testing.T, name string) *nvcf.MiniService {
	t.Helper()
	m, err := nvcf.MiniServiceFromYAML(fixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func loadBackend(t *testing.T, name string) *nvcf.NVCFBackend {
	t.Helper()
	b, err := nvcf.NVCFBackendFromYAML(fixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// step runs one reconcile step through the package-level Reconcile and
// fails the test on an error.
func step(t *testing.T, obj nvcf.Resource, opts *nvcf.CRDOptions, obs nvcf.Observation) []nvcf.Action {
	t.Helper()
	acts, err := nvcf.Reconcile(obj, obs, opts)
	if err != nil {
		t.Fatalf("reconcile %s at %s: %v", obj.Name(),
			obs.Now.Format(time.RFC3339), err)
	}
	return acts
}

// eq fails the test when got and want differ (reflect.DeepEqual).
func eq(t *testing.T, label string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %+v, want %+v", label, got, want)
	}
}

func kinds(acts []nvcf.Action) []nvcf.ActionKind {
	out := []nvcf.ActionKind{}
	for _, a := range acts {
		out = append(out, a.Kind)
	}
	return out
}

func wantKinds(t *testing.T, acts []nvcf.Action, want ...nvcf.ActionKind) {
	t.Helper()
	if want == nil {
		want = []nvcf.ActionKind{}
	}
	if !reflect.DeepEqual(kinds(acts), want) {
		t.Fatalf("actions %v, want kinds %v", acts, want)
	}
}

func requeue(t *testing.T, acts []nvcf.Action) time.Duration {
	t.Helper()
	if len(acts) == 0 {
		t.Fatal("no actions, want a requeue at the end")
	}
	if acts[len(acts)-1].Kind != nvcf.ActionRequeue {
		t.Fatalf("actions %v do not end with a requeue", acts)
	}
	return acts[len(acts)-1].After
}

func observe(state nvcf.ObservedState, ids ...string) []nvcf.ObservedInstance {
	out := []nvcf.ObservedInstance{}
	for _, id := range ids {
		out = append(out, nvcf.ObservedInstance{ID: id, State: state})
	}
	return out
}

// ---- names and options ----------------------------------------------------

func TestCRDNames(t *testing.T) {
	join := func(n int, name func(int) string) string {
		var s []string
		for i := 0; i < n; i++ {
			s = append(s, name(i))
		}
		return strings.Join(s, ",")
	}
	cases := []struct{ got, want string }{
		{join(9, func(i int) string { return nvcf.RequestStatus(i).String() }),
			",RequestPending,RequestInProgress," +
				"RequestCachingInProgress,RequestInstancesInProgress," +
				"RequestCompleted,RequestCompletionAcknowledged," +
				"RequestFailed,RequestFailureAcknowledged"},
		{join(6, func(i int) string { return nvcf.ActionKind(i).String() }),
			"ack-message,create-instance,delete-instance," +
				"report-status,garbage-collect,requeue"},
		{join(6, func(i int) string { return nvcf.ObservedState(i).String() }),
			"absent,starting,running,succeeded,failed,terminated"},
		{join(4, func(i int) string { return nvcf.Ack(i).String() }),
			"none,ok,retry,rejected"},
		{join(9, func(i int) string { return nvcf.Phase(i).String() }),
			",CachingInProgress,Installing,Installed,Starting," +
				"Running,Completed,InstallFailed,Failed"},
		{join(3, func(i int) string { return nvcf.AgentStatus(i).String() }),
			"Unknown,Healthy,Unhealthy"},
		{join(3, func(i int) string { return nvcf.ICMSAction(i).String() }),
			"RequestICMSInstances,RequestICMSInstancesForTask," +
				"TerminateInstances"},
		{join(2, func(i int) string { return nvcf.InstanceKind(i).String() }),
			"Pod,MiniService"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("names %q, want %q", c.got, c.want)
		}
	}
	for _, s := range []string{nvcf.RequestStatus(42).String(),
		nvcf.ActionKind(42).String(), nvcf.ObservedState(42).String(),
		nvcf.Ack(42).String(), nvcf.Phase(42).String(),
		nvcf.AgentStatus(42).String(), nvcf.ICMSAction(42).String(),
		nvcf.InstanceKind(-1).String()} {
		if s != "unknown" {
			t.Errorf("name of an unknown value %q, want unknown", s)
		}
	}
	eq(t, "ICMSAPIVersion", nvcf.ICMSAPIVersion,
		"nvca.nvcf.nvidia.io/v2beta1")
	eq(t, "MiniServiceAPIVersion", nvcf.MiniServiceAPIVersion,
		"nvca.nvcf.nvidia.io/v1alpha1")
	eq(t, "BackendAPIVersion", nvcf.BackendAPIVersion, "nvcf.nvidia.io/v1")
}

func TestCRDPhaseObserved(t *testing.T) {
	want := map[nvcf.Phase]nvcf.ObservedState{
		nvcf.PhaseInstalling:    nvcf.ObservedStarting,
		nvcf.PhaseStarting:      nvcf.ObservedStarting,
		nvcf.PhaseRunning:       nvcf.ObservedRunning,
		nvcf.PhaseCompleted:     nvcf.ObservedSucceeded,
		nvcf.PhaseInstallFailed: nvcf.ObservedFailed,
		nvcf.PhaseFailed:        nvcf.ObservedFailed,
	}
	for p, s := range want {
		if got := p.Observed(); got != s {
			t.Errorf("%q.Observed() = %s, want %s", p, got, s)
		}
	}
}

func TestCRDOptions(t *testing.T) {
	want := nvcf.CRDOptions{
		MaxRunningTimeout: 180 * time.Minute,
		CleanupWindow:     time.Hour,
		AckRetryTimeout:   5 * time.Minute,
		ReportInterval:    5 * time.Minute,
		SyncInterval:      15 * time.Second,
		FailureBackoff:    90 * time.Second,
		FailureRequeue:    30 * time.Second,
		HeartbeatTimeout:  600 * time.Second,
	}
	if got := nvcf.DefaultCRDOptions(); got != want {
		t.Fatalf("DefaultCRDOptions() = %+v", got)
	}
	b := loadBackend(t, "backend-local.yaml")
	for _, bad := range []nvcf.CRDOptions{{SyncInterval: -time.Second},
		{HeartbeatTimeout: time.Microsecond}} {
		_, err := nvcf.Reconcile(b, nvcf.Observation{Now: t0}, &bad)
		if !errors.Is(err, nvcf.ErrInvalid) {
			t.Fatalf("options %+v: %v", bad, err)
		}
	}
	_, err := nvcf.Reconcile(b, nvcf.Observation{Now: t0},
		&nvcf.CRDOptions{SyncInterval: -time.Second})
	if e := asNvcf(t, err); e.Message != "invalid CRDOptions.SyncInterval "+
		"(-1s): give at least 1ms, or 0 for the default" {
		t.Fatalf("message %q", e.Message)
	}
	// the rejected steps left the object untouched
	eq(t, "status after rejected steps", b.Status(), nvcf.BackendStatus{
		GPUUsage: []nvcf.GPUUsage{}})
}

// ---- decoding and encoding ------------------------------------------------

var kindLine = regexp.MustCompile(`(?m)^kind: (\w+)$`)

// decoders by kind: from YAML, from JSON, and the object's fields.
type decoder struct {
	yaml   func([]byte) (nvcf.Resource, error)
	json   func([]byte) (nvcf.Resource, error)
	fields func(nvcf.Resource) []any
}

var decoders = map[string]decoder{
	"ICMSRequest": {
		func(b []byte) (nvcf.Resource, error) { return nvcf.ICMSRequestFromYAML(b) },
		func(b []byte) (nvcf.Resource, error) { return nvcf.ICMSRequestFromJSON(b) },
		func(r nvcf.Resource) []any {
			o := r.(*nvcf.ICMSRequest)
			return []any{o.Metadata(), o.Spec(), o.Status()}
		},
	},
	"MiniService": {
		func(b []byte) (nvcf.Resource, error) { return nvcf.MiniServiceFromYAML(b) },
		func(b []byte) (nvcf.Resource, error) { return nvcf.MiniServiceFromJSON(b) },
		func(r nvcf.Resource) []any {
			o := r.(*nvcf.MiniService)
			return []any{o.Metadata(), o.Spec(), o.Status()}
		},
	},
	"NVCFBackend": {
		func(b []byte) (nvcf.Resource, error) { return nvcf.NVCFBackendFromYAML(b) },
		func(b []byte) (nvcf.Resource, error) { return nvcf.NVCFBackendFromJSON(b) },
		func(r nvcf.Resource) []any {
			o := r.(*nvcf.NVCFBackend)
			return []any{o.Metadata(), o.Spec(), o.Status()}
		},
	},
}

func mustJSON(t *testing.T, r nvcf.Resource) []byte {
	t.Helper()
	b, err := r.ToJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustYAML(t *testing.T, r nvcf.Resource) []byte {
	t.Helper()
	b, err := r.ToYAML()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCRDFixturesRoundTrip(t *testing.T) {
	paths, err := filepath.Glob(fixturePath("*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// an empty list would pass vacuously
	if len(paths) < 12 {
		t.Fatalf("found %d fixtures under %s", len(paths),
			fixturePath(""))
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			text := fixture(t, name)
			m := kindLine.FindSubmatch(text)
			if m == nil {
				t.Fatal("no kind line")
			}
			kind := string(m[1])
			d, ok := decoders[kind]
			if !ok {
				t.Fatalf("unknown kind %s", kind)
			}
			obj, err := d.yaml(text)
			if err != nil {
				t.Fatal(err)
			}
			defer obj.Close()
			eq(t, "Kind()", obj.Kind(), kind)
			if obj.Name() == "" {
				t.Fatal("empty Name()")
			}
			first := mustJSON(t, obj)
			var doc map[string]any
			if err := json.Unmarshal(first, &doc); err != nil {
				t.Fatalf("ToJSON gave invalid JSON: %v", err)
			}
			if doc["kind"] != kind {
				t.Fatalf("JSON kind %v", doc["kind"])
			}

			again, err := d.json(first)
			if err != nil {
				t.Fatalf("decoding our own JSON: %v\n%s", err, first)
			}
			defer again.Close()
			if got := mustJSON(t, again); string(got) != string(first) {
				t.Fatalf("JSON round trip\n got %s\nwant %s", got, first)
			}
			if !reflect.DeepEqual(d.fields(again), d.fields(obj)) {
				t.Fatalf("fields after JSON\n got %+v\nwant %+v",
					d.fields(again), d.fields(obj))
			}

			y := mustYAML(t, obj)
			fromYAML, err := d.yaml(y)
			if err != nil {
				t.Fatalf("decoding our own YAML: %v\n%s", err, y)
			}
			defer fromYAML.Close()
			if got := mustJSON(t, fromYAML); string(got) != string(first) {
				t.Fatalf("YAML round trip\n got %s\nwant %s", got, first)
			}
			if got := mustYAML(t, fromYAML); string(got) != string(y) {
				t.Fatalf("YAML not stable\n got %s\nwant %s", got, y)
			}
			if !reflect.DeepEqual(d.fields(fromYAML), d.fields(obj)) {
				t.Fatal("fields differ after the YAML round trip")
			}
		})
	}
}

func TestICMSFields(t *testing.T) {
	r := loadICMS(t, "icms-new.yaml")
	m := r.Metadata()
	eq(t, "name", m.Name, "sr-0b6e3c2a")
	eq(t, "namespace", m.Namespace, "nvcf-backend")
	eq(t, "created", m.Created, t0)
	eq(t, "created location", m.Created.Location(), time.UTC)

	wantLabels := []nvcf.Label{
		{Key: "icms-request-id",
			Value: "5d1f0c2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"},
		{Key: "nca-id", Value: "nca-acct1-nca"},
	}
	if !reflect.DeepEqual(m.Labels, wantLabels) {
		t.Fatalf("labels %+v", m.Labels)
	}
	v, ok := m.Label("nca-id")
	eq(t, "Label(nca-id)", v, "nca-acct1-nca")
	eq(t, "Label(nca-id) found", ok, true)
	if _, ok := m.Label("zone"); ok {
		t.Fatal("Label(zone) found")
	}
	s := r.Spec()
	ls := s.LaunchSpecification
	s.LaunchSpecification = nil
	want := nvcf.ICMSSpec{
		RequestID:              "5d1f0c2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
		NCAID:                  "acct1",
		Action:                 nvcf.ICMSRequestInstances,
		FunctionID:             "9a8b7c6d-1111-2222-3333-444455556666",
		FunctionVersionID:      "0f0e0d0c-7777-8888-9999-aaaabbbbcccc",
		GPU:                    "L40S",
		InstanceType:           "NCP.GPU.L40S_1x",
		InstanceCount:          2,
		GPUSpecificationID:     "gs-1",
		DeploymentID:           "d-1",
		TerminationInstanceIDs: []string{},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("spec\n got %+v\nwant %+v", s, want)
	}
	var launch map[string]any
	if err := json.Unmarshal(ls, &launch); err != nil {
		t.Fatalf("launch specification %q: %v", ls, err)
	}
	wantLaunch := map[string]any{"containerImage": "file:///opt/echo",
		"inferenceUrl": "/echo", "inferencePort": 8000.0,
		"env": map[string]any{"MODE": "fast"}}
	if !reflect.DeepEqual(launch, wantLaunch) {
		t.Fatalf("launch specification %v", launch)
	}
	eq(t, "new status", r.Status(), nvcf.ICMSStatus{
		Instances: []nvcf.ICMSInstance{}})

	term := loadICMS(t, "icms-terminate.yaml")
	ts := term.Spec()
	eq(t, "termination spec", ts, nvcf.ICMSSpec{
		RequestID: "44444444-5555-4666-8777-888888888888",
		Action:    nvcf.ICMSTerminateInstances,
		TerminationInstanceIDs: []string{"0-sr-0b6e3c2a",
			"1-sr-0b6e3c2a"},
	})

	failed := loadICMS(t, "icms-failure-acknowledged.yaml")
	st := failed.Status()
	wantSt := nvcf.ICMSStatus{
		RequestStatus:      nvcf.RequestFailureAcknowledged,
		LastStatusUpdated:  at(5 * time.Minute),
		ReconcileErrors:    1,
		LastReconcileError: "image not found",
		Instances: []nvcf.ICMSInstance{{ID: "0-sr-77aa",
			Kind: nvcf.InstancePod, Status: "starting",
			LastReportedStatus: "starting",
			LastReported:       at(5 * time.Minute)}},
	}
	if !reflect.DeepEqual(st, wantSt) {
		t.Fatalf("status\n got %+v\nwant %+v", st, wantSt)
	}
	if st.RequestStatus.String() != "RequestFailureAcknowledged" {
		t.Fatalf("status name %q", st.RequestStatus)
	}
}

func TestMiniServiceAndBackendFields(t *testing.T) {
	ms := loadMS(t, "ms-new.yaml")
	s := ms.Spec()
	values := s.Values
	s.Values = nil
	if !reflect.DeepEqual(s, nvcf.MiniServiceSpec{Namespace: "sr-task1",
		ICMSRequestName: "sr-task1",
		ChartURL:        "https://charts.example/fn-0.1.0.tgz",
		ServiceName:     "entry", ServicePort: 8000}) {
		t.Fatalf("spec %+v", s)
	}
	if string(values) != `{"replicas":1,"image":{"tag":"1.0"}}` {
		t.Fatalf("values %s", values)
	}
	eq(t, "phase", ms.Status().Phase, nvcf.PhaseNone)
	eq(t, "generation", ms.Metadata().Generation, int64(1))

	run := loadMS(t, "ms-running.yaml").Status()
	eq(t, "running status", run, nvcf.MiniServiceStatus{
		Phase:               nvcf.PhaseRunning,
		LastPhaseTransition: at(3 * time.Minute),
		Conditions: []nvcf.Condition{
			{Type: "InstallSuccessful", Status: "True",
				LastTransition: at(time.Minute)},
			{Type: "ObjectsHealthy", Status: "True",
				LastTransition: at(3 * time.Minute)},
		},
		ObservedGeneration: 1,
	})
	eq(t, "phase name", run.Phase.String(), "Running")
	c, ok := run.Condition("ObjectsHealthy")
	eq(t, "ObjectsHealthy", c, run.Conditions[1])
	eq(t, "ObjectsHealthy found", ok, true)
	if _, ok := run.Condition("WorkersHealthy"); ok {
		t.Fatal("WorkersHealthy found")
	}

	b := loadBackend(t, "backend-local.yaml")
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	l40s := []nvcf.InstanceType{
		{Name: "NCP.GPU.L40S_1x", Description: "One L40S", Default: true,
			GPUCount: 1},
		{Name: "NCP.GPU.L40S_2x", Description: "Two L40S", GPUCount: 2},
	}
	h100 := []nvcf.InstanceType{{Name: "NCP.GPU.H100_1x",
		Description: "One H100", Default: true, GPUCount: 1}}
	eq(t, "backend spec", b.Spec(), nvcf.BackendSpec{
		ClusterID: "local-1", ClusterName: "local",
		ClusterGroup: "local", Region: "local", Attributes: []string{},
		GPUs: []nvcf.BackendGPU{
			{Name: "L40S", Capacity: 8, InstanceTypes: l40s},
			{Name: "H100", Capacity: 2, InstanceTypes: h100},
		},
	})
	eq(t, "agent status", b.Status().AgentStatus, nvcf.AgentUnknown)

	withStatus := loadBackend(t, "backend-status.yaml")
	eq(t, "attributes", withStatus.Spec().Attributes,
		[]string{"ssd", "10"})
	usage := nvcf.GPUUsage{GPU: "L40S", Capacity: 8, Allocated: 3,
		Available: 5}
	eq(t, "backend status", withStatus.Status(), nvcf.BackendStatus{
		AgentStatus:            nvcf.AgentHealthy,
		LastUpdatedAgentStatus: t0,
		GPUUsage:               []nvcf.GPUUsage{usage},
	})
	u, ok := withStatus.Status().Usage("L40S")
	eq(t, "Usage(L40S)", u, usage)
	eq(t, "Usage(L40S) found", ok, true)
}

const icmsHead = `apiVersion: nvca.nvcf.nvidia.io/v2beta1
kind: ICMSRequest
metadata: {name: a}
spec:
  ncaId: acct1
  action: RequestICMSInstances
  functionId: f
  functionVersionId: v
  gpu: L40S
  instanceType: NCP.GPU.L40S_1x
`

// wantInvalid checks that err is an ErrInvalid *nvcf.Error whose message
// contains part.
func wantInvalid(t *testing.T, err error, part string) {
	t.Helper()
	if !errors.Is(err, nvcf.ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	e := asNvcf(t, err)
	eq(t, "status", e.Status, nvcf.StatusInvalid)
	eq(t, "name", e.Name, "NVCF_EINVAL")
	if !strings.Contains(e.Message, part) {
		t.Fatalf("message %q does not contain %q", e.Message, part)
	}
}

func TestCRDMalformedNamesTheField(t *testing.T) {
	cases := []struct{ tail, want string }{
		{"  instanceCount: 1\n", "missing field spec.requestId"},
		{"  requestId: r\n  instanceCount: two\n",
			`ICMSRequest spec.instanceCount: expected a positive ` +
				`integer, got "two"`},
		{"  requestId: r\n  instanceCount: 0\n",
			"spec.instanceCount: expected a positive integer, got 0"},
		{"  requestId: r\n  instanceCount: 1\n" +
			"status: {requestStatus: Done}\n",
			"status.requestStatus: expected"},
		{"  requestId: r\n  instanceCount: 1\n" +
			"status: {lastStatusUpdated: yesterday}\n",
			"status.lastStatusUpdated: expected an RFC 3339"},
	}
	for _, c := range cases {
		r, err := nvcf.ICMSRequestFromYAML([]byte(icmsHead + c.tail))
		if r != nil {
			t.Fatalf("%q decoded", c.tail)
		}
		wantInvalid(t, err, c.want)
	}
	// the same document is fine once the field is right
	r, err := nvcf.ICMSRequestFromYAML([]byte(icmsHead +
		"  requestId: r\n  instanceCount: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec().InstanceCount != 1 {
		t.Fatalf("spec %+v", r.Spec())
	}
	r.Close()

	_, err = nvcf.ICMSRequestFromYAML(fixture(t, "ms-new.yaml"))
	if e := asNvcf(t, err); e.Message != "wrong kind MiniService, "+
		"expected ICMSRequest" {
		t.Fatalf("wrong kind message %q", e.Message)
	}
	_, err = nvcf.MiniServiceFromYAML(nil)
	wantInvalid(t, err, "empty YAML document")
	_, err = nvcf.NVCFBackendFromJSON([]byte("{"))
	wantInvalid(t, err, "")
	_, err = nvcf.ICMSRequestFromJSON([]byte{})
	wantInvalid(t, err, "")

	doc := strings.Replace(string(fixture(t, "backend-local.yaml")),
		"gpuCount: 2", "gpuCount: 9", 1)
	_, err = nvcf.NVCFBackendFromYAML([]byte(doc))
	wantInvalid(t, err, `spec.gpus[0].instanceTypes[1].gpuCount: `+
		`expected 1 to the capacity 8 of GPU "L40S", got 9`)

	// a JSON document without helmChartConfig.url
	var d map[string]any
	if err := json.Unmarshal(mustJSON(t, loadMS(t, "ms-new.yaml")),
		&d); err != nil {
		t.Fatal(err)
	}
	delete(d["spec"].(map[string]any)["helmChartConfig"].(map[string]any),
		"url")
	j, _ := json.Marshal(d)
	_, err = nvcf.MiniServiceFromJSON(j)
	wantInvalid(t, err, "spec.helmChartConfig.url")
}

func TestCRDLifetime(t *testing.T) {
	r, err := nvcf.ICMSRequestFromYAML(fixture(t, "icms-pending.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r.Closed() {
		t.Fatal("closed before Close")
	}
	r.Close()
	r.Close()
	eq(t, "Closed()", r.Closed(), true)
	eq(t, "Name() after Close", r.Name(), "")
	eq(t, "Status() after Close", r.Status(), nvcf.ICMSStatus{})

	if _, err := r.ToJSON(); err != nvcf.ErrClosed {
		t.Fatalf("ToJSON after Close: %v", err)
	}
	_, _, err = r.Reconcile(nvcf.Observation{Now: t0}, nil)
	if err != nvcf.ErrClosed {
		t.Fatalf("Reconcile after Close: %v", err)
	}
	// the clone owns its own object
	eq(t, "clone name", c.Name(), "sr-0b6e3c2a")
	eq(t, "clone status", c.Status().RequestStatus, nvcf.RequestPending)

	_, err = nvcf.Reconcile(nil, nvcf.Observation{Now: t0}, nil)
	if !errors.Is(err, nvcf.ErrInvalid) {
		t.Fatalf("Reconcile(nil): %v", err)
	}
	var none *nvcf.MiniService
	_, err = nvcf.Reconcile(none, nvcf.Observation{}, nil)
	if err != nvcf.ErrClosed {
		t.Fatalf("Reconcile of a nil *MiniService: %v", err)
	}
	_, err = nvcf.Reconcile(c, nvcf.Observation{Now: t0,
		Instances: []nvcf.ObservedInstance{{}}}, nil)
	wantInvalid(t, err, "observation instances[0].id is empty")
	_, err = nvcf.Reconcile(c, nvcf.Observation{Now: t0,
		Instances: []nvcf.ObservedInstance{{ID: "a\x00b"}}}, nil)
	wantInvalid(t, err, "contains a NUL byte")
	if c.Status().RequestStatus != nvcf.RequestPending {
		t.Fatal("a rejected observation changed the object")
	}
}

// ---- ICMSRequest ----------------------------------------------------------

type idState struct{ kind, id, state string }

func idStates(acts []nvcf.Action) []idState {
	out := []idState{}
	for _, a := range acts {
		out = append(out, idState{a.Kind.String(), a.InstanceID, a.State})
	}
	return out
}

func TestICMSCreationLifecycle(t *testing.T) {
	r := loadICMS(t, "icms-new.yaml")
	ids := []string{"0-sr-0b6e3c2a", "1-sr-0b6e3c2a"}

	// "" requests the ack and waits for its result
	acts := step(t, r, nil, nvcf.Observation{Now: at(time.Second)})
	wantKinds(t, acts, nvcf.ActionAckMessage, nvcf.ActionRequeue)
	eq(t, "requeue", requeue(t, acts), time.Duration(0))
	eq(t, "status", r.Status().RequestStatus, nvcf.RequestNew)

	acts, st, err := r.Reconcile(nvcf.Observation{Now: at(2 * time.Second),
		Ack: nvcf.AckOK}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantKinds(t, acts, nvcf.ActionRequeue)
	eq(t, "requeue", requeue(t, acts), time.Duration(0))
	eq(t, "status", st.RequestStatus, nvcf.RequestPending)
	eq(t, "last ack", st.LastAck, at(2*time.Second))

	// RequestPending creates both instances and reports them starting
	acts = step(t, r, nil, nvcf.Observation{Now: at(3 * time.Second)})
	eq(t, "status", r.Status().RequestStatus, nvcf.RequestInProgress)
	wantKinds(t, acts, nvcf.ActionCreateInstance,
		nvcf.ActionCreateInstance, nvcf.ActionReportStatus,
		nvcf.ActionReportStatus, nvcf.ActionRequeue)
	eq(t, "requeue", requeue(t, acts), time.Duration(0))
	eq(t, "create 0", acts[0], nvcf.Action{
		Kind: nvcf.ActionCreateInstance, InstanceID: ids[0], Index: 0})
	eq(t, "create 1", acts[1], nvcf.Action{
		Kind: nvcf.ActionCreateInstance, InstanceID: ids[1], Index: 1})
	eq(t, "reports", idStates(acts[2:4]), []idState{
		{"report-status", ids[0], "starting"},
		{"report-status", ids[1], "starting"}})
	for i, in := range r.Status().Instances {
		eq(t, "instance id", in.ID, ids[i])
		eq(t, "instance status", in.Status, "starting")
		eq(t, "instance reported", in.LastReportedStatus, "starting")
	}

	// the agent stores the object between steps: continue from its JSON
	stored := mustJSON(t, r)
	r.Close()
	r, err = nvcf.ICMSRequestFromJSON(stored)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	acts = step(t, r, nil, nvcf.Observation{Now: at(4 * time.Second),
		Instances: observe(nvcf.ObservedStarting, ids...)})
	wantKinds(t, acts, nvcf.ActionRequeue)
	eq(t, "status", r.Status().RequestStatus,
		nvcf.RequestInstancesInProgress)

	firstRunning := []nvcf.ObservedInstance{
		{ID: ids[0], State: nvcf.ObservedRunning},
		{ID: ids[1], State: nvcf.ObservedStarting}}
	acts = step(t, r, nil, nvcf.Observation{Now: at(5 * time.Second),
		Instances: firstRunning})
	eq(t, "first running", idStates(acts), []idState{
		{"report-status", ids[0], "running"}, {"requeue", "", ""}})
	eq(t, "requeue", requeue(t, acts), 15*time.Second)

	running := observe(nvcf.ObservedRunning, ids...)
	acts = step(t, r, nil, nvcf.Observation{Now: at(6 * time.Second),
		Instances: running})
	eq(t, "status", r.Status().RequestStatus, nvcf.RequestCompleted)
	eq(t, "last update", r.Status().LastStatusUpdated, at(6*time.Second))
	eq(t, "all running", idStates(acts), []idState{
		{"report-status", ids[1], "running"}, {"requeue", "", ""}})

	acts = step(t, r, nil, nvcf.Observation{Now: at(7 * time.Second),
		Instances: running})
	wantKinds(t, acts, nvcf.ActionRequeue)
	eq(t, "requeue", requeue(t, acts), time.Duration(0))
	eq(t, "status", r.Status().RequestStatus,
		nvcf.RequestCompletionAcknowledged)

	// nothing changes while the instances run
	acts = step(t, r, nil, nvcf.Observation{Now: at(8 * time.Second),
		Instances: running})
	wantKinds(t, acts, nvcf.ActionRequeue)
	eq(t, "requeue", requeue(t, acts), 15*time.Second)

	// once terminated and reported, the object is garbage collected
	stopped := observe(nvcf.ObservedTerminated, ids...)
	acts = step(t, r, nil, nvcf.Observation{Now: at(9 * time.Second),
		Instances: stopped})
	if len(acts) < 2 {
		t.Fatalf("terminated: %v", acts)
	}
	eq(t, "terminated", idStates(acts[:2]), []idState{
		{"report-status", ids[0], "terminated"},
		{"report-status", ids[1], "terminated"}})

	acts = step(t, r, nil, nvcf.Observation{Now: at(10 * time.Second),
		Instances: stopped})
	wantKinds(t, acts, nvcf.ActionGarbageCollect)
	eq(t, "name", acts[0].Kind.String(), "garbage-collect")
}

func TestICMSInstanceFailureAndErrors(t *testing.T) {
	opts := &nvcf.CRDOptions{FailureRequeue: 5 * time.Second}
	r := loadICMS(t, "icms-in-progress.yaml")
	inst := r.Status().Instances
	ids := []string{inst[0].ID, inst[1].ID}

	// a retryable error counts and requeues after FailureRequeue
	acts := step(t, r, opts, nvcf.Observation{Now: at(time.Minute),
		Error: "runtime busy"})
	wantKinds(t, acts, nvcf.ActionRequeue)
	eq(t, "requeue", requeue(t, acts), 5*time.Second)
	st := r.Status()
	eq(t, "errors", st.ReconcileErrors, uint32(1))
	eq(t, "last error", st.LastReconcileError, "runtime busy")
	eq(t, "status", st.RequestStatus, nvcf.RequestInProgress)

	// a failed instance fails the request and is deleted
	seen := []nvcf.ObservedInstance{
		{ID: ids[0], State: nvcf.ObservedRunning},
		{ID: ids[1], State: nvcf.ObservedFailed,
			Reason: "image pull failed"}}
	acts = step(t, r, opts, nvcf.Observation{Now: at(2 * time.Minute),
		Instances: seen})
	st = r.Status()
	eq(t, "status", st.RequestStatus, nvcf.RequestFailed)
	eq(t, "last error", st.LastReconcileError, "an instance failed")
	eq(t, "delete", acts[0], nvcf.Action{Kind: nvcf.ActionDeleteInstance,
		InstanceID: ids[1], Reason: "image pull failed"})
	eq(t, "failed instance status", st.Instances[1].Status, "terminated")
	eq(t, "failed instance reason", st.Instances[1].Reason,
		"image pull failed")

	step(t, r, opts, nvcf.Observation{Now: at(3 * time.Minute),
		Instances: seen})
	eq(t, "status", r.Status().RequestStatus,
		nvcf.RequestFailureAcknowledged)
}

func TestICMSAckRejectedAndTerminalError(t *testing.T) {
	r := loadICMS(t, "icms-new.yaml")
	step(t, r, nil, nvcf.Observation{Now: at(time.Second)})
	step(t, r, nil, nvcf.Observation{Now: at(2 * time.Second),
		Ack: nvcf.AckRejected})
	eq(t, "status after a rejected ack", r.Status().RequestStatus,
		nvcf.RequestFailureAcknowledged)

	task := loadICMS(t, "icms-task-helm.yaml")
	acts := step(t, task, nil, nvcf.Observation{Now: t0,
		Error: "no such chart", ErrorTerminal: true})
	eq(t, "status after a terminal error", task.Status().RequestStatus,
		nvcf.RequestFailed)

	// the owed MiniService instance is reported as a placeholder
	wantKinds(t, acts, nvcf.ActionReportStatus, nvcf.ActionRequeue)
	eq(t, "reported id", acts[0].InstanceID, "sr-task1-miniservice")
	eq(t, "instance kind", task.Status().Instances[0].Kind,
		nvcf.InstanceMiniService)

	// a request without creationTimestamp takes the step's time
	eq(t, "created", task.Metadata().Created, t0)
}

func TestICMSTermination(t *testing.T) {
	r := loadICMS(t, "icms-terminate.yaml")
	ids := r.Spec().TerminationInstanceIDs
	acts := step(t, r, nil, nvcf.Observation{Now: t0})
	wantKinds(t, acts, nvcf.ActionAckMessage, nvcf.ActionRequeue)
	eq(t, "status", r.Status().RequestStatus, nvcf.RequestPending)

	// RequestInProgress deletes every listed id and reports it
	acts = step(t, r, nil, nvcf.Observation{Now: at(time.Second)})
	eq(t, "status", r.Status().RequestStatus, nvcf.RequestInProgress)
	wantKinds(t, acts, nvcf.ActionDeleteInstance,
		nvcf.ActionDeleteInstance, nvcf.ActionReportStatus,
		nvcf.ActionReportStatus, nvcf.ActionRequeue)
	for i, id := range ids {
		eq(t, "delete", acts[i], nvcf.Action{
			Kind: nvcf.ActionDeleteInstance, InstanceID: id,
			Reason: "instance-terminated-by-user"})
		eq(t, "report", idStates(acts[2+i:3+i]), []idState{
			{"report-status", id, "terminated"}})
	}

	step(t, r, nil, nvcf.Observation{Now: at(2 * time.Second)})
	eq(t, "status", r.Status().RequestStatus, nvcf.RequestCompleted)
	step(t, r, nil, nvcf.Observation{Now: at(3 * time.Second)})
	eq(t, "status", r.Status().RequestStatus,
		nvcf.RequestCompletionAcknowledged)
	acts = step(t, r, nil, nvcf.Observation{Now: at(4 * time.Second)})
	wantKinds(t, acts, nvcf.ActionGarbageCollect)
}

// ---- MiniService ----------------------------------------------------------

func TestMiniServicePhases(t *testing.T) {
	opts := &nvcf.CRDOptions{FailureBackoff: 10 * time.Second,
		FailureRequeue: 2 * time.Second}
	const pod = "entry-0"
	ms := loadMS(t, "ms-new.yaml")
	phase := func(want nvcf.Phase) {
		t.Helper()
		if got := ms.Status().Phase; got != want {
			t.Fatalf("phase %q, want %q", got, want)
		}
	}

	acts := step(t, ms, opts, nvcf.Observation{Now: t0})
	wantKinds(t, acts, nvcf.ActionCreateInstance, nvcf.ActionRequeue)
	eq(t, "install id", acts[0].InstanceID, "sr-task1-miniservice")
	eq(t, "install miniservice", acts[0].MiniService, true)
	phase(nvcf.PhaseInstalling)
	if ms.Status().ObservedGeneration != 1 {
		t.Fatalf("observed generation %d", ms.Status().ObservedGeneration)
	}

	// nothing observed yet: still installing
	acts = step(t, ms, opts, nvcf.Observation{Now: at(time.Second)})
	phase(nvcf.PhaseInstalling)
	if requeue(t, acts) != 15*time.Second {
		t.Fatalf("installing %v", acts)
	}

	starting := observe(nvcf.ObservedStarting, pod)
	step(t, ms, opts, nvcf.Observation{Now: at(2 * time.Second),
		Instances: starting})
	phase(nvcf.PhaseInstalled)
	if c, _ := ms.Status().Condition("InstallSuccessful"); c.Status != "True" {
		t.Fatalf("InstallSuccessful %+v", c)
	}

	step(t, ms, opts, nvcf.Observation{Now: at(3 * time.Second),
		Instances: starting})
	phase(nvcf.PhaseStarting)
	c, _ := ms.Status().Condition("ObjectsHealthy")
	eq(t, "ObjectsHealthy status", c.Status, "False")
	eq(t, "ObjectsHealthy reason", c.Reason, "WaitingOnObjectReadiness")

	running := observe(nvcf.ObservedRunning, pod)
	acts, st, err := ms.Reconcile(nvcf.Observation{Now: at(4 * time.Second),
		Instances: running}, opts)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "phase", st.Phase, nvcf.PhaseRunning)
	eq(t, "requeue", requeue(t, acts), time.Duration(0))
	eq(t, "phase transition", st.LastPhaseTransition, at(4*time.Second))
	if c, _ := st.Condition("ObjectsHealthy"); c.Status != "True" {
		t.Fatalf("ObjectsHealthy %+v", c)
	}

	// a failed pod is tolerated for FailureBackoff ...
	failed := []nvcf.ObservedInstance{{ID: pod, State: nvcf.ObservedFailed,
		Reason: "OOMKilled"}}
	acts = step(t, ms, opts, nvcf.Observation{Now: at(5 * time.Second),
		Instances: failed})
	phase(nvcf.PhaseRunning)
	if requeue(t, acts) != 2*time.Second {
		t.Fatalf("backoff %v", acts)
	}
	want := nvcf.Condition{Type: "ObjectsHealthy", Status: "False",
		Reason:         "ObjectsFailedWithinBackoffTimeout",
		Message:        "OOMKilled",
		LastTransition: at(5 * time.Second)}
	if c, _ := ms.Status().Condition("ObjectsHealthy"); c != want {
		t.Fatalf("ObjectsHealthy\n got %+v\nwant %+v", c, want)
	}

	// ... then a service that ran has Failed, a sink
	acts = step(t, ms, opts, nvcf.Observation{Now: at(15 * time.Second),
		Instances: failed})
	phase(nvcf.PhaseFailed)
	wantKinds(t, acts)
	c, _ = ms.Status().Condition("WorkersHealthy")
	eq(t, "WorkersHealthy status", c.Status, "False")
	eq(t, "WorkersHealthy reason", c.Reason, "ObjectsFailed")
	acts = step(t, ms, opts, nvcf.Observation{Now: at(20 * time.Second),
		Instances: running})
	wantKinds(t, acts)
	phase(nvcf.PhaseFailed)
}

// msVariant decodes ms-new.yaml or ms-running.yaml with edit applied to
// its JSON form.
func msVariant(t *testing.T, name string, edit func(map[string]any)) *nvcf.MiniService {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(mustJSON(t, loadMS(t, name)), &d); err != nil {
		t.Fatal(err)
	}
	edit(d)
	j, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := nvcf.MiniServiceFromJSON(j)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return ms
}

func TestMiniServiceNewGenerationReinstalls(t *testing.T) {
	ms := msVariant(t, "ms-running.yaml", func(d map[string]any) {
		d["metadata"].(map[string]any)["generation"] = 2
	})
	acts := step(t, ms, nil, nvcf.Observation{Now: t0})
	st := ms.Status()
	eq(t, "phase", st.Phase, nvcf.PhaseInstalling)
	eq(t, "revision", st.Revision, uint32(1))
	eq(t, "observed generation", st.ObservedGeneration, int64(2))
	wantKinds(t, acts, nvcf.ActionCreateInstance, nvcf.ActionRequeue)
}

func TestMiniServiceTaskCompletes(t *testing.T) {
	ms := msVariant(t, "ms-new.yaml", func(d map[string]any) {
		d["spec"].(map[string]any)["isTask"] = true
	})
	if !ms.Spec().IsTask {
		t.Fatal("isTask lost")
	}
	step(t, ms, nil, nvcf.Observation{Now: t0})
	done := observe(nvcf.ObservedSucceeded, "job-0")
	step(t, ms, nil, nvcf.Observation{Now: at(time.Second), Instances: done})
	if p := ms.Status().Phase; p != nvcf.PhaseInstalled {
		t.Fatalf("phase %q", p)
	}
	acts := step(t, ms, nil, nvcf.Observation{Now: at(2 * time.Second),
		Instances: done})
	wantKinds(t, acts)
	p := ms.Status().Phase
	eq(t, "phase", p, nvcf.PhaseCompleted)
	eq(t, "observed", p.Observed(), nvcf.ObservedSucceeded)
}

// ---- NVCFBackend ----------------------------------------------------------

func TestBackendHealthFromHeartbeatAge(t *testing.T) {
	b := loadBackend(t, "backend-local.yaml")
	health := func(want nvcf.AgentStatus) {
		t.Helper()
		if got := b.Status().AgentStatus; got != want {
			t.Fatalf("agent status %s, want %s", got, want)
		}
	}

	acts := step(t, b, nil, nvcf.Observation{Now: t0})
	health(nvcf.AgentUnknown)
	wantKinds(t, acts, nvcf.ActionReportStatus, nvcf.ActionRequeue)
	if requeue(t, acts) != 15*time.Second {
		t.Fatalf("requeue %v", acts)
	}
	eq(t, "usage", b.Status().GPUUsage, []nvcf.GPUUsage{
		{GPU: "L40S", Capacity: 8, Available: 8},
		{GPU: "H100", Capacity: 2, Available: 2}})

	alloc := []nvcf.GPUAllocation{{GPU: "L40S", Allocated: 3},
		{GPU: "H100", Allocated: 5}}
	acts, st, err := b.Reconcile(nvcf.Observation{Now: t0,
		Heartbeat: at(-5 * time.Second), Allocations: alloc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "agent status", st.AgentStatus, nvcf.AgentHealthy)
	eq(t, "agent status name", st.AgentStatus.String(), "Healthy")
	eq(t, "updated", st.LastUpdatedAgentStatus, t0)
	wantKinds(t, acts, nvcf.ActionReportStatus, nvcf.ActionRequeue)
	if u, _ := st.Usage("L40S"); u != (nvcf.GPUUsage{GPU: "L40S",
		Capacity: 8, Allocated: 3, Available: 5}) {
		t.Fatalf("L40S %+v", u)
	}
	// over-allocation never gives a negative availability
	if u, _ := st.Usage("H100"); u != (nvcf.GPUUsage{GPU: "H100",
		Capacity: 2, Allocated: 5, Available: 0}) {
		t.Fatalf("H100 %+v", u)
	}

	// unchanged: only the requeue
	acts = step(t, b, nil, nvcf.Observation{Now: at(time.Second),
		Heartbeat: t0, Allocations: alloc})
	wantKinds(t, acts, nvcf.ActionRequeue)

	// the heartbeat ages past HeartbeatTimeout
	opts := &nvcf.CRDOptions{HeartbeatTimeout: 30 * time.Second}
	acts = step(t, b, opts, nvcf.Observation{Now: at(29 * time.Second),
		Heartbeat: t0, Allocations: alloc})
	health(nvcf.AgentHealthy)
	wantKinds(t, acts, nvcf.ActionRequeue)
	acts = step(t, b, opts, nvcf.Observation{Now: at(30 * time.Second),
		Heartbeat: t0, Allocations: alloc})
	health(nvcf.AgentUnhealthy)
	wantKinds(t, acts, nvcf.ActionReportStatus, nvcf.ActionRequeue)
	if !b.Status().LastUpdatedAgentStatus.Equal(at(30 * time.Second)) {
		t.Fatalf("updated %s", b.Status().LastUpdatedAgentStatus)
	}

	// a fresh heartbeat makes it healthy again
	step(t, b, opts, nvcf.Observation{Now: at(31 * time.Second),
		Heartbeat: at(31 * time.Second), Allocations: alloc})
	health(nvcf.AgentHealthy)

	// the status read before a step is a copy
	before := b.Status()
	step(t, b, opts, nvcf.Observation{Now: at(time.Hour),
		Heartbeat: at(31 * time.Second)})
	eq(t, "copy agent status", before.AgentStatus, nvcf.AgentHealthy)
	eq(t, "copy allocation", before.GPUUsage[0].Allocated, uint32(3))
	health(nvcf.AgentUnhealthy)
	if u, _ := b.Status().Usage("L40S"); u.Allocated != 0 {
		t.Fatalf("absent allocation counts %d", u.Allocated)
	}
}
