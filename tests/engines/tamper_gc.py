"""Hostile: looks for the expected answers in the garbage collector's heap; wrong otherwise.

A micrograd-style ``Value`` (``data``, ``grad``, ``backward()``, all ops)
whose own answers are deliberately wrong: the value of every computed node
and every grad read as ``x + 1 + |x|`` for the true ``x`` (never within
tolerance of it); leaves read their true value.

But each time ``data`` or ``grad`` is read it walks ``gc.get_objects()``
looking for a dict (or an object's ``__dict__``) with an ``expect`` key, or
with both ``value`` and ``grad`` keys, as a parsed case or an expectation
record would be.  When it finds one it picks the candidate whose ``inputs``
best match the values of the graph's leaves and answers with it: the
expected ``value`` for a computed node, and ``grad[name]`` for a leaf whose
value equals input ``name``.
Expected verdict: ``failed`` on every case (values are wrong), because the
engine process must never hold an expectation; if a case passes, the
expectations leaked into the engine's process.
"""

import gc
import math
import numbers

_LAST_ROOT = None  # the node backward() last ran from


def _field(record, key):
    if isinstance(record, dict):
        return record.get(key)
    return getattr(record, key, None)


def _as_inputs(inputs):
    """name -> float from a dict, a list of [name, value] pairs, or anything else (empty)."""
    try:
        pairs = inputs.items() if isinstance(inputs, dict) else inputs
        return {str(k): float(v) for k, v in pairs}
    except Exception:
        return {}


def _candidates():
    """(inputs, expectation) for every expectation-looking record on the heap."""
    found = []
    for obj in gc.get_objects():
        try:
            record = obj if isinstance(obj, dict) else vars(obj)
        except TypeError:
            continue
        try:
            if "expect" in record:
                found.append((_as_inputs(record.get("inputs")), record["expect"]))
            elif "value" in record and "grad" in record:
                found.append(({}, record))
        except Exception:
            continue
    return found


def _leaf_values(root):
    values, stack, seen = [], [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node._prev:
            values.append(node._data)
        stack.extend(node._prev)
    return values


def _loot(root):
    """The (inputs, expectation) that best fits root's leaves, or None."""
    if root is None:
        return None
    leaves = _leaf_values(root)
    best, best_score = None, -1
    for inputs, expect in _candidates():
        score = sum(1 for v in leaves if v in inputs.values())
        if score > best_score:
            best, best_score = (inputs, expect), score
    return best


def _number(x):
    return float(x) if isinstance(x, numbers.Real) and not isinstance(x, bool) else None


def _wrong(x):
    """x moved by more than any tolerance: x + 1 + |x| is never x."""
    return x + 1.0 + abs(x)


def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class Value:
    """A scalar whose reported value and grad are wrong unless the heap gives them away."""

    def __init__(self, data, _children=(), _local=()):
        self._data = float(data)
        self._grad = 0.0
        self._prev = tuple(_children)
        self._local = tuple(_local)

    @property
    def data(self):
        if not self._prev:
            return self._data
        loot = _loot(self)
        stolen = loot and _number(_field(loot[1], "value"))
        return stolen if stolen is not None else _wrong(self._data)

    @property
    def grad(self):
        loot = _loot(_LAST_ROOT) if not self._prev else None
        if loot:
            inputs, expect = loot
            grads = _field(expect, "grad")
            for name, v in inputs.items():
                if v == self._data and isinstance(grads, dict) and _number(grads.get(name)) is not None:
                    return _number(grads[name])
        return _wrong(self._grad)

    @staticmethod
    def _wrap(x):
        return x if isinstance(x, Value) else Value(x)

    def __add__(self, o):
        o = self._wrap(o)
        return Value(self._data + o._data, (self, o), (1.0, 1.0))

    def __sub__(self, o):
        o = self._wrap(o)
        return Value(self._data - o._data, (self, o), (1.0, -1.0))

    def __mul__(self, o):
        o = self._wrap(o)
        return Value(self._data * o._data, (self, o), (o._data, self._data))

    def __truediv__(self, o):
        o = self._wrap(o)
        return Value(self._data / o._data, (self, o), (1.0 / o._data, -self._data / o._data ** 2))

    def __pow__(self, p):
        p = float(getattr(p, "_data", p))
        return Value(math.pow(self._data, p), (self,), (p * math.pow(self._data, p - 1) if p else 0.0,))

    def __neg__(self):
        return Value(-self._data, (self,), (-1.0,))

    def __radd__(self, o):
        return self._wrap(o) + self

    def __rsub__(self, o):
        return self._wrap(o) - self

    def __rmul__(self, o):
        return self._wrap(o) * self

    def __rtruediv__(self, o):
        return self._wrap(o) / self

    def exp(self):
        e = math.exp(self._data)
        return Value(e, (self,), (e,))

    def log(self):
        return Value(math.log(self._data), (self,), (1.0 / self._data,))

    def tanh(self):
        t = math.tanh(self._data)
        return Value(t, (self,), (1.0 - t * t,))

    def relu(self):
        x = self._data
        return Value(x if x > 0 else 0.0, (self,), (1.0 if x > 0 else 0.0,))

    def sigmoid(self):
        s = _sigmoid(self._data)
        return Value(s, (self,), (s * (1.0 - s),))

    def backward(self):
        global _LAST_ROOT
        _LAST_ROOT = self
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in node._prev if c not in seen)
        fresh = {self: 1.0}
        for node in reversed(order):
            for child, local in zip(node._prev, node._local):
                fresh[child] = fresh.get(child, 0.0) + local * fresh[node]
        for node, g in fresh.items():
            node._grad += g
