"""The bubblewrap command line of one engine process (grader side): what its sandbox shows, and nothing else.

Every engine process, each submission's and (in a sandbox of its own) the
trusted reference engine's, runs as ``bwrap ARGS -- python -P -m
harness.engine_side.worker IN_FD OUT_FD``.  bwrap keeps the two inherited pipe
fds.  The sandbox has new pid, ipc, uts and network namespaces, dies with the
grader, starts a new session, and has a read-only mount namespace that holds:

- the system's ``/usr`` (with the ``/bin``, ``/lib``... links), the dynamic
  linker's cache and the time zone;
- the interpreter's prefixes (venv and base), read-only, with the harness
  package and ``reference_engine`` masked wherever they lie inside them;
- the engine-side harness code: ``harness/__init__.py`` and the few modules the
  engine process imports (``ENGINE_SIDE``), and ``harness/engine_side/``;
- the submission, read-only: a folder as it is; a file with the ``.py`` files
  and the folders of ``.py`` files beside it (never another graded submission);
- a private writable working folder and ``/tmp``, both size-capped tmpfs;
- a minimal ``/dev`` and the ``/proc`` of its own pid namespace.

The reference engine's sandbox holds the whole ``harness`` and
``reference_engine`` packages and the ``PYTHONPATH`` folders (course plugins
may add ops it computes) instead of a submission.  Case files, reports, other
submissions, the grader's working folder and its home are simply absent.

As root, bwrap keeps only CAP_SETUID and CAP_SETGID, which the engine process
uses to become its private uid before any submission code runs
(``harness.engine_side.privileges``).  As another user, bwrap runs in a new user
namespace and the engine keeps that user's uid.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

#: The harness modules an engine process imports, besides ``harness/engine_side/``.
ENGINE_SIDE = ("__init__.py", "wire.py", "ops.py", "hookspecs.py")
#: Files of the system that the interpreter needs (each bound only if it exists).
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
#: At most this many files and packages beside a single-file submission are bound with it.
MAX_SIBLINGS = 200
NAMESPACES = ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net")


@dataclass(frozen=True)
class View:
    """What one engine process's sandbox shows."""

    harness_root: str            # the folder holding the ``harness`` package the grader runs
    workdir: str                 # the engine's working folder and HOME (a fresh tmpfs at that path)
    spec: str = ""               # the submission: a path, or a module or installed-engine name
    trusted: bool = False        # the reference engine: the whole harness and reference_engine
    hide: tuple = ()             # other graded submissions: never bound, even beside ``spec``
    python_path: tuple = ()      # PYTHONPATH folders besides harness_root
    as_root: bool = False        # grade runs as root: keep CAP_SETUID/SETGID for the drop
    tmp_mb: int = 64             # size of /tmp and of the working folder


@dataclass(frozen=True)
class Host:
    """Where the interpreter and the packages to mask live on this machine."""

    python_roots: tuple          # prefixes (and the executable's folder) to bind read-only
    masked: tuple                # package folders inside them that an untrusted engine must not see
    merged_usr: tuple            # (link, target) for /bin, /lib... when they are symlinks into /usr


def command(view: View, argv: list[str], host: Host | None = None, executable: str = "bwrap") -> list[str]:
    """The full bwrap command line that runs ``argv`` inside ``view``."""
    host = host or this_host()
    args = [executable, *NAMESPACES, "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if view.as_root:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user"]
    args += ["--ro-bind", "/usr", "/usr"]
    for link, target in host.merged_usr:
        args += ["--symlink", target, link]
    for path in ("/bin", "/lib", "/lib64", "/sbin"):
        if path not in dict(host.merged_usr):
            args += ["--ro-bind-try", path, path]
    for path in SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    size = str(max(1, view.tmp_mb) << 20)
    args += ["--perms", "1777", "--size", size, "--tmpfs", "/tmp"]
    roots = [r for r in host.python_roots if not _inside(r, ["/usr"])]
    for root in _outermost(roots):
        args += ["--ro-bind", root, root]
    package = os.path.join(view.harness_root, "harness")
    if view.trusted:
        args += _trusted(view, host, package)
    else:
        args += _untrusted(view, host, package, roots)
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "0777", "--size", size, "--tmpfs", view.workdir]
    args += ["--remount-ro", "/", "--chdir", view.workdir, "--setenv", "HOME", view.workdir,
             "--setenv", "TMPDIR", "/tmp", "--"]
    return _with_parents(args) + list(argv)


_MOUNTS = {"--ro-bind": 2, "--ro-bind-try": 2, "--bind": 2, "--tmpfs": 1}
_SKIP = {"--hostname": 1, "--cap-drop": 1, "--cap-add": 1, "--symlink": 2, "--remount-ro": 1, "--proc": 1,
         "--dev": 1, "--perms": 1, "--size": 1, "--chdir": 1, "--setenv": 2, "--dir": 1}


def _with_parents(args: list[str]) -> list[str]:
    """``args`` with a 0755 ``--dir`` before each mount for every folder above it that bwrap would otherwise
    create 0700 (as root), so an engine process that gave up root can still reach what is bound."""
    out, pending, i = args[:1], [], 1
    binds: list[str] = []
    made = {"/"}
    while i < len(args):
        op = args[i]
        width = _MOUNTS.get(op, _SKIP.get(op, 0))
        if op in ("--perms", "--size"):  # they belong to the next op: keep them next to it
            pending += args[i:i + 2]
            i += 2
            continue
        if op in _MOUNTS:
            dest = args[i + width]
            ancestors, parent = [], os.path.dirname(dest)
            while parent not in made and not _inside(parent, binds):
                ancestors.append(parent)
                parent = os.path.dirname(parent)
            for folder in reversed(ancestors):
                out += ["--perms", "0755", "--dir", folder]
                made.add(folder)
            if op == "--tmpfs":
                made.add(dest)
            else:
                binds.append(dest)
        out += pending + args[i:i + width + 1]
        pending = []
        i += width + 1
    return out


