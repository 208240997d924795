"""Attack 7: SIGKILL every other engine process it sees at import, until the test has seen its classmate
alive beside it (tests/attacks/_peers.py).

Its own answers are correct.  Expected: inside a sandbox nothing is killed and every case passes;
with --sandbox none as root the reference engine dies, and the report says so for each case whose
expectations it was computing, while every submission still gets its report.
"""

import os
import signal

from _peers import scans
from _value import Value  # noqa: F401

for pids in scans():
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
