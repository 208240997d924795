"""cgroup limits for engine processes (grader side): ``pids.max`` and the memory cap, where a cgroup can be made.

The rlimits cap each engine process alone (``RLIMIT_AS`` per process,
``RLIMIT_NPROC`` per uid).  A cgroup caps an engine process and everything it
starts, together: a submission that forks 60 children of 1.9 GB each passes
every rlimit and still meets ``memory.max``.  Where the grader may create
cgroups, every engine process gets one of its own:

- **cgroup v2** (preferred): the folder ``HARNESS_CGROUP`` names (a delegated,
  empty cgroup), else the grader's own cgroup (the ``0::`` line of
  ``/proc/self/cgroup`` under the cgroup2 mount), when it is writable and hands
  the ``pids`` and ``memory`` controllers to its children
  (``cgroup.subtree_control``; enabled there when possible).  Each engine
  process's child gets ``pids.max``, ``memory.max``, ``memory.swap.max`` 0 and
  ``memory.oom.group`` 1.
- **cgroup v1**, where v2 has no such controllers: the ``pids`` and ``memory``
  hierarchies (``pids.max``; ``memory.limit_in_bytes`` and
  ``memory.memsw.limit_in_bytes``), each under the grader's own path in it.
- otherwise none: grading goes on with the rlimits alone, and the report says so.

``HARNESS_CGROUP=off`` turns cgroups off.

An engine process joins its cgroup before it runs anything untrusted: its
command starts as ``/bin/sh -c 'echo 0 > .../cgroup.procs; exec "$@"'``, so
the shell moves itself in and then becomes bwrap or the engine process, and
every process started from then on is born inside.  (Writing the pid from the
grader after the spawn would race with bwrap, which forks its sandbox at once:
a child forked before the move would stay outside.)  A failed join leaves that
process with the rlimits alone.

When its engine process is killed, the cgroup is killed whole (``cgroup.kill``
in v2, where the kernel has it; else every process listed in it, until none
is left), then removed.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

CGROUP_ENV = "HARNESS_CGROUP"
CONTROLLERS = ("pids", "memory")
#: Joins the cgroups whose ``cgroup.procs`` files come before ``--``, then runs the rest.
JOIN = 'while [ "$1" != -- ]; do echo 0 > "$1"; shift; done 2>/dev/null; shift; exec "$@"'
_names = itertools.count(1)
_lock = threading.Lock()
_leftover: list[str] = []  # folders that could not be removed yet (a process still exiting)


@dataclass(frozen=True)
class Hierarchy:
    """Where the engine processes' cgroups go: v2, one folder for both controllers; v1, one per controller."""

    version: int
    parents: tuple[tuple[str, str], ...]  # (controller, folder to create the children in)

    def controllers(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.parents)


@dataclass(frozen=True)
class Caps:
    """The limits one engine process's cgroup gets (None: that one is not set)."""

    pids: int | None
    memory_mb: int | None

    def describe(self, where: Hierarchy) -> str:
        """E.g. 'v2: pids.max=64, memory.max=2048M' (only the controllers ``where`` has)."""
        parts = []
        if "pids" in where.controllers() and self.pids:
            parts.append(f"pids.max={self.pids}")
        if "memory" in where.controllers() and self.memory_mb:
            name = "memory.max" if where.version == 2 else "memory.limit_in_bytes"
            parts.append(f"{name}={self.memory_mb}M")
        return f"v{where.version}: {', '.join(parts)}" if parts else ""


@dataclass
class Group:
    """One engine process's cgroup: a folder per hierarchy (one in v2)."""

    version: int
    folders: tuple[str, ...]
    memory_mb: int | None = None

    def join_command(self, argv: list[str], shell: str = "/bin/sh") -> list[str]:
        """``argv``, run so that it starts inside this cgroup."""
        return [shell, "-c", JOIN, "sh", *(os.path.join(f, "cgroup.procs") for f in self.folders), "--", *argv]

    def out_of_memory(self) -> bool:
        """Whether the kernel's out-of-memory killer killed a process of this cgroup (its memory cap)."""
        for folder in self.folders:
            for name in ("memory.events", "memory.oom_control"):  # v2, v1
                counts = _counts(_read(os.path.join(folder, name)))
                if counts.get("oom_kill", 0) > 0:
                    return True
        return False

    def close(self, reap: Callable[[], None] | None = None) -> None:
        """Kill every process in the cgroup, then remove it (later, if a process is still exiting);
        ``reap()`` collects dead processes (orphans the grader adopted) while it waits."""
        kill(self)
        for folder in self.folders:
            if not _rmdir(folder, between=reap):
                with _lock:
                    _leftover.append(folder)


