"""The tutorial notebook's asserts as a plain pytest file (the turnaround baseline).

The turnaround benchmark copies this file next to a notebook-style engine
saved as ``engine.py`` and runs bare pytest on it.  Cells are from
shared/seed/auto_differentiator_notebook.txt, In [54] to In [65].
"""

from engine import Tensor, _add, _mul, _sub


def test_ops():  # In [54]
    assert _add(Tensor(1), Tensor(2)).value == 3
    assert _sub(Tensor(1), Tensor(2)).value == -1
    assert _mul(Tensor(1), Tensor(2)).value == 2


def test_add_tensor():  # In [56]
    add_tensor = _add(Tensor(1), Tensor(2))
    assert add_tensor.value == 3
    assert add_tensor.args[0].value == 1
    assert add_tensor.args[1].value == 2
    assert add_tensor.local_derivatives[0].value == 1
    assert add_tensor.local_derivatives[1].value == 1


def test_a_plus_b_times_c():  # In [57]
    a, b, c = Tensor(1), Tensor(2), Tensor(3)
    L = _add(a, _mul(b, c))
    L.backward()
    assert a.derivative.value == 1
    assert b.derivative.value == 3
    assert c.derivative.value == 2


def test_a_plus_b_times_a_plus_c():  # In [58]
    a, b, c = Tensor(1), Tensor(2), Tensor(3)
    L = _add(a, _mul(b, _add(a, c)))
    L.backward()
    assert a.derivative.value == 1 + 2
    assert b.derivative.value == 1 + 3
    assert c.derivative.value == 2


def test_shared_subexpressions():  # In [64]
    a, b, c, d = Tensor(1), Tensor(2), Tensor(3), Tensor(4)
    I = _add(a, b)
    H = _mul(a, I)
    G = _mul(c, H)
    F = _add(H, G)
    L = _mul(d, F)
    L.backward()
    assert L.value == 4 * (1**2) + 1 * 2 * 4 + (1**2) * 3 * 4 + 1 * 2 * 3 * 4
    assert a.derivative.value == (2 * 1 * 4 + 2 * 4 + 2 * 1 * 3 * 4 + 2 * 3 * 4), f"{a.derivative=}"


def test_squared_error():  # In [65]
    y, m, x, c = Tensor(1), Tensor(2), Tensor(3), Tensor(4)
    left = _sub(y, _add(_mul(m, x), c))
    right = _sub(y, _add(_mul(m, x), c))
    L = _mul(left, right)
    L.backward()
    assert x.derivative.value == 36
