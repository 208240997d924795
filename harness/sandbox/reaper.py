"""Every process a submission starts dies with its engine process (grader side).

Each engine process runs in its own session.  Killing it kills its process
group and every descendant found through ``/proc``, stopped first so that
none can fork while it is being killed.  A submission can still escape its
tree by double-forking a ``setsid`` process: on Linux the ``grade`` command
therefore makes itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``),
so such orphans are re-parented to the grader instead of to init, and
``sweep()`` kills every child of the grader that is not a live engine process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

_lock = threading.Lock()
_workers: dict[int, subprocess.Popen] = {}  # live engine processes by pid
_helpers: set[int] = set()  # the grader's own job processes (``fork_helper``): never orphans to kill
_state = {"subreaper": False, "stopping": False}


class Stopping(Exception):
    """Grading is being shut down: no new engine process may start."""


def become_subreaper() -> bool:
    """Adopt the orphans of our descendants, and keep them out of our memory (Linux only).

    Also marks the grader non-dumpable, so that a submission running as the
    same (non-root) user cannot ptrace it or write to its ``/proc/<pid>/mem``.
    Returns whether the grader is now a subreaper.
    """
    if _state["subreaper"]:
        return True
    _state["subreaper"] = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    return _state["subreaper"]


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        zero = ctypes.c_ulong(0)
        return libc.prctl(option, ctypes.c_ulong(value), zero, zero, zero) == 0
    except (OSError, AttributeError):
        return False


def fork_helper(hold: tuple = ()) -> int:
    """``os.fork()`` a helper of the grader (a job process, ``harness.running.jobs``): 0 in the child.

    The fork holds this module's lock and the locks in ``hold``, so that no other thread of the
    grader holds one of them in the child.  In the parent, the child is a helper: ``sweep`` and
    ``stop_all`` leave it alone (the caller waits for it and then calls ``helper_gone``).  In the
    child, the parent's engine processes and helpers are forgotten: it starts its own, and must
    ``become_subreaper`` again (that is not inherited)."""
    from contextlib import ExitStack

    with ExitStack() as held:
        for lock in (*hold, _lock):
            held.enter_context(lock)
        pid = os.fork()
        if pid:
            _helpers.add(pid)
        else:
            _workers.clear()
            _helpers.clear()
            _state.update(subreaper=False, stopping=False)
    return pid


def helper_gone(pid: int) -> None:
    """A helper from ``fork_helper`` was waited for: its pid may now be anyone's."""
    with _lock:
        _helpers.discard(pid)


def spawn(start: Callable[[], subprocess.Popen]) -> subprocess.Popen:
    """Start an engine process with ``start()`` and register it as live."""
    with _lock:
        if _state["stopping"]:
            raise Stopping("grading was interrupted")
        proc = start()
        _workers[proc.pid] = proc
        return proc


def kill(proc: subprocess.Popen, contained: bool = False) -> None:
    """Kill an engine process, everything it started, and (as a subreaper) every orphan.

    ``contained``: everything the process started was in a cgroup that was killed already
    (``harness.sandbox.cgroups.kill``), so there is no tree to walk: the process itself is killed (it may
    not have joined its cgroup yet), waited for, and the orphans it left are reaped."""
    with _lock:
        if contained:
            if proc.returncode is None:  # not reaped yet: its pid is still its own
                _kill_group(proc.pid)
        else:
            # once reaped, its pid may belong to someone else: only its group (and orphans) are killed
            _kill_trees({proc.pid}, walk=proc.returncode is None)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    with _lock:
        _workers.pop(proc.pid, None)
        _reap_zombies()


def sweep() -> None:
    """Kill every orphan adopted by the grader and everything below it."""
    with _lock:
        _kill_trees(set())
        _reap_zombies()


def reap() -> None:
    """Collect the dead orphans the grader adopted (what a killed cgroup leaves behind)."""
    with _lock:
        _reap_zombies()


def stop_all() -> None:
    """Refuse new engine processes, then kill the live ones and every orphan."""
    with _lock:
        _state["stopping"] = True
        procs = list(_workers.values())
        _kill_trees({p.pid for p in procs})
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    with _lock:
        for p in procs:
            _workers.pop(p.pid, None)
        _reap_zombies()


def resume() -> None:
    """Allow new engine processes again after ``stop_all()``."""
    with _lock:
        _state["stopping"] = False


def _kill_trees(roots: set, walk: bool = True) -> None:
    """SIGSTOP the trees under ``roots`` (and orphans) until none grows, then SIGKILL them all.

    ``roots`` are engine processes, each the leader of its own process group.
    """
    stopped: set[int] = set()
    for _ in range(100):
        table = _processes()
        if table is None:  # no /proc: only the process groups can be killed
            break
        parents = {pid: ppid for pid, (state, ppid) in table.items() if state != "Z"}
        tops = (roots if walk else set()) | (_orphans(parents) if _state["subreaper"] else set())
        new = _descendants(tops, parents) - stopped - {os.getpid()}
        if not new:
            break
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    for root in roots:
        _kill_group(root)
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    _wait_dead(stopped)


def _wait_dead(pids: set, timeout: float = 2.0) -> None:
    """Wait (briefly) until every one of ``pids`` is gone or a zombie: a killed grandchild, say inside a
    sandbox, may otherwise still be running its last instructions when grade exits."""
    import time

    deadline = time.monotonic() + timeout
    left = set(pids)
    while left and time.monotonic() < deadline:
        left = {pid for pid in left if _alive(pid)}
        if left:
            time.sleep(0.005)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


def _reap_zombies() -> None:
    """Collect the exit status of dead children that no Popen object waits for (adopted orphans)."""
    if not _state["subreaper"]:
        return  # we adopted no one; any other child belongs to the host program
    kids = _children()
    if kids is None:  # the kernel does not list children: find them in the whole process table
        me = os.getpid()
        kids = {pid for pid, (state, ppid) in (_processes() or {}).items() if ppid == me and state == "Z"}
    for pid in kids - _workers.keys() - _helpers:
        try:
            os.waitpid(pid, os.WNOHANG)  # a zombie is collected; a live child is left alone
        except OSError:
            pass


def _children() -> set[int] | None:
    """This process's children (those of each of its threads: an adopted orphan goes to any of them), from
    ``/proc/self/task/*/children``, which is read in a few microseconds where a scan of the whole process
    table takes milliseconds; None where the kernel does not list them."""
    me = os.getpid()
    if _state.get("children_listed") is None:
        _state["children_listed"] = os.path.exists(f"/proc/{me}/task/{me}/children")
    if not _state["children_listed"]:
        return None
    try:
        tids = os.listdir(f"/proc/{me}/task")
    except OSError:
        return None
    found: set[int] = set()
    for tid in tids:
        try:
            with open(f"/proc/{me}/task/{tid}/children", "rb") as f:
                found.update(int(pid) for pid in f.read().split())
        except OSError:  # the thread just ended
            continue
    return found


def _orphans(parents: dict) -> set:
    me = os.getpid()
    return {pid for pid, ppid in parents.items() if ppid == me and pid not in _workers and pid not in _helpers}


def _descendants(tops: set, parents: dict) -> set:
    children: dict[int, list] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [p for p in tops if p in parents]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _processes():
    """pid -> (state, parent pid) of every process, from /proc; None where there is no /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    table = {}
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # it just ended
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            table[int(name)] = (fields[0].decode(), int(fields[1]))
    return table


def _kill_group(root: int) -> None:
    """SIGKILL the process group an engine process leads (it starts a session of its own)."""
    try:
        os.killpg(root, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