def parse_mounts(mountinfo: str) -> list[tuple[str, str, str, set]]:
    """(mount point, root in the hierarchy, type, v1 controllers) of each cgroup mount in ``mountinfo``."""
    mounts = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        point = fields[4].replace("\\040", " ")
        mounts.append((point, fields[3], rest[0], set(rest[2].split(",")) if rest[0] == "cgroup" else set()))
    return mounts


def parse_self(text: str) -> dict[str, str]:
    """controller ('' for v2) -> the path of this process's cgroup, from ``/proc/self/cgroup``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths[""] = parts[2]
        for name in parts[1].split(","):
            if name:
                paths[name] = parts[2]
    return paths


def _under(point: str, root: str, path: str) -> str | None:
    """The folder of cgroup ``path`` in a mount of the hierarchy's ``root`` at ``point`` (None: not in it)."""
    root = root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return os.path.join(point, path[len(root):].lstrip("/")).rstrip("/") or "/"


def find(mountinfo: str, own: str, environ: Mapping[str, str]) -> tuple[Hierarchy | None, str]:
    """(where engine processes' cgroups can go, '') or (None, why none can) on this machine."""
    chosen = environ.get(CGROUP_ENV, "").strip()
    if chosen.lower() in ("off", "0", "no", "none"):
        return None, f"{CGROUP_ENV}={chosen}"
    mounts, paths = parse_mounts(mountinfo), parse_self(own)
    if chosen:
        why = _usable_v2(chosen)
        return (None, f"{CGROUP_ENV}={chosen}: {why}") if why else (Hierarchy(2, tuple((c, chosen) for c in CONTROLLERS)), "")
    whys = []
    for point, root, kind, _ in mounts:
        if kind == "cgroup2" and "" in paths:
            folder = _under(point, root, paths[""])
            if folder is None:
                continue
            why = _usable_v2(folder)
            if not why:
                return Hierarchy(2, tuple((c, folder) for c in CONTROLLERS)), ""
            whys.append(f"cgroup v2 {folder}: {why}")
            break
    parents = []
    for controller in CONTROLLERS:
        for point, root, kind, names in mounts:
            if kind == "cgroup" and controller in names and controller in paths:
                folder = _under(point, root, paths[controller])
                if folder is not None and os.access(folder, os.W_OK | os.X_OK) and os.path.isfile(
                        os.path.join(folder, "cgroup.procs")):
                    parents.append((controller, folder))
                    break
    if parents:
        return Hierarchy(1, tuple(parents)), ""
    whys.append("no writable cgroup v1 pids or memory hierarchy")
    return None, "; ".join(whys) if whys else "no cgroup mounted"


