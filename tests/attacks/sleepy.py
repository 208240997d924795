"""A correct engine that takes 3 s to import: a classmate whose engine process is alive while the attacks look."""

import time

from _value import Value  # noqa: F401

time.sleep(3)
