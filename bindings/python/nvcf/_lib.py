# SPDX-License-Identifier: Apache-2.0
"""Finds libnvcf, loads it once, and declares every bound C function.

The library is loaded on first use rather than at import, so that a
script that only drives a LocalStack over HTTP still imports `nvcf` on a
machine where the shared library is somewhere unusual. Where it is looked
for, in order:

1. the path in the environment variable NVCF_LIBRARY;
2. the libdir that `pkg-config --variable=libdir libnvcf` reports;
3. NVCF_BUILD_DIR/libnvcf/libnvcf.so* (a meson build tree);
4. ctypes.util.find_library("nvcf").
"""
import ctypes
import ctypes.util
import glob
import importlib
import os
import subprocess
import threading

# The oldest library this binding was written against, and the first
# release it cannot use (a new major version breaks the ABI).
MIN_VERSION = (0, 1, 0)
MAX_MAJOR = 0


class LibraryNotFoundError(ImportError):
    """libnvcf could not be found or loaded; the message lists each try."""


class LibraryVersionError(ImportError):
    """The libnvcf that was loaded is older or newer than this binding."""


class nvcf_error(ctypes.Structure):
    """struct nvcf_error of nvcf/common.h (version 1)."""
    _fields_ = [
        ("version", ctypes.c_uint),
        ("status", ctypes.c_int),
        ("http_status", ctypes.c_int),
        ("jetstream_code", ctypes.c_int),
        ("message", ctypes.c_char_p),
    ]


class nvcf_bus_options(ctypes.Structure):
    """struct nvcf_bus_options of nvcf/bus.h (version 1)."""
    _fields_ = [
        ("version", ctypes.c_uint),
        ("url", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("region", ctypes.c_char_p),
        ("replicas", ctypes.c_int),
        ("connect_timeout_ms", ctypes.c_int64),
        ("max_reconnect", ctypes.c_int),
        ("results_max_age_ms", ctypes.c_int64),
        ("results_max_bytes", ctypes.c_int64),
        ("request_ack_wait_ms", ctypes.c_int64),
        ("max_msg_size", ctypes.c_int32),
    ]


NVCF_BUS_OPTIONS_VERSION = 1

# void (*)(nvcf_log_level_t, const char *, const char *, void *)
LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_char_p, ctypes.c_void_p)

_c = ctypes
_status = ctypes.c_int
_str = ctypes.c_char_p
_ptr = ctypes.c_void_p
_size = ctypes.c_size_t
_u64p = ctypes.POINTER(ctypes.c_uint64)

# (name, restype, argtypes). Memory the caller frees comes back as
# c_void_p, never c_char_p, because ctypes would copy the string and drop
# the pointer that nvcf_free() needs.
PROTOTYPES = [
    # core: nvcf/common.h, nvcf/version.h
    ("nvcf_version", _c.c_int, []),
    ("nvcf_version_string", _str, []),
    ("nvcf_status_name", _str, [_status]),
    ("nvcf_status_str", _str, [_status]),
    ("nvcf_error_last", _c.POINTER(nvcf_error), []),
    ("nvcf_error_clear", None, []),
    ("nvcf_log_set_handler", None, [_c.c_int, LOG_CB, _ptr]),
    ("nvcf_log_level_name", _str, [_c.c_int]),
    ("nvcf_free", None, [_ptr]),
    # request lifecycle: nvcf/request.h
    ("nvcf_request_state_name", _str, [_c.c_int]),
    ("nvcf_request_id_new", _status, [_c.c_char_p]),
    ("nvcf_request_id_valid", _c.c_bool, [_str]),
    ("nvcf_request_poll_seconds", _status, [_str, _c.POINTER(_c.c_int)]),
    ("nvcf_request_header_forwardable", _c.c_bool, [_str]),
    ("nvcf_request_status_header", _str, [_c.c_int]),
    # bus: nvcf/bus.h
    ("nvcf_bus_options_init", _status,
     [_c.POINTER(nvcf_bus_options), _c.c_uint]),
    ("nvcf_bus_new", _status,
     [_c.POINTER(_ptr), _c.POINTER(nvcf_bus_options)]),
    ("nvcf_bus_free", None, [_ptr]),
    ("nvcf_bus_region", _str, [_ptr]),
    ("nvcf_bus_ensure_control", _status, [_ptr]),
    ("nvcf_bus_ensure_queue", _status, [_ptr, _str, _c.c_int64]),
    ("nvcf_bus_delete_queue", _status, [_ptr, _str]),
    ("nvcf_bus_queue_depth", _status, [_ptr, _str, _u64p, _u64p]),
    ("nvcf_bus_ensure_cluster", _status, [_ptr, _str]),
    ("nvcf_bus_publish", _status, [_ptr, _str, _c.c_char_p, _size, _str]),
    ("nvcf_bus_kv_get", _status,
     [_ptr, _str, _str, _c.POINTER(_ptr), _c.POINTER(_size), _u64p]),
    ("nvcf_bus_kv_put", _status,
     [_ptr, _str, _str, _c.c_char_p, _size, _u64p]),
    ("nvcf_bus_kv_create", _status,
     [_ptr, _str, _str, _c.c_char_p, _size, _u64p]),
    ("nvcf_bus_kv_update", _status,
     [_ptr, _str, _str, _c.c_char_p, _size, _c.c_uint64, _u64p]),
    ("nvcf_bus_kv_delete", _status, [_ptr, _str, _str]),
    ("nvcf_bus_kv_keys", _status,
     [_ptr, _str, _str, _c.POINTER(_c.POINTER(_ptr)), _c.POINTER(_size)]),
    ("nvcf_strings_free", None, [_c.POINTER(_ptr), _size]),
]

