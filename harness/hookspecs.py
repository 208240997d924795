"""The hooks a harness plugin can implement (``@harness.hookimpl``); docs/plugins.md shows each at work.

Each hook takes one ``register`` callback and calls it once per thing it adds,
so the harness decides what to keep (the llm and datasette style).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import hookspec

if TYPE_CHECKING:
    from collections.abc import Callable

    from harness import Engine, OpSpec, Reporter


@hookspec
def register_engines(register: Callable[[Engine], None]) -> None:
    """Register engines that ``grade --engine NAME`` can grade by name.

    Called in the engine process when the submission is loaded: for the
    submission's own module (a ``@hookimpl`` in the student's file), and for
    installed plugins when ``--engine`` names no file.  The grader calls it too,
    to list the names of installed engines.

    :param register: call ``register(engine)`` once per engine object; an
        engine is a ``harness.Engine`` (``name``, ``leaf``, ``apply``,
        ``backward``, ``value``, ``grad``; optionally ``args`` and
        ``local_derivatives``).  One object serves every case of its process.

    Return value: none; what is passed to ``register`` counts.
    """


@hookspec
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    """Register report formats for ``grade --format NAME``.

    Called once in the grader, when it starts, before the cases are run (every
    built-in format is registered through this hook too).

    :param register: call ``register(name, render)`` once per format;
        ``render(run, context) -> str`` (a ``harness.Reporter``) receives a
        ``harness.model.RunResult`` and a ``harness.model.ReportContext`` and
        returns the whole report, which the grader writes at the end.

    Return value: none; what is passed to ``register`` counts.
    """


@hookspec
def register_ops(register: Callable[[OpSpec], None]) -> None:
    """Register extra ops that case expressions may call, such as ``softplus(x)``.

    Called in the grader before the case files are parsed, and in each engine
    process that runs the reference engine (which computes an op from its
    ``forward`` and ``derivatives``).

    :param register: call ``register(OpSpec(name, arity, forward, derivatives))``
        once per op; ``forward(*values)`` is the value and ``derivatives(*values)``
        one local derivative per operand.  Student engines get the op through
        ``apply(name, ...)``, a method ``x.name()`` or a function ``_name``.

    Return value: none; what is passed to ``register`` counts.
    """

