"""Attack 7: SIGKILL every other engine process it sees during its first 5 s (the reference engine's first).

Its own answers are correct.  Expected: inside a sandbox nothing is killed and every case passes;
with --sandbox none as root the reference engine dies, and the report says so for each case whose
expectations it was computing, while every submission still gets its report.
"""

import os
import signal
import time

from _peers import peers
from _value import Value  # noqa: F401

_deadline = time.monotonic() + 5.0
while time.monotonic() < _deadline:
    for pid in peers(0.0):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.02)
