# SPDX-License-Identifier: Apache-2.0
"""Python binding of libnvcf (ctypes) and clients of a local NVCF stack.

The C library is found and loaded on first use (see nvcf._lib for where
it looks); LocalStack and the HTTP clients work without it.
"""
from ._lib import (LibraryNotFoundError, LibraryVersionError,
                   find_library, load_library)
from . import crd, routing, scaling
from .bus import Bus
from .client import ApiClient, GatewayClient, Response
from .core import (LogLevel, error_clear, error_last, log_handler,
                   log_level_name, log_to_logging, set_log_handler,
                   status_name, status_str, version, version_string)
from .errors import (AlreadyExists, Canceled, Conflict, InvalidArgument,
                     IOFailure, NotFound, NvcfError, NvcfHttpError,
                     OutOfMemory, PermissionDenied, ProtocolError,
                     QuotaExceeded, StoppedByCallback, Timeout,
                     Unauthenticated, Unavailable, check)
from .local import LocalStack, LocalStackError
from .request import (RequestState, forwardable_headers, header_forwardable,
                      is_valid_id, new_request_id, poll_seconds,
                      state_name, status_header)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists", "ApiClient", "Bus", "Canceled", "Conflict",
    "GatewayClient", "IOFailure", "InvalidArgument", "LibraryNotFoundError",
    "LibraryVersionError", "LocalStack", "LocalStackError", "LogLevel",
    "NotFound", "NvcfError", "NvcfHttpError", "OutOfMemory",
    "PermissionDenied", "ProtocolError", "QuotaExceeded", "RequestState",
    "Response", "StoppedByCallback", "Timeout", "Unauthenticated",
    "Unavailable", "check", "error_clear", "error_last", "find_library",
    "forwardable_headers", "header_forwardable", "is_valid_id",
    "load_library", "log_handler", "log_level_name", "log_to_logging",
    "new_request_id", "poll_seconds", "set_log_handler", "state_name",
    "status_header", "status_name", "status_str", "version",
    "version_string",
]
