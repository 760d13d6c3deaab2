// SPDX-License-Identifier: Apache-2.0

package nvcf

/*
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <nvcf/common.h>
#include <nvcf/version.h>

void nvcfgo_log_trampoline(nvcf_log_level_t level, const char *subsystem,
			   const char *message, void *userdata);

static void nvcfgo_log_install(int max_level, int on)
{
	nvcf_log_set_handler((nvcf_log_level_t)max_level,
			     on ? nvcfgo_log_trampoline : NULL, NULL);
}

// Path of the shared object that defines nvcf_version, or NULL.
static const char *nvcfgo_library_path(void)
{
	Dl_info info;

	if (dladdr((void *)nvcf_version, &info) == 0)
		return NULL;
	return info.dli_fname;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// The library versions this binding works with: MinVersion or later,
// within the same major version (a new major version breaks the ABI).
const (
	MinVersion = "0.1.0"
	minNumber  = 100
	maxMajor   = 0
)

// Version returns the version of the libnvcf that is loaded ("0.1.0").
func Version() string {
	return C.GoString(C.nvcf_version_string())
}

// VersionNumber returns the loaded version as major*10000 + minor*100 +
// patch.
func VersionNumber() int {
	return int(C.nvcf_version())
}

// CheckVersion returns an error when the loaded library is older than
// MinVersion or of a later major version than this binding supports.
func CheckVersion() error {
	n := VersionNumber()
	if n < minNumber || n/10000 > maxMajor {
		return fmt.Errorf("nvcf: loaded libnvcf %s (%s) is not "+
			"supported: this binding needs %s or a later %d.x "+
			"release", Version(), LibraryPath(), MinVersion, maxMajor)
	}
	return nil
}

// LibraryPath returns the file the dynamic loader loaded libnvcf from, or
// "" when it cannot tell.
func LibraryPath() string {
	p := C.nvcfgo_library_path()
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// LogLevel is an nvcf_log_level_t; lower values are more severe.
type LogLevel int

// Log levels, most severe first.
const (
	LogError LogLevel = 0
	LogWarn  LogLevel = 1
	LogInfo  LogLevel = 2
	LogDebug LogLevel = 3
	LogTrace LogLevel = 4
)

// String returns the library's name of the level ("error", "warn", ...).
func (l LogLevel) String() string {
	return C.GoString(C.nvcf_log_level_name(C.nvcf_log_level_t(l)))
}

// LogHandler receives one library log record. It runs on library
// threads, possibly several at once, and must be safe for that.
type LogHandler func(level LogLevel, subsystem, message string)

var (
	logMu      sync.Mutex
	logHandler LogHandler
	// logFn is what the trampoline reads: set before the C side gets
	// the trampoline and cleared after the C side drops it, so that the
	// trampoline never waits for logMu on a library thread.
	logFn atomic.Pointer[LogHandler]
)

// SetLogHandler installs h for every record up to LogInfo; see
// SetLogHandlerLevel.
func SetLogHandler(h LogHandler) LogHandler {
	return SetLogHandlerLevel(h, LogInfo)
}

// SetLogHandlerLevel installs h as the process-wide receiver of library
// log records up to max (records above it are not even formatted) and
// returns the handler it replaces. A nil h removes the handler. A panic
// in h is recovered and the record dropped, so that it cannot unwind
// through C frames.
func SetLogHandlerLevel(h LogHandler, max LogLevel) LogHandler {
	logMu.Lock()
	defer logMu.Unlock()
	prev := logHandler
	logHandler = h
	if h == nil {
		C.nvcfgo_log_install(C.int(LogError), 0)
		logFn.Store(nil)
		return prev
	}
	logFn.Store(&h)
	C.nvcfgo_log_install(C.int(max), 1)
	return prev
}

// CurrentLogHandler returns the handler SetLogHandler installed, or nil.
func CurrentLogHandler() LogHandler {
	logMu.Lock()
	defer logMu.Unlock()
	return logHandler
}

func deliverLog(level C.int, subsystem, message *C.char) {
	h := logFn.Load()
	if h == nil {
		return
	}
	defer func() {
		_ = recover()
	}()
	(*h)(LogLevel(level), C.GoString(subsystem),
		C.GoString(message))
}