# Modules that other files add prototypes for once their C side exists;
# each entry is (name, restype, argtypes). A module whose symbols are not
# all exported by the loaded library is reported as unavailable instead
# of failing the whole load.
OPTIONAL = {}

_lock = threading.Lock()
_loaded = None


def _candidates_in(directory):
    """Library files in @directory, the soname first."""
    names = ["libnvcf.so.0", "libnvcf.so"]
    found = [os.path.join(directory, n) for n in names
             if os.path.exists(os.path.join(directory, n))]
    for path in sorted(glob.glob(os.path.join(directory, "libnvcf.so*"))):
        if path not in found:
            found.append(path)
    return found


def _pkg_config_libdir():
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "libnvcf"],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def find_library():
    """Returns (path, tried): the library to load and what was looked at.

    Raises LibraryNotFoundError, naming every place it looked, when
    nothing is found.
    """
    tried = []
    explicit = os.environ.get("NVCF_LIBRARY")
    if explicit:
        if os.path.exists(explicit):
            return explicit, tried
        raise LibraryNotFoundError(
            "NVCF_LIBRARY is set to %r, which does not exist: point it at "
            "libnvcf.so (for example build/libnvcf/libnvcf.so) or unset "
            "it" % explicit)
    tried.append("NVCF_LIBRARY (not set)")
    libdir = _pkg_config_libdir()
    if libdir is None:
        tried.append("pkg-config --variable=libdir libnvcf (no libnvcf.pc)")
    else:
        found = _candidates_in(libdir)
        if found:
            return found[0], tried
        tried.append("pkg-config libdir %s (no libnvcf.so*)" % libdir)
    build = os.environ.get("NVCF_BUILD_DIR")
    if build:
        found = _candidates_in(os.path.join(build, "libnvcf"))
        if found:
            return found[0], tried
        tried.append("NVCF_BUILD_DIR %s/libnvcf (no libnvcf.so*)" % build)
    else:
        tried.append("NVCF_BUILD_DIR (not set)")
    name = ctypes.util.find_library("nvcf")
    if name:
        return name, tried
    tried.append('ctypes.util.find_library("nvcf") (nothing)')
    raise LibraryNotFoundError(
        "cannot find libnvcf; tried: %s. Build it (make build) and set "
        "NVCF_BUILD_DIR to the build directory, or set NVCF_LIBRARY to "
        "the path of libnvcf.so" % "; ".join(tried))


def _declare(lib, name, restype, argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def _version_tuple(number):
    return (number // 10000, number // 100 % 100, number % 100)


class Library:
    """The loaded libnvcf with its prototypes declared.

    Attributes are the C functions (lib.nvcf_version() ...); `path` is
    the file that was loaded and `version` its (major, minor, patch).
    """

    def __init__(self, path):
        try:
            self._cdll = ctypes.CDLL(path)
        except OSError as e:
            raise LibraryNotFoundError(
                "cannot load libnvcf from %s: %s" % (path, e)) from None
        self.path = path
        missing = []
        for name, restype, argtypes in PROTOTYPES:
            try:
                setattr(self, name, _declare(self._cdll, name, restype,
                                             argtypes))
            except AttributeError:
                missing.append(name)
        if missing:
            raise LibraryVersionError(
                "%s lacks %s: it is not a libnvcf this binding supports; "
                "rebuild it or point NVCF_LIBRARY at a current build" % (
                    path, ", ".join(missing)))
        self.version = _version_tuple(self.nvcf_version())
        if self.version < MIN_VERSION or self.version[0] > MAX_MAJOR:
            raise LibraryVersionError(
                "%s is libnvcf %d.%d.%d; this binding needs %d.%d.%d or a "
                "later %d.x release" % ((path,) + self.version +
                                        MIN_VERSION + (MAX_MAJOR,)))
        self._modules = {}

    def has(self, module):
        """True when every symbol of an optional module is exported."""
        if module not in self._modules:
            self._modules[module] = self._bind_optional(module)
        return self._modules[module]

    def _bind_optional(self, module):
        if module not in OPTIONAL and module.isidentifier():
            # The binding module declares its prototypes when imported.
            try:
                importlib.import_module("nvcf." + module)
            except ImportError:
                return False
        protos = OPTIONAL.get(module, [])
        if not protos:
            return False
        fns = {}
        for name, restype, argtypes in protos:
            try:
                fns[name] = _declare(self._cdll, name, restype, argtypes)
            except AttributeError:
                return False
        for name, fn in fns.items():
            setattr(self, name, fn)
        return True

    def require(self, module):
        """Raises NotImplementedError when @module is not in the library."""
        if not self.has(module):
            raise NotImplementedError(
                "%s does not export the %s module (nvcf/%s.h): rebuild "
                "libnvcf from a tree that has it" % (self.path, module,
                                                     module))


def lib():
    """Returns the loaded Library, loading it on the first call."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                path, _ = find_library()
                _loaded = Library(path)
    return _loaded


def load_library(path=None):
    """Loads libnvcf now (from @path when given) and returns it.

    Calling it again with no path returns the library already loaded.
    """
    global _loaded
    if path is None:
        return lib()
    with _lock:
        _loaded = Library(path)
    return _loaded
