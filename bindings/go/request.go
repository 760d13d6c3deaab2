// SPDX-License-Identifier: Apache-2.0

package nvcf

// #include <stdlib.h>
// #include <nvcf/request.h>
import "C"

import (
	"net/http"
	"strings"
	"unsafe"
)

// Poll window of NVCF-POLL-SECONDS, in seconds.
const (
	PollSecondsDefault = 60
	PollSecondsMax     = 3600
)

// RequestState is the lifecycle of one invocation request
// (nvcf_request_state_t).
type RequestState int

// Request states.
const (
	StateQueued     RequestState = 0
	StateInProgress RequestState = 1
	StateFulfilled  RequestState = 2
	StateErrored    RequestState = 3
	StateTimedOut   RequestState = 4
	StateCanceled   RequestState = 5
)

// String returns the library's lower-case name ("in-progress").
func (s RequestState) String() string {
	return C.GoString(C.nvcf_request_state_name(C.nvcf_request_state_t(s)))
}

// NewRequestID returns a new random request id, a UUID of 36 characters.
func NewRequestID() (string, error) {
	var buf [37]C.char
	if err := call(func() C.nvcf_status {
		return C.nvcf_request_id_new(&buf[0])
	}); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// ValidID reports whether id is a well-formed request, function or
// version id.
func ValidID(id string) bool {
	cs, err := cString("id", id)
	if err != nil {
		return false
	}
	defer C.free(unsafe.Pointer(cs))
	return bool(C.nvcf_request_id_valid(cs))
}

// ParsePollSeconds parses the value of an NVCF-POLL-SECONDS header: a
// decimal integer from 0 (raised to 1) to PollSecondsMax. Anything else,
// the empty string included, yields an ErrInvalid *Error whose message
// names the value. Use PollSecondsFromHeader when the header may be
// absent.
func ParsePollSeconds(value string) (int, error) {
	cs, err := cString("NVCF-POLL-SECONDS", value)
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cs))
	var out C.int
	if err := call(func() C.nvcf_status {
		return C.nvcf_request_poll_seconds(cs, &out)
	}); err != nil {
		return 0, err
	}
	return int(out), nil
}

// PollSecondsFromHeader returns the poll window that h requests:
// PollSecondsDefault when it has no NVCF-POLL-SECONDS header, else the
// first value parsed by ParsePollSeconds.
func PollSecondsFromHeader(h http.Header) (int, error) {
	v := h.Values("NVCF-POLL-SECONDS")
	if len(v) == 0 {
		return PollSecondsDefault, nil
	}
	return ParsePollSeconds(v[0])
}

// ForwardHeader reports whether a caller's request header may be
// forwarded to a function. Authorization, hop-by-hop headers, Host,
// Content-Length, routing headers and the NVCF-* headers the worker sets
// are not. Names compare case-insensitively.
func ForwardHeader(name string) bool {
	cs, err := cString("header name", name)
	if err != nil {
		return false
	}
	defer C.free(unsafe.Pointer(cs))
	return bool(C.nvcf_request_header_forwardable(cs))
}

// ForwardableHeaders returns a copy of the headers of h that
// ForwardHeader accepts.
func ForwardableHeaders(h http.Header) http.Header {
	out := make(http.Header)
	for k, v := range h {
		if ForwardHeader(k) {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

// StatusHeader returns the NVCF-STATUS value of an HTTP status:
// "in-progress" for 202, "fulfilled" for the rest of 200 to 399, and
// "errored" otherwise.
func StatusHeader(httpStatus int) string {
	return C.GoString(C.nvcf_request_status_header(C.int(httpStatus)))
}

// ParseRequestState maps a state name ("fulfilled") back to its state;
// the second result is false for an unknown name.
func ParseRequestState(name string) (RequestState, bool) {
	for s := StateQueued; s <= StateCanceled; s++ {
		if strings.EqualFold(s.String(), name) {
			return s, true
		}
	}
	return 0, false
}
