"""Attacks 6 and 8: write where the grader lives.

For each path in GRADE_TEST_TARGETS (os.pathsep-separated: run_autograder, results.json, a report)
it tries to append to that file; success spoils ``+``.  It also tries to create (and at once remove)
a file in the harness package and in every site-packages folder on ``sys.path``; success spoils ``*``.
Expected: inside a sandbox neither works; with --sandbox none as root both do.
"""

import os
import sys

from _value import Value

for path in filter(None, os.environ.get("GRADE_TEST_TARGETS", "").split(os.pathsep)):
    try:
        with open(path, "a"):
            Value.ADD = 1000.0
    except OSError:
        pass

_folders = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(sys.modules["__main__"].__file__))))]
_folders += [p for p in sys.path if p.endswith("site-packages")]
for folder in _folders:
    probe = os.path.join(folder, f".attack-probe-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.unlink(probe)
        Value.MUL = 1000.0
    except OSError:
        pass