def _trusted(view: View, host: Host, package: str) -> list[str]:
    """The reference engine: its package, the whole harness and the PYTHONPATH folders."""
    args = ["--ro-bind", package, package]
    ref = os.path.join(view.harness_root, "reference_engine")
    if os.path.isdir(ref):
        args += ["--ro-bind", ref, ref]
    for folder in view.python_path:
        args += ["--ro-bind-try", folder, folder]
    return args


def _untrusted(view: View, host: Host, package: str, roots: list[str]) -> list[str]:
    """A submission: the engine-side harness files and the submission, with everything else masked."""
    args: list[str] = []
    for folder in host.masked:
        if _inside(folder, roots) or _inside(folder, ["/usr"]):
            args += ["--tmpfs", folder, "--remount-ro", folder] if folder != package else ["--tmpfs", folder]
    for name in ENGINE_SIDE:
        source = os.path.join(package, name)
        if os.path.isfile(source):
            args += ["--ro-bind", source, source]
            for cached in _cached(package, name):
                args += ["--ro-bind", cached, cached]
    side = os.path.join(package, "engine_side")
    args += ["--ro-bind", side, side]
    if package in host.masked and (_inside(package, roots) or _inside(package, ["/usr"])):
        args += ["--remount-ro", package]
    args += _submission(view)
    return args


def _submission(view: View) -> list[str]:
    """Bind the submission read-only; a module name sees the PYTHONPATH folders instead."""
    spec = view.spec.partition("::")[0]  # DIR::module[:Class]: the folder
    if not (os.path.exists(spec) or os.sep in spec or spec.endswith(".py")):
        return [a for folder in view.python_path for a in ("--ro-bind-try", folder, folder)]
    path = os.path.abspath(spec)
    if not os.path.exists(path):
        return []  # the engine process reports "no such file or folder"
    if os.path.isdir(path):
        return ["--ro-bind", path, path]
    args = ["--ro-bind", path, path]
    hidden = {os.path.abspath(h) for h in view.hide}
    folder = os.path.dirname(path)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return args
    siblings = []
    for name in names:
        full = os.path.join(folder, name)
        if full == path or full in hidden or name.startswith("."):
            continue
        if (name.endswith(".py") and os.path.isfile(full)) or _is_package(full):
            siblings.append(full)
    for full in siblings[:MAX_SIBLINGS]:
        args += ["--ro-bind", full, full]
    return args


def _is_package(path: str) -> bool:
    """A folder holding Python files (a package, or a namespace package)."""
    try:
        return os.path.isdir(path) and any(n.endswith(".py") for n in os.listdir(path))
    except OSError:
        return False


def _cached(package: str, module: str) -> list[str]:
    """The bytecode caches of one harness module, so the engine process need not compile it."""
    folder = os.path.join(package, "__pycache__")
    stem = module[:-3] + "."
    try:
        return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.startswith(stem)]
    except OSError:
        return []


def _inside(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _outermost(paths: list[str]) -> list[str]:
    """The paths not inside another one of them, in order, without repeats."""
    kept: list[str] = []
    for p in sorted(set(paths), key=len):
        if not _inside(p, kept):
            kept.append(p)
    return kept


@functools.cache
def this_host() -> Host:
    """The interpreter's folders and the harness and reference_engine packages of this machine."""
    real = os.path.realpath
    roots = [real(sys.prefix), real(sys.base_prefix), os.path.dirname(real(sys.executable)),
             os.path.dirname(os.path.abspath(sys.executable))]
    masked = []
    for name in ("harness", "reference_engine"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            masked.append(real(folder))
    for root in list(roots):  # a wheel install of the harness, shadowed on sys.path by a source tree
        for sub in ("harness", "reference_engine"):
            for site in _site_packages(root):
                candidate = os.path.join(site, sub)
                if os.path.isdir(candidate):
                    masked.append(candidate)
    merged = tuple((link, os.readlink(link)) for link in ("/bin", "/lib", "/lib64", "/sbin")
                   if os.path.islink(link))
    return Host(tuple(dict.fromkeys(roots)), tuple(dict.fromkeys(masked)), merged)


def _site_packages(root: str) -> list[str]:
    lib = os.path.join(root, "lib")
    try:
        return [os.path.join(lib, d, "site-packages") for d in os.listdir(lib) if d.startswith("python")]
    except OSError:
        return []


@functools.cache
def probe(as_root: bool) -> str:
    """'' when bwrap can run a sandbox here (checked once per process), else why not, in one line."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    args = [exe, *NAMESPACES]  # one process group, killed whole if grade is interrupted meanwhile
    args += ["--cap-drop", "ALL"] if as_root else ["--unshare-user"]
    args += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", "true"]
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as e:
        return f"bwrap could not be started: {e}"
    try:
        _, err = proc.communicate(timeout=10)
    except BaseException as e:  # a timeout, or an interrupt: nothing of the probe outlives it
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if not isinstance(e, subprocess.TimeoutExpired):
            raise
        return "bwrap did not start a sandbox within 10 s"
    if proc.returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        return (f"bwrap refused to start a sandbox here: {lines[-1] if lines else f'exit code {proc.returncode}'}"
                " (namespaces are not allowed, e.g. in a container without them)")
    return ""
