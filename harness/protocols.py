"""The plugin contract in code: what an engine object and a report format offer the grader.

Exported by ``harness`` (``harness.Engine``, ``harness.StructuredEngine``,
``harness.Reporter``) and imported from there on first use: ``typing`` is not
loaded by every engine process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from harness.model import ReportContext, RunResult


@runtime_checkable
class Engine(Protocol):
    """What the grader asks of an engine: a builder of graphs of scalar nodes.

    - One engine object serves every case in an engine process: it must not keep
      state from one graph to the next (each case builds its own leaves).
    - ``apply`` receives nodes or plain numbers (Python ints and floats: the
      constants of an expression such as ``x * 2``), and may receive plain
      numbers only (``2 * 3``); it returns a node either way.
    - A second ``backward()`` on the same output adds: every gradient it reaches
      is accumulated again, as in PyTorch (``backward: 2`` doubles them).
    - ``grad()`` of intermediate nodes, not only of the leaves, lets blame walk
      the graph node by node and name the first node whose gradient diverges
      from the reference engine's, i.e. the op whose local derivative is wrong.

    The optional members are in ``StructuredEngine``.
    """

    name: str

    def leaf(self, value: float) -> Any:
        """A new differentiable input node holding ``value``."""
        ...

    def apply(self, op: str, *operands: Any) -> Any:
        """A new node: ``op`` (a name in ``OPS`` or a plugin op) over nodes or plain numbers.

        Raises ``Unsupported`` for an op the engine lacks."""
        ...

    def backward(self, node: Any) -> None:
        """Backpropagate from ``node``, adding d(node)/d(x) to every node x it depends on."""
        ...

    def value(self, node: Any) -> float:
        """The node's value."""
        ...

    def grad(self, node: Any) -> float | None:
        """The accumulated d(output)/d(node), or None before any backward reached it."""
        ...


@runtime_checkable
class StructuredEngine(Engine, Protocol):
    """An engine that also shows a node's operands, for the ``args`` and ``local_derivatives`` checks."""

    def args(self, node: Any) -> list[float]:
        """The values of the node's operands, in order."""
        ...

    def local_derivatives(self, node: Any) -> list[float]:
        """d(node)/d(operand) for each operand, in order."""
        ...


@runtime_checkable
class Reporter(Protocol):
    """A report format: ``register(name, render)`` in ``register_reporters``; the text is written whole
    (or piece by piece, from a ``harness.reporting.common.Streamed`` format's ``chunks``)."""

    def __call__(self, run: RunResult, context: ReportContext) -> str:
        """The report of ``run`` (every engine's typed results) shown as ``context`` says; in a graded run,
        ``run.engines`` loads each engine when it is read (``harness.model.LazyEngines``)."""
        ...
