# SPDX-License-Identifier: Apache-2.0
"""Exceptions: one per family of nvcf_status, and one for HTTP problems.

Every C call that returns an nvcf_status goes through check(), which
raises the subclass that matches the status with the message the library
left in nvcf_error_last() on this thread.
"""
import json

from . import _lib

# nvcf_status values (nvcf/common.h). The numbers are frozen by the ABI.
OK = 0
ERROR = -1
EINVAL = -2
ENOMEM = -3
ENOTFOUND = -4
EEXISTS = -5
ECONFLICT = -6
ETIMEDOUT = -7
EUNAVAILABLE = -8
EQUOTA = -9
EPERM = -10
EUNAUTHENTICATED = -11
EIO = -12
EUSER = -13
ECANCELED = -14
EPROTO = -15


class NvcfError(Exception):
    """A libnvcf call failed.

    Attributes: status (the nvcf_status, a negative int), name
    ("NVCF_EINVAL"), message (the library's one-line explanation),
    http_status and jetstream_code (0 when none was involved).
    """

    def __init__(self, status, name, message, http_status=0,
                 jetstream_code=0):
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.http_status = http_status
        self.jetstream_code = jetstream_code

    def __str__(self):
        return "%s: %s" % (self.name, self.message)

    def __reduce__(self):
        return (self.__class__, (self.status, self.name, self.message,
                                 self.http_status, self.jetstream_code))


class InvalidArgument(NvcfError, ValueError):
    """NVCF_EINVAL: a value was rejected; the message names it."""


class OutOfMemory(NvcfError):
    """NVCF_ENOMEM."""


class NotFound(NvcfError, LookupError):
    """NVCF_ENOTFOUND: a key, stream or record does not exist."""


class AlreadyExists(NvcfError):
    """NVCF_EEXISTS."""


class Conflict(NvcfError):
    """NVCF_ECONFLICT: a stale revision; read again and retry."""


class Timeout(NvcfError, TimeoutError):
    """NVCF_ETIMEDOUT."""


class Unavailable(NvcfError, ConnectionError):
    """NVCF_EUNAVAILABLE: NATS or another service is not reachable."""


class QuotaExceeded(NvcfError):
    """NVCF_EQUOTA: a queue or limit is full."""


class PermissionDenied(NvcfError, PermissionError):
    """NVCF_EPERM."""


class Unauthenticated(NvcfError):
    """NVCF_EUNAUTHENTICATED: missing or invalid credentials."""


class IOFailure(NvcfError):
    """NVCF_EIO."""


class StoppedByCallback(NvcfError):
    """NVCF_EUSER: a callback asked the library to stop."""


class Canceled(NvcfError):
    """NVCF_ECANCELED."""


class ProtocolError(NvcfError):
    """NVCF_EPROTO: a message could not be decoded."""


_BY_STATUS = {
    EINVAL: InvalidArgument,
    ENOMEM: OutOfMemory,
    ENOTFOUND: NotFound,
    EEXISTS: AlreadyExists,
    ECONFLICT: Conflict,
    ETIMEDOUT: Timeout,
    EUNAVAILABLE: Unavailable,
    EQUOTA: QuotaExceeded,
    EPERM: PermissionDenied,
    EUNAUTHENTICATED: Unauthenticated,
    EIO: IOFailure,
    EUSER: StoppedByCallback,
    ECANCELED: Canceled,
    EPROTO: ProtocolError,
}


def exception_class(status):
    """Returns the exception class raised for an nvcf_status."""
    return _BY_STATUS.get(status, NvcfError)


def _text(b):
    return b.decode("utf-8", "replace") if b is not None else ""


def error_from_status(status):
    """Builds (does not raise) the exception for a failed call's status.

    Must run on the thread that made the call, before any other libnvcf
    call, because the detail it reads is per thread.
    """
    lib = _lib.lib()
    name = _text(lib.nvcf_status_name(status))
    detail = lib.nvcf_error_last().contents
    http_status = jetstream_code = 0
    # The detail belongs to the last failure on this thread, which may be
    # an earlier call. Unless the statuses agree, the generic description
    # is used instead.
    if detail.status == status and detail.message:
        message = _text(detail.message)
        http_status = detail.http_status
        jetstream_code = detail.jetstream_code
    else:
        message = _text(lib.nvcf_status_str(status))
    return exception_class(status)(status, name, message, http_status,
                                   jetstream_code)


def check(status):
    """Returns @status when it is not an error; raises NvcfError if so."""
    if status < 0:
        raise error_from_status(status)
    return status


class NvcfHttpError(NvcfError):
    """Error status (400 or above) from the REST API or the gateway.

    status and http_status are the HTTP status code; name is "HTTP_404";
    message is the problem's detail (or its title). The RFC 7807 fields
    are type, title, detail and instance; problem is the whole decoded
    body (None when it was not JSON) and response the Response itself.
    """

    def __init__(self, response, method=None, url=None):
        problem = None
        try:
            problem = json.loads(response.body.decode("utf-8"))
            if not isinstance(problem, dict):
                problem = None
        except ValueError:
            pass
        problem_ = problem or {}
        self.type = problem_.get("type")
        self.title = problem_.get("title")
        self.detail = problem_.get("detail")
        self.instance = problem_.get("instance")
        self.problem = problem
        self.response = response
        self.method = method
        self.url = url
        message = (self.detail or self.title or
                   response.body[:200].decode("utf-8", "replace") or
                   "HTTP %d" % response.status)
        super().__init__(response.status, "HTTP_%d" % response.status,
                         message, http_status=response.status)

    def __str__(self):
        where = ""
        if self.method and self.url:
            where = " (%s %s)" % (self.method, self.url)
        return "HTTP %d%s: %s" % (self.status, where, self.message)

    def __reduce__(self):
        return (self.__class__, (self.response, self.method, self.url))
