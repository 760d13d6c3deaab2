// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	nvcf "github.com/libnvcf/nvcf-go"
)

const missingID = "00000000-0000-4000-8000-000000000000"

type echoAnswer struct {
	Body    string            `json:"body"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

func TestLocalStackDeployAndInvoke(t *testing.T) {
	s := localStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	for _, name := range []string{"nats", "nvcf-api", "nvcf-invocation",
		"nvca"} {
		pid := s.PID(name)
		if pid <= 0 || syscall.Kill(pid, 0) != nil {
			t.Fatalf("process %s (pid %d) is not running", name, pid)
		}
	}
	if !strings.HasPrefix(s.APIURL, "http://127.0.0.1:") ||
		!strings.HasPrefix(s.NatsURL, "nats://127.0.0.1:") {
		t.Fatalf("settings: %s %s", s.APIURL, s.NatsURL)
	}
	if err := s.Gateway.Health(ctx); err != nil {
		t.Fatal(err)
	}

	image := "file://" + filepath.Join(sourceDir(), "examples",
		"functions", "pyecho", "server.py")
	fn, err := s.API.CreateFunction(ctx, nvcf.FunctionSpec{
		Name: "go-echo", InferenceURL: "/echo", ContainerImage: image,
		Health: &nvcf.HealthCheck{Protocol: "HTTP", URI: "/health",
			Port: 8000, Timeout: "PT10S", ExpectedStatusCode: 200},
		Description: "Go binding test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !nvcf.ValidID(fn.ID) || !nvcf.ValidID(fn.VersionID) ||
		fn.Name != "go-echo" || fn.Raw["containerImage"] != image {
		t.Fatalf("function record: %+v", fn)
	}
	dep, err := s.API.Deploy(ctx, fn.ID, fn.VersionID, nvcf.DeploymentSpec{
		GPU: "L40S", InstanceType: "NCP.GPU.L40S_1x", MinInstances: 1,
		MaxInstances: 1, MaxRequestConcurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if dep.FunctionID != fn.ID || len(dep.Specs) != 1 ||
		dep.Specs[0].InstanceType != "NCP.GPU.L40S_1x" {
		t.Fatalf("deployment: %+v", dep)
	}
	active, err := s.API.WaitActive(ctx, fn.ID, fn.VersionID)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.LogsText(3000))
	}
	if active.Status != "ACTIVE" {
		t.Fatalf("status %s", active.Status)
	}

	hdr := http.Header{}
	hdr.Set("X-Trace", "t1")
	r, err := s.Gateway.Invoke(ctx, fn.ID, []byte(`{"hello": "world"}`),
		&nvcf.InvokeOptions{Header: hdr})
	if err != nil {
		t.Fatal(err)
	}
	var got echoAnswer
	if err := r.JSON(&got); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	if r.StatusCode != 200 || r.NVCFStatus() != "fulfilled" ||
		!nvcf.ValidID(r.RequestID()) {
		t.Fatalf("invoke: %d %v", r.StatusCode, r.Header)
	}
	if got.Body != `{"hello": "world"}` || got.Path != "/echo" ||
		got.Headers["NVCF-FUNCTION-ID"] != fn.ID ||
		got.Headers["NVCF-REQID"] != r.RequestID() ||
		got.Headers["X-Trace"] != "t1" {
		t.Fatalf("echo: %s", r.Body)
	}
	if _, ok := got.Headers["Authorization"]; ok {
		t.Fatal("the key reached the function")
	}

	// A request that outlives its poll window gets 202, then Poll.
	r, err = s.Gateway.Invoke(ctx, fn.ID, []byte(`{"sleep": 2.5}`),
		&nvcf.InvokeOptions{VersionID: fn.VersionID, PollSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 202 || r.NVCFStatus() != "in-progress" ||
		!nvcf.ValidID(r.RequestID()) {
		t.Fatalf("want 202, got %d %s", r.StatusCode, r.Body)
	}
	reqID := r.RequestID()
	for r.StatusCode == 202 {
		if r, err = s.Gateway.Poll(ctx, reqID, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.JSON(&got); err != nil || r.StatusCode != 200 ||
		got.Body != `{"sleep": 2.5}` {
		t.Fatalf("polled: %d %s %v", r.StatusCode, r.Body, err)
	}

	// Call follows the 202 itself.
	r, err = s.Gateway.Call(ctx, fn.ID, []byte(`{"sleep": 1.5}`),
		&nvcf.InvokeOptions{PollSeconds: 1})
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("Call: %v %v", r, err)
	}

	// A context that ends interrupts an invocation.
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = s.Gateway.Invoke(short, fn.ID, []byte(`{"sleep": 2}`), nil)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}

	if err := s.API.Undeploy(ctx, fn.ID, fn.VersionID); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPErrors(t *testing.T) {
	s := localStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := s.API.GetFunction(ctx, missingID, missingID)
	var he *nvcf.HTTPError
	if !errors.As(err, &he) || he.StatusCode != 404 ||
		!errors.Is(err, nvcf.ErrNotFound) {
		t.Fatalf("missing function: %v", err)
	}
	if he.Title == "" || he.Detail == "" || he.Problem == nil ||
		!strings.Contains(he.Error(), "HTTP 404") {
		t.Fatalf("problem fields: %+v", he)
	}
	if ct := he.Header.Get("Content-Type"); ct !=
		"application/problem+json" {
		t.Errorf("content type %q", ct)
	}

	_, err = s.Gateway.Poll(ctx, missingID, 1)
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Fatalf("poll of an unknown id: %v", err)
	}

	bad := nvcf.NewAPIClient(s.APIURL, "not-a-key")
	_, err = bad.ListFunctions(ctx)
	if !errors.As(err, &he) || he.StatusCode != 401 ||
		!errors.Is(err, nvcf.ErrUnauthenticated) {
		t.Fatalf("bad key: %v", err)
	}

	_, err = s.API.CreateFunction(ctx, nvcf.FunctionSpec{Name: "x"})
	if !errors.As(err, &he) || he.StatusCode != 400 ||
		!errors.Is(err, nvcf.ErrInvalid) || he.Detail == "" {
		t.Fatalf("invalid function: %v", err)
	}
	_, err = s.API.Deploy(ctx, missingID, missingID)
	if !errors.Is(err, nvcf.ErrInvalid) {
		t.Fatalf("Deploy without specs: %v", err)
	}
}

func TestCreateKey(t *testing.T) {
	s := localStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, err := s.CreateKey(ctx, "go-acct", "")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := s.Clients(key)
	fns, err := api.ListFunctions(ctx)
	if err != nil || len(fns) != 0 {
		t.Fatalf("another account sees %d functions: %v", len(fns), err)
	}
}

func TestLocalStackStartFailure(t *testing.T) {
	dir := t.TempDir()
	backend := filepath.Join(dir, "missing.yaml")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := nvcf.StartLocalStack(ctx, &nvcf.LocalStackOptions{
		Backend: backend, StateDir: filepath.Join(dir, "state")})
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("want an error naming the backend, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "env")); err == nil {
		t.Fatal("a failed start left an env file")
	}
}
