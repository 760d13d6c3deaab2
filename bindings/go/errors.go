// SPDX-License-Identifier: Apache-2.0

package nvcf

// #include <stdlib.h>
// #include <nvcf/common.h>
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// Status is an nvcf_status: 0 is success, negative values are errors. The
// numbers are frozen by the library's ABI.
type Status int

// The values of nvcf_status (nvcf/common.h).
const (
	StatusOK              Status = 0
	StatusError           Status = -1
	StatusInvalid         Status = -2
	StatusNoMemory        Status = -3
	StatusNotFound        Status = -4
	StatusExists          Status = -5
	StatusConflict        Status = -6
	StatusTimedOut        Status = -7
	StatusUnavailable     Status = -8
	StatusQuota           Status = -9
	StatusPermission      Status = -10
	StatusUnauthenticated Status = -11
	StatusIO              Status = -12
	StatusUser            Status = -13
	StatusCanceled        Status = -14
	StatusProto           Status = -15
)

// String returns the constant's name as the library spells it
// ("NVCF_ENOTFOUND"), or "NVCF_UNKNOWN".
func (s Status) String() string {
	return C.GoString(C.nvcf_status_name(C.nvcf_status(s)))
}

// Description returns the library's short description of s ("not found").
func (s Status) Description() string {
	return C.GoString(C.nvcf_status_str(C.nvcf_status(s)))
}

// Error is a failed libnvcf call: the status it returned, the status's
// constant name, and the one-line message the library left for the thread
// that made the call. HTTPStatus and JetStreamCode are 0 unless an HTTP
// exchange or a JetStream API call was involved.
type Error struct {
	Status        Status
	Name          string
	Message       string
	HTTPStatus    int
	JetStreamCode int
}

func (e *Error) Error() string {
	return "nvcf: " + e.Name + ": " + e.Message
}

// Is reports whether target is an *Error with the same Status, so that
// errors.Is(err, nvcf.ErrNotFound) matches every not-found failure
// whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Status == e.Status
}

func sentinel(s Status, name, text string) *Error {
	return &Error{Status: s, Name: name, Message: text}
}

// Values to match with errors.Is, one per error status. Their messages are
// the library's descriptions; a returned error carries the call's own.
var (
	ErrGeneric         = sentinel(StatusError, "NVCF_ERROR", "generic error")
	ErrInvalid         = sentinel(StatusInvalid, "NVCF_EINVAL", "invalid argument")
	ErrNoMemory        = sentinel(StatusNoMemory, "NVCF_ENOMEM", "out of memory")
	ErrNotFound        = sentinel(StatusNotFound, "NVCF_ENOTFOUND", "not found")
	ErrExists          = sentinel(StatusExists, "NVCF_EEXISTS", "already exists")
	ErrConflict        = sentinel(StatusConflict, "NVCF_ECONFLICT", "conflicting update of a stale revision")
	ErrTimeout         = sentinel(StatusTimedOut, "NVCF_ETIMEDOUT", "timed out")
	ErrUnavailable     = sentinel(StatusUnavailable, "NVCF_EUNAVAILABLE", "service unavailable")
	ErrQuota           = sentinel(StatusQuota, "NVCF_EQUOTA", "limit reached")
	ErrPermission      = sentinel(StatusPermission, "NVCF_EPERM", "permission denied")
	ErrUnauthenticated = sentinel(StatusUnauthenticated, "NVCF_EUNAUTHENTICATED", "missing or invalid credentials")
	ErrIO              = sentinel(StatusIO, "NVCF_EIO", "input or output error")
	ErrUser            = sentinel(StatusUser, "NVCF_EUSER", "stopped by a user callback")
	ErrCanceled        = sentinel(StatusCanceled, "NVCF_ECANCELED", "canceled")
	ErrProto           = sentinel(StatusProto, "NVCF_EPROTO", "malformed message")
)

// Sentinels lists the values above in status order (-1 down to -15).
var Sentinels = []*Error{
	ErrGeneric, ErrInvalid, ErrNoMemory, ErrNotFound, ErrExists,
	ErrConflict, ErrTimeout, ErrUnavailable, ErrQuota, ErrPermission,
	ErrUnauthenticated, ErrIO, ErrUser, ErrCanceled, ErrProto,
}

// ErrClosed is returned by a method of a handle after its Close.
var ErrClosed = errors.New("nvcf: the handle is closed; create a new one")

// call runs one C call and turns a negative status into an *Error.
//
// The library keeps the error detail per thread, and a goroutine may move
// to another thread between two cgo calls, so the thread stays locked
// from the call until the detail is copied.
func call(f func() C.nvcf_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := f()
	if st >= 0 {
		return nil
	}
	return lastError(st)
}

// lastError builds the *Error of status st from this thread's detail. The
// caller holds the thread locked since the failing call.
func lastError(st C.nvcf_status) *Error {
	s := Status(st)
	e := &Error{Status: s, Name: s.String()}
	d := C.nvcf_error_last()
	// The detail belongs to the last failure on this thread; unless the
	// statuses agree it is an older one, and the description is used.
	if d != nil && d.status == st && d.message != nil {
		e.Message = C.GoString(d.message)
		e.HTTPStatus = int(d.http_status)
		e.JetStreamCode = int(d.jetstream_code)
	} else {
		e.Message = s.Description()
	}
	return e
}

// invalid builds an ErrInvalid-matching error for a value the binding
// rejects before calling the library.
func invalid(format string, args ...any) *Error {
	return &Error{Status: StatusInvalid, Name: "NVCF_EINVAL",
		Message: fmt.Sprintf(format, args...)}
}

// cString copies s for C. A NUL byte would silently cut the string short,
// so it is refused; the caller frees the result with C.free.
func cString(what, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalid("%s %q contains a NUL byte: remove it", what, s)
	}
	return C.CString(s), nil
}
