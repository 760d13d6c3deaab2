// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	nvcf "github.com/libnvcf/nvcf-go"
)

func TestVersion(t *testing.T) {
	if got := nvcf.Version(); got != "0.1.0" {
		t.Fatalf("Version() = %q", got)
	}
	if got := nvcf.VersionNumber(); got != 100 {
		t.Fatalf("VersionNumber() = %d", got)
	}
	if !strings.Contains(nvcf.LibraryPath(), "libnvcf.so") {
		t.Fatalf("LibraryPath() = %q", nvcf.LibraryPath())
	}
}

func TestSentinelsMatchTheLibrary(t *testing.T) {
	for i, s := range nvcf.Sentinels {
		want := nvcf.Status(-1 - i)
		if s.Status != want {
			t.Fatalf("Sentinels[%d] has status %d", i, s.Status)
		}
		if s.Name != s.Status.String() {
			t.Errorf("%d: name %q, library says %q", s.Status, s.Name,
				s.Status.String())
		}
		if s.Message != s.Status.Description() {
			t.Errorf("%s: message %q, library says %q", s.Name,
				s.Message, s.Status.Description())
		}
	}
	if got := nvcf.Status(-99).String(); got != "NVCF_UNKNOWN" {
		t.Fatalf("unknown status name %q", got)
	}
	if nvcf.StatusOK.String() != "NVCF_OK" {
		t.Fatal(nvcf.StatusOK.String())
	}
}

func TestErrorMatching(t *testing.T) {
	e := &nvcf.Error{Status: nvcf.StatusNotFound, Name: "NVCF_ENOTFOUND",
		Message: "no such key"}
	wrapped := fmt.Errorf("loading: %w", e)
	if !errors.Is(wrapped, nvcf.ErrNotFound) {
		t.Fatal("wrapped not-found does not match ErrNotFound")
	}
	if errors.Is(wrapped, nvcf.ErrInvalid) {
		t.Fatal("not-found matches ErrInvalid")
	}
	if e.Error() != "nvcf: NVCF_ENOTFOUND: no such key" {
		t.Fatalf("Error() = %q", e.Error())
	}
}

