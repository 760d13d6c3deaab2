# SPDX-License-Identifier: Apache-2.0
"""Version, status names, the error detail channel and the log handler."""
import atexit
import enum
import logging
import threading

from . import _lib
from .errors import _text


class LogLevel(enum.IntEnum):
    """nvcf_log_level_t, most severe first."""
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3
    TRACE = 4


def version():
    """The loaded library's version as (major, minor, patch)."""
    return _lib.lib().version


def version_string():
    """The loaded library's version as "X.Y.Z"."""
    return _text(_lib.lib().nvcf_version_string())


def status_name(status):
    """Returns the constant's name of an nvcf_status ("NVCF_ENOTFOUND")."""
    return _text(_lib.lib().nvcf_status_name(int(status)))


def status_str(status):
    """Returns a short description of an nvcf_status."""
    return _text(_lib.lib().nvcf_status_str(int(status)))


def log_level_name(level):
    """Returns the library's name of a log level ("error", ...)."""
    return _text(_lib.lib().nvcf_log_level_name(int(level)))


class ErrorDetail:
    """A copy of struct nvcf_error: status, name, message, http_status and
    jetstream_code of the last failure on the calling thread."""

    def __init__(self, status, name, message, http_status, jetstream_code):
        self.status = status
        self.name = name
        self.message = message
        self.http_status = http_status
        self.jetstream_code = jetstream_code

    def __repr__(self):
        return "ErrorDetail(%s, %r)" % (self.name, self.message)


def error_last():
    """Returns the error detail of the last libnvcf call that failed on
    this thread, copied so that it stays valid after later calls."""
    lib = _lib.lib()
    e = lib.nvcf_error_last().contents
    return ErrorDetail(e.status, status_name(e.status), _text(e.message),
                       e.http_status, e.jetstream_code)


def error_clear():
    """Resets this thread's error detail to NVCF_OK."""
    _lib.lib().nvcf_error_clear()


# The C side keeps a bare function pointer, so every trampoline that was
# ever installed stays referenced: a library thread may still be inside
# an old one while a new handler is being set.
_handler_lock = threading.Lock()
_trampolines = []
_current = None


def set_log_handler(handler, level=LogLevel.INFO):
    """Installs @handler(level, subsystem, message) for library logs.

    @level is the most verbose LogLevel that reaches the handler; records
    above it are never formatted. The handler runs on library threads,
    several at once, and must be thread-safe. An exception it raises is
    reported through sys.unraisablehook and does not reach the library.
    None removes the handler. Returns the handler that was replaced.
    """
    global _current
    lib = _lib.lib()
    with _handler_lock:
        previous = _current
        if handler is None:
            lib.nvcf_log_set_handler(int(LogLevel.ERROR),
                                     _lib.LOG_CB(), None)
            _current = None
            return previous

        def trampoline(c_level, subsystem, message, _userdata):
            try:
                lvl = LogLevel(c_level)
            except ValueError:
                lvl = c_level
            handler(lvl, _text(subsystem), _text(message))

        cb = _lib.LOG_CB(trampoline)
        _trampolines.append(cb)
        lib.nvcf_log_set_handler(int(level), cb, None)
        _current = handler
        return previous


def log_handler():
    """The handler installed with set_log_handler(), or None."""
    return _current


_PY_LEVELS = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.TRACE: 5,
}


def log_to_logging(logger="nvcf", level=LogLevel.INFO):
    """Sends library logs to the `logging` module, one child logger per
    subsystem ("nvcf.bus", ...). Returns the handler it installed."""
    base = logging.getLogger(logger) if isinstance(logger, str) else logger

    def handler(lvl, subsystem, message):
        base.getChild(subsystem or "core").log(
            _PY_LEVELS.get(lvl, logging.DEBUG), "%s", message)

    set_log_handler(handler, level)
    return handler


@atexit.register
def _remove_handler_at_exit():
    # Library threads that outlive the interpreter must not call into it.
    if _current is not None and _lib._loaded is not None:
        _lib._loaded.nvcf_log_set_handler(int(LogLevel.ERROR),
                                          _lib.LOG_CB(), None)
