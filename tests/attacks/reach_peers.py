"""Attacks 3 and 4: reach another engine process (the reference engine's, or a classmate's under --jobs 2).

At import it looks for the other engine processes until the test has seen its classmate alive
beside it (tests/attacks/_peers.py), and for each one it sees:
signalling it (signal 0: what SIGSTOP would need) spoils ``+``; listing its ``/proc/<pid>/fd`` (whose
pipes carry the programs and the answers) spoils ``*``; seeing one at all spoils ``-``.
Expected: in a bwrap sandbox it sees none; under --sandbox uid it sees them but can neither signal
them nor open their fds (another uid, non-dumpable); with --sandbox none as root it does all three.
"""

import os

from _peers import scans
from _value import Value

for pids in scans():
    for pid in pids:
        Value.SUB = 1000.0
        try:
            os.kill(pid, 0)
            Value.ADD = 1000.0
        except OSError:
            pass
        try:
            os.listdir(f"/proc/{pid}/fd")
            Value.MUL = 1000.0
        except OSError:
            pass