def _usable_v2(folder: str) -> str:
    """'' when children of ``folder`` can be made with the pids and memory controllers, else why not."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "not writable by grade"
    wanted = set(CONTROLLERS)
    enabled = set(_read(os.path.join(folder, "cgroup.subtree_control")).split())
    if wanted <= enabled:
        return ""
    available = set(_read(os.path.join(folder, "cgroup.controllers")).split())
    if not wanted <= available:
        return f"the {' and '.join(sorted(wanted - available))} controller(s) are not delegated to it"
    try:
        _write(os.path.join(folder, "cgroup.subtree_control"), " ".join(f"+{c}" for c in sorted(wanted - enabled)))
    except OSError as e:  # EBUSY: it holds processes (grade's own), so it cannot hand controllers down
        return (f"cannot enable {' and '.join(sorted(wanted - enabled))} for its children ({e.strerror}); "
                f"give grade an empty delegated cgroup with {CGROUP_ENV}=/sys/fs/cgroup/...")
    return ""


def create(where: Hierarchy, caps: Caps) -> Group:
    """A fresh cgroup with ``caps`` in every hierarchy of ``where``; OSError (nothing left behind) if it fails."""
    name = f"grade-{os.getpid()}-{next(_names)}"
    made: list[str] = []
    try:
        for parent in dict.fromkeys(folder for _, folder in where.parents):
            folder = os.path.join(parent, name)
            os.mkdir(folder)
            made.append(folder)
            controllers = {c for c, f in where.parents if f == parent}
            if "pids" in controllers and caps.pids:
                _write(os.path.join(folder, "pids.max"), str(caps.pids))
            if "memory" in controllers and caps.memory_mb:
                size = str(caps.memory_mb << 20)
                if where.version == 2:
                    _write(os.path.join(folder, "memory.max"), size)
                    _try_write(os.path.join(folder, "memory.swap.max"), "0")
                    _try_write(os.path.join(folder, "memory.oom.group"), "1")  # an OOM kill takes the whole group
                else:
                    _write(os.path.join(folder, "memory.limit_in_bytes"), size)
                    _try_write(os.path.join(folder, "memory.memsw.limit_in_bytes"), size)  # no swapping past it
    except OSError:
        for folder in made:
            _rmdir(folder, wait=0)
        raise
    return Group(where.version, tuple(made), caps.memory_mb)


def kill(group: Group) -> bool:
    """SIGKILL every process of ``group`` (``cgroup.kill`` where the kernel has it), until none is left;
    whether none is (False: it gave up, say on processes that fork faster than they are killed).

    One by one (v1, or a kernel before 5.14), every listed process is killed again on each pass (a pid
    may be reused), and new ones that a process forked meanwhile with it.  A killed process stays listed
    until it has finished exiting: a pass that finds only those sleeps a millisecond instead of spinning.
    """
    if group.version == 2:
        try:
            _write(os.path.join(group.folders[0], "cgroup.kill"), "1")
            return True
        except OSError:
            pass  # a kernel before 5.14: kill them one by one
    killed: set[str] = set()
    for _ in range(200):
        pids = {p for folder in group.folders for p in _read(os.path.join(folder, "cgroup.procs")).split()}
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        if pids <= killed:  # only the dying: give them a moment
            time.sleep(0.001)
        killed |= pids
    return False


def _rmdir(folder: str, wait: float = 2.0, between: Callable[[], None] | None = None) -> bool:
    """Remove a cgroup, retrying while its killed processes finish exiting; whether it is gone."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(folder)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            if between is not None:
                between()
            time.sleep(0.01)


def sweep_leftovers() -> None:
    """Remove the cgroups that could not be removed when their engine process was killed."""
    with _lock:
        left = list(_leftover)
        _leftover.clear()
    for folder in left:
        if not _rmdir(folder, wait=0.5):
            with _lock:
                _leftover.append(folder)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(65536)
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _try_write(path: str, text: str) -> None:
    try:
        _write(path, text)
    except OSError:
        pass


def _counts(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


# --- this machine ---------------------------------------------------------------------------------------

_state: dict = {}


def here() -> tuple[Hierarchy | None, str]:
    """``find`` on this machine, once per process (Linux only)."""
    with _lock:
        if "found" not in _state:
            if not os.path.exists("/proc/self/cgroup"):
                _state["found"] = (None, "no cgroups on this system")
            else:
                _state["found"] = find(_read("/proc/self/mountinfo"), _read("/proc/self/cgroup"), os.environ)
                if _state["found"][0] is not None:
                    _remove_stale(_state["found"][0])
        return _state["found"]


def _remove_stale(where: Hierarchy) -> None:
    """Remove the empty cgroups of grade processes that ended without removing them (``grade-PID-N``)."""
    for folder in dict.fromkeys(f for _, f in where.parents):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            pid = name.split("-")[1] if name.startswith("grade-") and name.count("-") == 2 else ""
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                _rmdir(os.path.join(folder, name), wait=0)


def for_engine(caps: Caps) -> Group | None:
    """A cgroup for one engine process, or None (the rlimits alone) when none can be made here."""
    where, _ = here()
    if where is None or not caps.describe(where):
        return None
    try:
        return create(where, caps)
    except OSError as e:
        with _lock:  # e.g. a read-only or full hierarchy: say so once, and stop trying
            _state["found"] = (None, f"creating a cgroup failed ({e.strerror or e})")
        return None


def applied(caps: Caps) -> str:
    """What the report says: the cgroup limits every engine process got, or 'none (rlimits only: why)'."""
    where, why = here()
    said = caps.describe(where) if where is not None else ""
    if said:
        return said
    return f"none (rlimits only: {why or 'no limit to set'})"
