"""The other engine processes of this test run that this one can see (never another run's), and the
handshake with tests/test_sandbox.py that keeps a classmate alive for exactly as long as an attack looks.

The handshake: the attacker and the classmate (sleepy.py) each name themselves (the process name, which
the test reads from outside any sandbox).  Once the test has seen both alive at once it sends the attacker
SIGUSR1: its next scan is its last.  Once the attacker's process has ended, it sends the classmate SIGUSR1,
which then goes on.  So the classmate is alive through at least one whole scan, and no one waits longer.
"""

import os
import signal
import time

#: No handshake takes this long; past it each side goes on (and the test, which waits less, has failed).
DEADLINE_S = 25.0


def _token() -> str:
    return os.environ.get("GRADE_TEST_TOKEN", "")


def _ready(role: str) -> list:
    """Answer SIGUSR1 by setting the returned list's flag, then take the name ``role`` (the test signals
    only a process with that name: the handler is in place by then)."""
    import ctypes

    told = [False]
    signal.signal(signal.SIGUSR1, lambda *_: told.__setitem__(0, True))
    # prctl(PR_SET_NAME): an engine process may not write its /proc/self/comm (root's once non-dumpable)
    ctypes.CDLL(None).prctl(15, role.encode(), 0, 0, 0)
    return told


def _ours(pid: str, token: bytes) -> bool:
    """Whether ``pid`` runs the harness's worker for this test run (its environment holds the token;
    an environment this process may not read counts, since it cannot harm that process either)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"harness.engine_side.worker" not in f.read():
                return False
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read().split(b"\0")
    except OSError:
        return True


def scans():
    """Pids of the other engine processes, one list per scan, until a scan has run that started after the
    test saw this process and the classmate alive together (none at all when not under the test suite)."""
    if not _token():
        return  # not under the test suite: touch nothing
    token = f"GRADE_TEST_TOKEN={_token()}".encode()
    me = {str(os.getpid()), str(os.getppid())}  # itself, and bwrap's init process above it
    go = _ready("attacker")
    deadline = time.monotonic() + DEADLINE_S
    while True:
        last = go[0] or time.monotonic() > deadline
        yield [int(n) for n in os.listdir("/proc") if n.isdigit() and n not in me and _ours(n, token)]
        if last:
            return
        time.sleep(0.02)


def stay_until_the_attacker_is_done() -> None:
    """The classmate's side: alive (importing) until the attacker's process has ended."""
    if not _token():
        return
    done = _ready("classmate")
    deadline = time.monotonic() + DEADLINE_S
    while not done[0] and time.monotonic() < deadline:
        time.sleep(0.02)
