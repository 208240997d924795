"""Not loadable: a SyntaxError on line 20.

A micrograd-style engine whose ``__add__`` definition lacks its colon
(``def __add__(self, other)``), so the file does not even compile.
Expected verdict: every case ``error`` with the load error as its message,
which names this file, line 20 and SyntaxError; ``grade`` exits with 1,
not 2.  Linters and compile-all steps must skip this file.
"""


class Value:
    """A scalar with a gradient."""

    def __init__(self, data, _children=()):
        self.data = data
        self.grad = 0.0
        self._prev = tuple(_children)
        self._backward = lambda: None

    def __add__(self, other)
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def backward(self):
        self.grad = 1.0
        self._backward()
