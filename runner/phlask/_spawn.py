"""Start a process with libc's ``posix_spawn``, called through ctypes.

Why not ``os.posix_spawn``: it holds the GIL while the kernel runs the new child up to its
``exec`` (glibc uses a vfork-style clone, so the caller waits for that), which stalls every
other thread of the runner for a few hundred microseconds per task on a busy machine, and
it cannot set the child's working directory. A ctypes call releases the GIL for its
duration, and glibc (2.29 and later) has ``posix_spawn_file_actions_addchdir_np``.

:func:`spawn` returns the child's pid or raises OSError with the errno glibc reports
(including exec failures: ENOENT, EACCES, ENOEXEC). :data:`available` is False where libc
lacks any of these functions (then callers use ``subprocess``).
"""

from __future__ import annotations

import _signal
import ctypes
import os
import signal
from typing import Any

POSIX_SPAWN_SETSIGDEF = 0x04
POSIX_SPAWN_SETSIGMASK = 0x08
POSIX_SPAWN_SETSID = 0x80

_NEEDED = ("posix_spawn", "posix_spawn_file_actions_init", "posix_spawn_file_actions_destroy",
           "posix_spawn_file_actions_adddup2", "posix_spawn_file_actions_addopen",
           "posix_spawn_file_actions_addchdir_np", "posix_spawnattr_init", "posix_spawnattr_destroy",
           "posix_spawnattr_setflags", "posix_spawnattr_setsigdefault", "posix_spawnattr_setsigmask",
           "sigemptyset", "sigaddset")

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    available = all(hasattr(_libc, name) for name in _NEEDED)
except OSError:  # no dynamic libc (static Python)
    _libc = None
    available = False

# Opaque glibc structures, allocated generously (x86-64 glibc: 80, 336 and 128 bytes).
_FileActions = ctypes.c_char * 512
_Attr = ctypes.c_char * 1024
_SigSet = ctypes.c_char * 256

if available:
    _p = ctypes.c_void_p
    for _name, _args in {
        "posix_spawn": [ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, _p, _p, _p, _p],
        "posix_spawn_file_actions_init": [_p], "posix_spawn_file_actions_destroy": [_p],
        "posix_spawn_file_actions_adddup2": [_p, ctypes.c_int, ctypes.c_int],
        "posix_spawn_file_actions_addopen": [_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint],
        "posix_spawn_file_actions_addchdir_np": [_p, ctypes.c_char_p],
        "posix_spawnattr_init": [_p], "posix_spawnattr_destroy": [_p],
        "posix_spawnattr_setflags": [_p, ctypes.c_short],
        "posix_spawnattr_setsigdefault": [_p, _p], "posix_spawnattr_setsigmask": [_p, _p],
        "sigemptyset": [_p], "sigaddset": [_p, ctypes.c_int],
    }.items():
        _fn = getattr(_libc, _name)
        _fn.argtypes = _args
        _fn.restype = ctypes.c_int

# Signals a task must not inherit as ignored: Python ignores SIGPIPE and SIGXFSZ, and an
# ignored signal stays ignored across exec (handlers do not). Others are added when the
# runner ignores them too (for example SIGHUP under nohup).
_ALWAYS_DEFAULT = (signal.SIGPIPE, signal.SIGXFSZ)
_CANDIDATES = tuple(getattr(signal, n) for n in (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGTSTP",
    "SIGTTIN", "SIGTTOU") if hasattr(signal, n))


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise OSError(rc, f"{what}: {os.strerror(rc)}")


# The spawn attributes (flags, signals reset to default, empty mask) depend only on which
# of _CANDIDATES the runner ignores, so they are built once per such set and reused: glibc's
# posix_spawnattr_t is plain data that posix_spawn only reads (destroy frees nothing), so one
# may serve every call, from any thread. _signal.getsignal skips signal.getsignal's enum
# conversion; it returns the same handler objects (SIG_IGN is 1).
_attrs: dict[tuple[int, ...], Any] = {}
_getsignal = _signal.getsignal
_SIG_IGN = _signal.SIG_IGN


