"""Private uids for engine processes (grader side): one per live engine-process slot, as isolate has per box.

When ``grade`` runs as root under ``--sandbox uid`` or ``bwrap``, every engine
process gives up root for a uid of its own, taken from a range no account uses
(``HARNESS_SANDBOX_UIDS``, default 60000-60999; no passwd entry is needed):

- the first uid of the range belongs to the trusted reference engine alone;
- every other engine process leases the lowest free uid above it and returns it
  when it is killed, so no two live submissions ever share a uid, even across
  ``grade`` processes running at the same time: a lease is an exclusive ``flock``
  on a file in a root-only folder (``LOCK_DIR``), which the kernel releases if
  the grader dies;
- before a uid is handed out and before it is returned, every process still
  running as it is killed, so a process a submission left behind cannot greet
  the next one (under bwrap, the engine process's pid namespace does this: every
  process in it dies with it).

A process of another uid cannot signal, ptrace or read the ``/proc/<pid>/fd`` of
an engine process (which is also non-dumpable), and ``RLIMIT_NPROC`` counts the
processes of that uid alone.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from dataclasses import dataclass, field

from harness.errors import HarnessError

UIDS_ENV = "HARNESS_SANDBOX_UIDS"
DEFAULT_RANGE = (60000, 60999)
LOCK_DIRS = ("/run/harness-uids", "/tmp/harness-uids-0")
_lock = threading.Lock()
_leased: dict[int, int] = {}  # uid -> the fd holding its lock


@dataclass(frozen=True)
class Lease:
    """A uid (and the group of the same number) held by one engine process."""

    uid: int
    reference: bool = False
    fd: int = field(default=-1, compare=False, repr=False)
    sweep: bool = True  # kill its processes when leased and released (not needed in a pid namespace)

    @property
    def gid(self) -> int:
        return self.uid

    @property
    def name(self) -> str:
        return f"grade-{'reference' if self.reference else 'slot'}-{self.uid}"

    def to_wire(self) -> dict:
        return {"name": self.name, "uid": self.uid, "gid": self.uid}


def uid_range() -> tuple[int, int]:
    """The (first, last) uid engine processes may use, from HARNESS_SANDBOX_UIDS ('FIRST-LAST')."""
    text = os.environ.get(UIDS_ENV, "").strip()
    if not text:
        return DEFAULT_RANGE
    try:
        first, last = (int(x) for x in text.split("-"))
    except ValueError:
        raise HarnessError(f"{UIDS_ENV}={text!r}: expected FIRST-LAST, e.g. 60000-60999") from None
    if not 0 < first < last < 2**31 - 1:
        raise HarnessError(f"{UIDS_ENV}={text!r}: expected 0 < FIRST < LAST, e.g. 60000-60999")
    return first, last


def lease(reference: bool = False, sweep: bool = True) -> Lease:
    """The reference engine's uid, or the lowest uid no live engine process holds.

    ``sweep=False`` skips killing the uid's processes: under bwrap they all live in the engine
    process's pid namespace, which dies with it.
    """
    first, last = uid_range()
    if reference:
        return Lease(first, reference=True)
    folder = _lock_dir()
    with _lock:
        for uid in range(first + 1, last + 1):
            if uid in _leased:
                continue
            fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # another grade process holds it
                os.close(fd)
                continue
            _leased[uid] = fd
            if sweep:
                kill_uid(uid)  # left over from a grade process that died
            return Lease(uid, fd=fd, sweep=sweep)
    raise HarnessError(f"more engine processes than uids in {UIDS_ENV} ({first}-{last}): widen the range")


def _lock_dir() -> str:
    """A folder only grade's user (root) can write, holding one lock file per uid in use."""
    for folder in LOCK_DIRS:
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            st = os.lstat(folder)
        except OSError:
            continue
        if st.st_uid == os.geteuid() and not st.st_mode & 0o077 and os.path.isdir(folder) and not os.path.islink(folder):
            return folder
    raise HarnessError(f"no root-only folder for the uid locks ({', '.join(LOCK_DIRS)})")


def release(held: Lease) -> None:
    """Kill whatever still runs as ``held``'s uid, then make the uid free again.

    The reference engine's uid is shared by its (trusted) processes and is never swept.
    """
    if held.reference:
        return
    if held.sweep:
        kill_uid(held.uid)
    with _lock:
        fd = _leased.pop(held.uid, None)
    if fd is not None:
        os.close(fd)  # and with it the lock


def kill_uid(uid: int) -> None:
    """SIGKILL every process whose real uid is ``uid`` (until none is left, at most a few rounds)."""
    for _ in range(20):
        found = [pid for pid in _pids() if _live_uid(pid) == uid]
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _pids() -> list[int]:
    try:
        return [int(n) for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return []


def _live_uid(pid: int) -> int | None:
    """The real uid of a live (not zombie) process; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"State:") and line.split()[1] in (b"Z", b"X"):
                    return None
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
