"""Which names a case's output depends on, read off its expressions (never from an engine).

A name's gradient is read from its *final* binding (an input, or the last step
that binds it).  The output depends on that binding when a chain of
expressions leads from the output to it and the binding itself is built from
an input: ``c: 3`` (or ``c: 2 * 3``) is a plain number, not a node, however
the output uses it.  The judge uses this to tell "no gradient reached an
unused input" (``None`` counts as 0) from "backward() left a used node
without a gradient" (a mismatch).

``repeat: N`` blocks are followed exactly without unrolling them: a block maps
a finite set of names to another, so the sequence of sets repeats with some
period and round N is found from it.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.cases.loader import Assign, Case


def dependent_names(case: Case) -> frozenset[str]:
    """The inputs and step names whose final binding the output depends on (see the module doc)."""
    built_from_input: dict[str, bool] = {}
    _forward(case.steps, frozenset(case.inputs), built_from_input)
    seen: set[str] = set()
    final_live: set[str] = set()
    live = _backward(case.steps, frozenset(case.output.names), seen, final_live)
    out = {n for n in final_live if built_from_input.get(n, False)}
    out |= {n for n in case.inputs if n in live and n not in seen}
    return frozenset(out)


def _forward(steps, nodes: frozenset, record: dict | None) -> frozenset:
    """The names bound to input-built nodes after ``steps``; ``record`` gets each name's last binding."""
    for step in steps:
        if isinstance(step, Assign):
            made = bool(step.expr.names & nodes)
            nodes = nodes | {step.name} if made else nodes - {step.name}
            if record is not None:
                record[step.name] = made
        elif step.count > 0:
            body = step.steps

            def one_round(state: frozenset, body: tuple = body) -> frozenset:
                return _forward(body, state, None)
            nodes = _rounds(one_round, nodes, step.count - 1)
            nodes = _forward(body, nodes, record)  # the last round, whose bindings may be final
    return nodes


def _backward(steps, live: frozenset, seen: set, final_live: set) -> frozenset:
    """The names needed before ``steps`` for the ``live`` names after them (liveness, walking back).

    The first binding of a name met walking back is its final one: ``seen`` collects those,
    ``final_live`` the ones the output needs.
    """
    for step in reversed(steps):
        if isinstance(step, Assign):
            if step.name not in seen:
                seen.add(step.name)
                if step.name in live:
                    final_live.add(step.name)
            if step.name in live:
                live = (live - {step.name}) | step.expr.names
        elif step.count > 0:
            body = step.steps
            live = _backward(body, live, seen, final_live)  # the last round first

            def back_round(state: frozenset, body: tuple = body) -> frozenset:
                return _backward(body, state, seen, final_live)
            live = _rounds(back_round, live, step.count - 1)
    return live


def _rounds(once: Callable[[frozenset], frozenset], state: frozenset, count: int) -> frozenset:
    """``once`` applied ``count`` times, stopping as soon as the states repeat."""
    history: dict[frozenset, int] = {}
    order: list[frozenset] = []
    for i in range(count):
        if state in history:
            start = history[state]
            period = i - start
            return order[start + (count - start) % period]
        history[state] = i
        order.append(state)
        state = once(state)
    return state