def _attr() -> Any:
    ignored = tuple(sig for sig in _CANDIDATES if _getsignal(sig) == _SIG_IGN)
    attr = _attrs.get(ignored)
    if attr is not None:
        return attr
    assert _libc is not None
    attr, sigdef, sigmask = _Attr(), _SigSet(), _SigSet()
    _check(_libc.posix_spawnattr_init(attr), "posix_spawnattr_init")
    _libc.sigemptyset(sigdef)
    for sig in _ALWAYS_DEFAULT + ignored:
        _libc.sigaddset(sigdef, sig)
    _libc.sigemptyset(sigmask)
    _check(_libc.posix_spawnattr_setsigdefault(attr, sigdef), "setsigdefault")
    _check(_libc.posix_spawnattr_setsigmask(attr, sigmask), "setsigmask")
    _check(_libc.posix_spawnattr_setflags(
        attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK), "setflags")
    _attrs[ignored] = attr  # two threads may both build one: either serves
    return attr


# File actions depend only on (cwd, stdin, stdout, stderr): a directory, which glibc
# copies, and descriptor numbers. A runner's pipes reuse the lowest free numbers and its
# file tasks share one working directory, so a few sets serve almost every spawn and are
# kept, never destroyed (posix_spawn only reads them, from any thread). Past _MAX_ACTIONS
# sets (per-task directories of inline code), a call builds and destroys its own.
_actions: dict[tuple[bytes | None, int | None, int, int], Any] = {}
_MAX_ACTIONS = 64


def _file_actions(cwd: bytes | None, stdin: int | None, stdout: int, stderr: int) -> Any:
    assert _libc is not None
    libc = _libc
    fa = _FileActions()
    _check(libc.posix_spawn_file_actions_init(fa), "posix_spawn_file_actions_init")
    try:
        if cwd is not None:
            _check(libc.posix_spawn_file_actions_addchdir_np(fa, cwd), "addchdir")
        if stdin is None:
            _check(libc.posix_spawn_file_actions_addopen(fa, 0, b"/dev/null", os.O_RDONLY, 0), "addopen")
        else:
            _check(libc.posix_spawn_file_actions_adddup2(fa, stdin, 0), "adddup2")
        _check(libc.posix_spawn_file_actions_adddup2(fa, stdout, 1), "adddup2")
        _check(libc.posix_spawn_file_actions_adddup2(fa, stderr, 2), "adddup2")
    except BaseException:
        libc.posix_spawn_file_actions_destroy(fa)
        raise
    return fa


def spawn(path: bytes, argv: list[bytes], envp: list[bytes], *, stdin: int | None, stdout: int, stderr: int,
          cwd: bytes | None = None) -> int:
    """Start ``path`` with ``argv`` and exactly the environment ``envp`` (``b"NAME=value"``
    items) in a new session, with ``stdin`` (None: /dev/null), ``stdout`` and ``stderr``
    as its descriptors 0-2, in ``cwd`` when given. Every other descriptor of this process
    must be close-on-exec. Returns the pid; raises OSError."""
    assert _libc is not None
    attr = _attr()
    key = (cwd, stdin, stdout, stderr)
    own = None  # file actions of this call alone, destroyed after it
    fa = _actions.get(key)
    if fa is None:
        fa = _file_actions(cwd, stdin, stdout, stderr)
        if len(_actions) >= _MAX_ACTIONS or _actions.setdefault(key, fa) is not fa:
            own = fa  # the cache is full, or another thread stored the same set first
    try:
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
        c_envp = (ctypes.c_char_p * (len(envp) + 1))(*envp, None)
        pid = ctypes.c_int(0)
        rc = _libc.posix_spawn(ctypes.byref(pid), path, fa, attr, c_argv, c_envp)  # GIL released here
        if rc != 0:
            raise OSError(rc, os.strerror(rc))
        return pid.value
    finally:
        if own is not None:
            _libc.posix_spawn_file_actions_destroy(own)
