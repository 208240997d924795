"""The tutorial notebook's engine, verbatim (../shared/seed/auto_differentiator_notebook.txt).

Cells In[4], In[53], In[54] and In[55] exactly as written (only the displayed
``Tensor(5)`` outputs and the later unit-test cells are left out): ``Tensor``
with ``value``, ``args``, ``local_derivatives`` and ``derivative``; ``_add``,
``_sub``, ``_mul``; and the per-path recursive ``dfs`` that ``backward`` calls.

What to expect from it:
- only add, sub and mul exist: every other op is ``unsupported``;
- ``dfs`` walks every path, not every node, so a graph with many shared
  sub-expressions takes exponential time (timeout), and it recurses once per
  level, so a deep chain raises RecursionError;
- ``backward()`` sets the output's derivative to ``Tensor(1)`` each time and
  adds every path's product into the other nodes, so a second call doubles
  the derivatives of leaves and intermediates while the output's stays 1.
"""

# In [4]:
from typing import Optional

# In [53]:
class Tensor:

  value: float

  # If the tensor is the result of an operation, the operation arguments are
  # stored in the args.
  args: tuple["Tensor"] = ()

  # If the Tensor is the result of an operation, the derivatives to the
  # operation arguments are stored in local_derivatives.
  #
  # length == # of the input Tensors
  local_derivatives: tuple["Tensor"] = ()

  # The derivative of the loss to the current Tensor in back prop.
  derivative: Optional["Tensor"] = None

  def __init__(self, value: float) -> None:
    self.value = value

  def __repr__(self) -> str:
    return f"Tensor({self.value})"



  def backward(self) -> None:
    # if not self.args:
    #   return

    # if not self.args:
    #   raise Exception("Tensor has no args")

    # if not self.local_derivatives:
    #   raise Exception("Tensor has no local derivatives")

    # if not self.derivative:
    #   self.derivative = Tensor(1)

    # for arg, local_derivative in zip(self.args, self.local_derivatives):
    #   d = _mul(local_derivative, self.derivative)
    #   if arg.derivative is None:
    #     arg.derivative = d
    #   else:
    #     arg.derivative = _add(arg.derivative, d)

    #   arg.backward()

    # self.derivative = Tensor(1)

    self.derivative = Tensor(1)

    dfs(self, self.derivative)

# In [54]:
def _add(a: Tensor, b: Tensor):
  ret = Tensor(a.value + b.value)
  ret.args = (a, b)
  ret.local_derivatives = (Tensor(1), Tensor(1))
  return ret

def _sub(a: Tensor, b: Tensor):
  ret = Tensor(a.value - b.value)
  ret.args = (a, b)
  ret.local_derivatives = (Tensor(1), Tensor(-1))
  return ret

def _mul(a: Tensor, b: Tensor):
  ret = Tensor(a.value * b.value)
  ret.args = (a, b)
  ret.local_derivatives = (Tensor(b.value), Tensor(a.value))
  return ret

assert _add(Tensor(1), Tensor(2)).value == 3
assert _sub(Tensor(1), Tensor(2)).value == -1
assert _mul(Tensor(1), Tensor(2)).value == 2

# In [55]:
# DFS to back propagate
# 1. for a node, its derivative equals the sum of derivatives along all paths that back-prop to it
# 2. because of the chain rule of deriviate, a node's derivate on that single path equals the multiplying of deriviates of its descend node * local_deriviate
def dfs(t: "Tensor", curr_derivative: float) -> None:
  if not t.args:
    return

  for arg, local_der in zip(t.args, t.local_derivatives):
    derivative = _mul(local_der, curr_derivative)
    if arg.derivative is None:
      arg.derivative = derivative
    else:
      arg.derivative = _add(arg.derivative, derivative)

    dfs(arg, derivative)