// A failing C call yields the status of the call and the message the
// library wrote, not a generic description.
func TestErrorFromCCall(t *testing.T) {
	p := nvcf.DefaultParams()
	p.MaxInstances = 0
	err := p.Validate()
	if !errors.Is(err, nvcf.ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	e := asNvcf(t, err)
	if e.Name != "NVCF_EINVAL" || e.Status != nvcf.StatusInvalid {
		t.Fatalf("status %d name %s", e.Status, e.Name)
	}
	if !strings.Contains(e.Message, "max_instances (0) must be >= 1") {
		t.Fatalf("message %q", e.Message)
	}
	if e.HTTPStatus != 0 || e.JetStreamCode != 0 {
		t.Fatalf("unexpected codes %+v", e)
	}
}

// The detail is per thread: many goroutines failing at once each get
// their own call's message.
func TestErrorDetailPerGoroutine(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v := fmt.Sprintf("%d", 4000+i)
			_, err := nvcf.ParsePollSeconds(v)
			if err == nil || !strings.Contains(err.Error(), v) {
				errs <- fmt.Errorf("value %s gave %v", v, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrUnavailableFromBus(t *testing.T) {
	// A port this test opened and closed again: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = nvcf.ConnectBus(nvcf.BusOptions{URL: "nats://" + addr,
		ConnectTimeout: 500 * time.Millisecond})
	if !errors.Is(err, nvcf.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	if e := asNvcf(t, err); !strings.Contains(e.Message, addr) {
		t.Fatalf("message does not name %s: %q", addr, e.Message)
	}
}

func TestLogLevelNames(t *testing.T) {
	var got []string
	for l := nvcf.LogError; l <= nvcf.LogTrace; l++ {
		got = append(got, l.String())
	}
	if strings.Join(got, ",") != "error,warn,info,debug,trace" {
		t.Fatalf("level names %v", got)
	}
}

type logRecord struct {
	level     nvcf.LogLevel
	subsystem string
	message   string
}

func TestLogHandler(t *testing.T) {
	s := localStack(t)
	var mu sync.Mutex
	var records []logRecord
	h := func(l nvcf.LogLevel, sub, msg string) {
		mu.Lock()
		records = append(records, logRecord{l, sub, msg})
		mu.Unlock()
	}
	nvcf.SetLogHandler(h)
	defer nvcf.SetLogHandler(nil)
	if nvcf.CurrentLogHandler() == nil {
		t.Fatal("CurrentLogHandler() is nil after SetLogHandler")
	}
	b, err := s.ConnectBus("go-log-test")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	want := logRecord{nvcf.LogInfo, "bus",
		"connected to " + s.NatsURL + " as 'go-log-test'"}
	mu.Lock()
	found := false
	for _, r := range records {
		found = found || r == want
	}
	mu.Unlock()
	if !found {
		t.Fatalf("no record %+v among %+v", want, records)
	}

	// Above the level nothing arrives; a nil handler removes it; a
	// panicking handler does not break the call.
	mu.Lock()
	records = nil
	mu.Unlock()
	nvcf.SetLogHandlerLevel(h, nvcf.LogWarn)
	if b, err = s.ConnectBus("go-log-warn"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if prev := nvcf.SetLogHandler(nil); prev == nil {
		t.Fatal("SetLogHandler(nil) did not return the old handler")
	}
	if b, err = s.ConnectBus("go-log-none"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	mu.Lock()
	if len(records) != 0 {
		t.Fatalf("records above the level or after removal: %+v",
			records)
	}
	mu.Unlock()
	nvcf.SetLogHandler(func(nvcf.LogLevel, string, string) {
		panic("handler bug")
	})
	if b, err = s.ConnectBus("go-log-panic"); err != nil {
		t.Fatalf("a panicking handler broke the call: %v", err)
	}
	b.Close()
}

func TestBusKV(t *testing.T) {
	s := localStack(t)
	b, err := s.ConnectBus("go-kv-test")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Region() != "local" {
		t.Fatalf("region %q", b.Region())
	}
	if err := b.EnsureControl(); err != nil {
		t.Fatal(err)
	}

	bucket := nvcf.BucketTasks
	_, _, err = b.KVGet(bucket, "go.missing")
	if !errors.Is(err, nvcf.ErrNotFound) {
		t.Fatalf("KVGet of a missing key: %v", err)
	}
	rev, err := b.KVCreate(bucket, "go.k1", []byte("v1"))
	if err != nil || rev == 0 {
		t.Fatalf("KVCreate: %d %v", rev, err)
	}
	if _, err := b.KVCreate(bucket, "go.k1", []byte("v1")); !errors.Is(
		err, nvcf.ErrExists) {
		t.Fatalf("second KVCreate: %v", err)
	}
	if _, err := b.KVUpdate(bucket, "go.k1", []byte("v2"), rev+100); !errors.Is(
		err, nvcf.ErrConflict) {
		t.Fatalf("stale KVUpdate: %v", err)
	}
	rev2, err := b.KVUpdate(bucket, "go.k1", []byte("v2"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("KVUpdate: %d %v", rev2, err)
	}

	if _, err := b.KVPut(bucket, "go.k2", nil); err != nil {
		t.Fatal(err)
	}
	v, r, err := b.KVGet(bucket, "go.k1")
	if err != nil || string(v) != "v2" || r != rev2 {
		t.Fatalf("KVGet: %q %d %v", v, r, err)
	}
	keys, err := b.KVKeys(bucket, "go.>")
	if err != nil || strings.Join(keys, ",") != "go.k1,go.k2" &&
		strings.Join(keys, ",") != "go.k2,go.k1" {
		t.Fatalf("KVKeys: %v %v", keys, err)
	}

	if err := b.KVDelete(bucket, "go.k1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.KVGet(bucket, "go.k1"); !errors.Is(err,
		nvcf.ErrNotFound) {
		t.Fatalf("KVGet after delete: %v", err)
	}
	if err := b.Publish("no.stream.here", []byte("x"), ""); !errors.Is(
		err, nvcf.ErrNotFound) {
		t.Fatalf("Publish without a stream: %v", err)
	}
	b.Close()
	if _, err := b.KVPut(bucket, "go.k3", nil); err != nvcf.ErrClosed {
		t.Fatalf("KVPut after Close: %v", err)
	}
}
