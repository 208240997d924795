"""Attack 12: read the case files, and reach the network.

Reading the file named by GRADE_TEST_SECRET (a hidden case file) spoils ``*``; connecting to
127.0.0.1:GRADE_TEST_PORT, where the test listens, spoils ``+``.
Expected: in a bwrap sandbox neither works (the file is absent, the network namespace empty);
under --sandbox uid the root-only file is unreadable but the network is reachable; with
--sandbox none as root both work.
"""

import os

from _value import Value

try:
    with open(os.environ["GRADE_TEST_SECRET"], "rb") as f:
        f.read(1)
    Value.MUL = 1000.0
except (OSError, KeyError):
    pass
try:
    import socket  # (under --sandbox uid, an interpreter only root may read may lack it)

    with socket.create_connection(("127.0.0.1", int(os.environ["GRADE_TEST_PORT"])), timeout=2):
        Value.ADD = 1000.0
except (OSError, KeyError, ValueError, ImportError):
    pass
