"""Private uids for engine processes (grader side): one per live engine-process slot, as isolate has per box.

When ``grade`` runs as root under ``--sandbox uid`` or ``bwrap``, every engine
process gives up root for a uid of its own, taken from a range no account uses
(``HARNESS_SANDBOX_UIDS``, default 60000-60999; no passwd entry is needed):

- the first uid of the range belongs to the trusted reference engine alone;
- every other engine process leases the lowest free uid above it and returns it
  when it is killed, so no two live submissions ever share a uid;
- before a uid is returned, every process still running as it is killed, so a
  process a submission left behind cannot greet the next one.

A process of another uid cannot signal, ptrace or read the ``/proc/<pid>/fd`` of
an engine process (which is also non-dumpable), and ``RLIMIT_NPROC`` counts the
processes of that uid alone.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

from harness.errors import HarnessError

UIDS_ENV = "HARNESS_SANDBOX_UIDS"
DEFAULT_RANGE = (60000, 60999)
_lock = threading.Lock()
_leased: set[int] = set()


@dataclass(frozen=True)
class Lease:
    """A uid (and the group of the same number) held by one engine process."""

    uid: int
    reference: bool = False

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


def lease(reference: bool = False) -> Lease:
    """The reference engine's uid, or the lowest uid no live engine process holds."""
    first, last = uid_range()
    if reference:
        return Lease(first, reference=True)
    with _lock:
        for uid in range(first + 1, last + 1):
            if uid not in _leased:
                _leased.add(uid)
                return Lease(uid)
    raise HarnessError(f"more engine processes than uids in {UIDS_ENV} ({first}-{last}): widen the range")


def release(held: Lease) -> None:
    """Kill whatever still runs as ``held``'s uid, then make the uid free again.

    The reference engine's uid is shared by its (trusted) processes and is never swept.
    """
    if held.reference:
        return
    kill_uid(held.uid)
    with _lock:
        _leased.discard(held.uid)


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
