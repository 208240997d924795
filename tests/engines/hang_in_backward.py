"""Hostile: ``backward()`` never returns when the output's value is exactly 42.

Reuses micrograd_full.py (correct) from the same folder, and wraps
``Value.backward`` so that it spins in a busy loop, burning a core, when
``self.data == 42``; any other output backpropagates correctly.
Expected verdict: ``timeout`` on every case whose output is 42 and that calls
``backward()`` (the harness must kill the engine process and carry on in a
fresh one); every other case passes.
"""

from micrograd_full import Value

_backward = Value.backward


def _hanging_backward(self):
    while self.data == 42:  # HOSTILE: an infinite loop in backward()
        pass
    _backward(self)


Value.backward = _hanging_backward
