"""``grade --user USER``, engine side: the engine process gives up root before a submission is imported.

``drop()`` runs after the interpreter and the harness are loaded and before any
submission code: it pre-imports the standard-library modules that submissions
commonly use (the interpreter may live in a folder the user cannot read, such as
``/root/.pyenv``), forbids regaining privileges (``PR_SET_NO_NEW_PRIVS``), keeps
the process non-dumpable (no other process of that user may ptrace it), then
drops the supplementary groups, the group and the user, in that order, and
checks that root cannot be taken back.  The grader picks the user and sends it in the
hello: ``--user`` (resolved by ``harness.sandbox.privileges``), or a private uid per
engine-process slot (``harness.sandbox.uids``).
"""

from __future__ import annotations

import importlib
import os
import sys

#: Imported before the drop, when the interpreter's folder may not be readable afterwards (~6 ms).
PRELOAD = ("math", "cmath", "random", "operator", "functools", "itertools", "collections", "numbers",
           "typing", "dataclasses", "enum", "ctypes", "struct", "copy", "weakref", "heapq", "bisect",
           "array", "decimal", "fractions", "statistics", "abc", "contextlib", "traceback", "linecache",
           "tokenize", "inspect", "pkgutil", "string", "re", "json", "time", "warnings", "types",
           "importlib.util", "importlib.machinery",
           # ...and what the harness imports only on first use (a submission's hooks, blame's locate):
           "pluggy", "harness.hookspecs", "harness.protocols", "difflib")
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38


class DropFailed(Exception):
    """The engine process could not become the requested user: grading must not go on as root."""


def drop(run_as: dict) -> None:
    """Become ``run_as`` (the hello's ``user``) for good; DropFailed if that did not stick.

    ``run_as["preload"]`` false skips PRELOAD: in a bwrap sandbox the interpreter stays readable.
    """
    for name in PRELOAD if run_as.get("preload", True) else ():
        try:
            importlib.import_module(name)
        except ImportError:  # e.g. ctypes on a minimal interpreter
            pass
    uid, gid = int(run_as["uid"]), int(run_as["gid"])
    if sys.platform.startswith("linux"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid binary, file capability or exec can give root back
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as e:
        raise DropFailed(f"could not switch to user {run_as.get('name')} (uid {uid}): {e}") from None
    if sys.platform.startswith("linux"):
        _prctl(PR_SET_DUMPABLE, 0)  # the kernel resets it on setuid; make sure: no ptrace by that user
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise DropFailed("the engine process could take back root after dropping it")
    if (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) != (uid, uid, gid, gid) or os.getgroups() not in (
            [], [gid]):
        raise DropFailed(f"the engine process is still uid {os.geteuid()} gid {os.getegid()} after the drop")
    os.environ["HOME"] = os.getcwd()  # the engine's fresh temporary folder, which that user owns
    os.environ["USER"] = os.environ["LOGNAME"] = str(run_as.get("name", uid))


def _prctl(option: int, value: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    zero = ctypes.c_ulong(0)
    if libc.prctl(option, ctypes.c_ulong(value), zero, zero, zero) != 0:
        raise DropFailed(f"prctl({option}) failed: {os.strerror(ctypes.get_errno())}")


def unreadable(path: str) -> str:
    """The first of ``path``, its parent folders and (for a folder) its files that this process cannot read;
    '' when all are readable or one is missing (the loader says so)."""
    p = os.path.abspath(path)
    parts = p.split(os.sep)
    for i in range(2, len(parts)):
        folder = os.sep.join(parts[:i]) or os.sep
        if not os.path.lexists(folder):  # its parent is searchable: it is missing, not unreadable
            return ""
        if not os.access(folder, os.X_OK):
            return folder
    if not os.path.lexists(p):
        return ""
    if not os.access(p, os.R_OK | (os.X_OK if os.path.isdir(p) else 0)):
        return p
    if os.path.isdir(p):
        for root, dirs, files in os.walk(p):
            for d in dirs:
                if not d.startswith(".") and not os.access(os.path.join(root, d), os.R_OK | os.X_OK):
                    return os.path.join(root, d)
            for f in files:
                if f.endswith(".py") and not os.access(os.path.join(root, f), os.R_OK):
                    return os.path.join(root, f)
    return ""
