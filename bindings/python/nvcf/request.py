# SPDX-License-Identifier: Apache-2.0
"""Invocation request rules (nvcf/request.h): ids, poll window, headers.

The same pure functions the reference gateway and worker apply, so a
Python client or proxy follows exactly their rules.
"""
import ctypes
import enum

from . import _lib
from .errors import _text, check

POLL_SECONDS_DEFAULT = 60
POLL_SECONDS_MAX = 3600


class RequestState(enum.IntEnum):
    """nvcf_request_state_t: the lifecycle of one invocation request."""
    QUEUED = 0
    IN_PROGRESS = 1
    FULFILLED = 2
    ERRORED = 3
    TIMED_OUT = 4
    CANCELED = 5

    @property
    def label(self):
        """The library's lower-case name ("in-progress", ...)."""
        return state_name(self)


def state_name(state):
    """Returns the lower-case name of a RequestState (or its value)."""
    return _text(_lib.lib().nvcf_request_state_name(int(state)))


def new_request_id():
    """Returns a new random request id (a UUID of 36 characters)."""
    buf = ctypes.create_string_buffer(37)
    check(_lib.lib().nvcf_request_id_new(buf))
    return buf.value.decode("ascii")


def _encode(value, what):
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError("%s must be str or bytes, not %s" % (
            what, type(value).__name__))
    return value.encode("utf-8")


def is_valid_id(value):
    """True when @value is a well-formed request, function or version id.

    None and values that are not text are simply not valid ids.
    """
    if not isinstance(value, (str, bytes)):
        return False
    return bool(_lib.lib().nvcf_request_id_valid(_encode(value, "id")))


def poll_seconds(value=None):
    """Parses an NVCF-POLL-SECONDS header value into seconds (1 to 3600).

    None gives the default of 60 and 0 is raised to 1. Raises
    InvalidArgument, with the library's message naming the value, for
    anything else that is not a decimal integer in range. An int is
    accepted and checked like its decimal text.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    raw = None if value is None else _encode(value, "poll seconds")
    out = ctypes.c_int(0)
    check(_lib.lib().nvcf_request_poll_seconds(raw, ctypes.byref(out)))
    return out.value


def header_forwardable(name):
    """True when a caller's request header named @name may reach the
    function (not Authorization, hop-by-hop, Host, routing or NVCF-*)."""
    return bool(_lib.lib().nvcf_request_header_forwardable(
        _encode(name, "header name")))


def forwardable_headers(headers):
    """The subset of a header mapping (or (name, value) pairs) that the
    gateway forwards to a function, as a dict."""
    items = headers.items() if hasattr(headers, "items") else headers
    return {k: v for k, v in items if header_forwardable(k)}


def status_header(http_status):
    """Returns the NVCF-STATUS value of an HTTP status ("fulfilled")."""
    return _text(_lib.lib().nvcf_request_status_header(int(http_status)))
