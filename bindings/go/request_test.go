// SPDX-License-Identifier: Apache-2.0

package nvcf_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	nvcf "github.com/libnvcf/nvcf-go"
)

func TestRequestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id, err := nvcf.NewRequestID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 36 || !nvcf.ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "x", "00000000-0000-4000-8000-00000000000g",
		"00000000-0000-4000-8000-000000000000\x00"} {
		if nvcf.ValidID(bad) {
			t.Errorf("ValidID(%q) is true", bad)
		}
	}
}

func TestPollSeconds(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "1": 1, " 30 ": 30,
		"3600": 3600} {
		got, err := nvcf.ParsePollSeconds(in)
		if err != nil || got != want {
			t.Errorf("ParsePollSeconds(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-1", "3601", "1.5", "abc", "1\x002"} {
		_, err := nvcf.ParsePollSeconds(in)
		if !errors.Is(err, nvcf.ErrInvalid) {
			t.Errorf("ParsePollSeconds(%q): %v", in, err)
		}
	}
	_, err := nvcf.ParsePollSeconds("3601")
	if e := asNvcf(t, err); !strings.Contains(e.Message, "3601") {
		t.Fatalf("message does not name the value: %q", e.Message)
	}
	got, err := nvcf.PollSecondsFromHeader(http.Header{})
	if err != nil || got != nvcf.PollSecondsDefault {
		t.Fatalf("absent header: %d %v", got, err)
	}
	h := http.Header{}
	h.Set("Nvcf-Poll-Seconds", "7")
	if got, err = nvcf.PollSecondsFromHeader(h); err != nil || got != 7 {
		t.Fatalf("header 7: %d %v", got, err)
	}
}

func TestForwardHeaders(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Trace": true, "Content-Type": true, "Authorization": false,
		"authorization": false, "Connection": false, "Host": false,
		"NVCF-REQID": false, "Content-Length": false,
		"Function-Id": false, "Proxy-Authorization": false,
	} {
		if got := nvcf.ForwardHeader(name); got != want {
			t.Errorf("ForwardHeader(%q) = %v", name, got)
		}
	}
	in := http.Header{"X-Trace": {"a", "b"}, "Authorization": {"Bearer k"}}
	out := nvcf.ForwardableHeaders(in)
	if len(out) != 1 || strings.Join(out["X-Trace"], ",") != "a,b" {
		t.Fatalf("ForwardableHeaders = %v", out)
	}
}

func TestStatusHeaderAndStates(t *testing.T) {
	for code, want := range map[int]string{200: "fulfilled",
		202: "in-progress", 302: "fulfilled", 400: "errored",
		500: "errored", 100: "errored"} {
		if got := nvcf.StatusHeader(code); got != want {
			t.Errorf("StatusHeader(%d) = %q", code, got)
		}
	}
	var names []string
	for s := nvcf.StateQueued; s <= nvcf.StateCanceled; s++ {
		names = append(names, s.String())
	}
	if strings.Join(names, ",") != "queued,in-progress,fulfilled,errored,timed-out,canceled" {
		t.Fatalf("state names %v", names)
	}
	if s, ok := nvcf.ParseRequestState("FULFILLED"); !ok ||
		s != nvcf.StateFulfilled {
		t.Fatalf("ParseRequestState: %v %v", s, ok)
	}
	if _, ok := nvcf.ParseRequestState("done"); ok {
		t.Fatal("ParseRequestState accepted an unknown name")
	}
}
