"""A correct micrograd-style engine, written to be read.

Grade it with:  grade --engine examples/micrograd_style.py

The harness recognises this style by a class with ``backward()``, a value
attribute ``data`` and a ``grad`` attribute.  It builds expressions with the
Python operators (``a + b``, ``2 * a``, ``a ** 3``, ``-a`` ...) and calls the
methods ``exp() log() tanh() relu() sigmoid()``.

Like Karpathy's micrograd, every op is a pair: a forward value and a tiny
closure that pushes the gradient to the operands.  Unlike micrograd it avoids
two traps the harness tests for:
- the topological sort is a loop, not recursion, so a chain of 100 000 ops
  does not hit Python's recursion limit;
- a second ``backward()`` adds the same gradients again (PyTorch's rule), so
  gradients from earlier calls are never re-propagated.
"""

import math


class Value:
    """A scalar in a computation graph, with the gradient of the last output(s) w.r.t. it."""

    def __init__(self, data, _children=()):
        self.data = float(data)
        self.grad = 0.0  # accumulated over every backward() call
        self._prev = tuple(_children)  # the operands this value was computed from
        self._pass_grad = 0.0  # this backward() pass's gradient, before it is added to grad
        self._backward = lambda: None  # pushes _pass_grad to the operands' _pass_grad

    # --- binary ops: the other operand may be a plain number ---------------

    def __add__(self, other):
        other = _as_value(other)
        out = Value(self.data + other.data, (self, other))

        def _backward():
            self._pass_grad += out._pass_grad
            other._pass_grad += out._pass_grad
        out._backward = _backward
        return out

    def __sub__(self, other):
        other = _as_value(other)
        out = Value(self.data - other.data, (self, other))

        def _backward():
            self._pass_grad += out._pass_grad
            other._pass_grad -= out._pass_grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = _as_value(other)
        out = Value(self.data * other.data, (self, other))

        def _backward():
            self._pass_grad += other.data * out._pass_grad
            other._pass_grad += self.data * out._pass_grad
        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = _as_value(other)
        out = Value(self.data / other.data, (self, other))  # ZeroDivisionError for x / 0

        def _backward():
            self._pass_grad += out._pass_grad / other.data
            other._pass_grad -= out.data / other.data * out._pass_grad
        out._backward = _backward
        return out

    def __pow__(self, exponent):
        exponent = _as_value(exponent)
        # math.pow raises ValueError for (-8) ** 0.5, where ** would return a complex number
        out = Value(math.pow(self.data, exponent.data), (self, exponent))

        def _backward():
            x, p = self.data, exponent.data
            if p != 0:  # d/dx x ** p = p * x ** (p - 1)
                self._pass_grad += p * math.pow(x, p - 1) * out._pass_grad
            # d/dp x ** p = x ** p * ln(x), which is undefined (NaN) for x <= 0
            exponent._pass_grad += (out.data * math.log(x) if x > 0 else math.nan) * out._pass_grad
        out._backward = _backward
        return out

    # Reflected ops: Python calls these for ``2 + a``, ``2 - a``, ``2 ** a`` ...
    def __radd__(self, other):
        return _as_value(other) + self

    def __rsub__(self, other):
        return _as_value(other) - self

    def __rmul__(self, other):
        return _as_value(other) * self

    def __rtruediv__(self, other):
        return _as_value(other) / self

    def __rpow__(self, base):
        return _as_value(base) ** self

    # --- unary ops ---------------------------------------------------------

    def __neg__(self):
        out = Value(-self.data, (self,))

        def _backward():
            self._pass_grad -= out._pass_grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))  # OverflowError past about exp(709)

        def _backward():
            self._pass_grad += out.data * out._pass_grad
        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,))  # ValueError for log(0) and log(-1)

        def _backward():
            self._pass_grad += out._pass_grad / self.data
        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,))

        def _backward():
            self._pass_grad += (1.0 - out.data ** 2) * out._pass_grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(self.data, 0.0), (self,))

        def _backward():
            if self.data > 0:  # relu'(0) is 0, as in PyTorch
                self._pass_grad += out._pass_grad
        out._backward = _backward
        return out

    def sigmoid(self):
        if self.data >= 0:
            s = 1.0 / (1.0 + math.exp(-self.data))
        else:  # the same value, written so that exp cannot overflow
            e = math.exp(self.data)
            s = e / (1.0 + e)
        out = Value(s, (self,))

        def _backward():
            self._pass_grad += s * (1.0 - s) * out._pass_grad
        out._backward = _backward
        return out

    # --- backpropagation ---------------------------------------------------

    def backward(self):
        """Add d(self)/d(v) to v.grad for every value v that self depends on (self too)."""
        order = self._topological_order()
        for v in order:
            v._pass_grad = 0.0
        self._pass_grad = 1.0
        for v in reversed(order):  # every value before its operands
            v._backward()
        for v in order:
            v.grad += v._pass_grad

    def _topological_order(self):
        """Every value self depends on, each after its operands, found with a stack."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            v, operands_done = stack.pop()
            if operands_done:
                order.append(v)
            elif v not in visited:
                visited.add(v)
                stack.append((v, True))  # comes back to v once its operands are done
                stack.extend((child, False) for child in v._prev if child not in visited)
        return order

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def _as_value(x):
    """x itself if it is a Value, else a constant Value holding the number x."""
    return x if isinstance(x, Value) else Value(x)
