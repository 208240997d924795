"""The shape of a program's computation graph, worked out from its code alone (program -> graph).

Nothing here computes a value: the grading process only follows which node
is built from which.  Nodes are numbered in the order the engine process
creates them (inputs first, then every ``apply`` as the stack machine meets
it), which is also the order in which a traced run reports their values and
grads, so the two line up index by index.  That order is topological: a
node's operands always come before it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from harness.cases.expr import render
from harness.model import GraphPicture, PictureEdge, PictureNode
from harness.reporting.common import fmt

#: Stop following a program past this many nodes (its shape is then a lower bound).
SHAPE_CAP = 50_000
#: More paths than this from the output to the inputs count as "exponentially many".
PATH_CAP = 1 << 64


@dataclass(frozen=True)
class Node:
    """One node the engine creates: an input (op ``leaf``) or an op over operands."""

    op: str
    operands: tuple = ()      # (("node", index) | ("const", number), ...)
    name: str | None = None   # the input's name, or the step name last bound to it


@dataclass
class Graph:
    """The nodes of a program in creation order, and which one is the output."""

    nodes: list = field(default_factory=list)
    output: tuple | None = None   # ("node", index) | ("const", number)
    complete: bool = True         # False when the walk stopped at the cap
    _counts: dict | None = field(default=None, repr=False, compare=False)

    def users(self) -> list[list[tuple[int, int]]]:
        """For each node, the (user index, operand position) pairs that read it."""
        users: list[list] = [[] for _ in self.nodes]
        for i, node in enumerate(self.nodes):
            for pos, (kind, x) in enumerate(node.operands):
                if kind == "node":
                    users[x].append((i, pos))
        return users

    def reachable(self) -> set[int]:
        """Indices of the nodes the output depends on (the output included)."""
        if not self.output or self.output[0] != "node":
            return set()
        seen, stack = {self.output[1]}, [self.output[1]]
        while stack:
            for kind, x in self.nodes[stack.pop()].operands:
                if kind == "node" and x not in seen:
                    seen.add(x)
                    stack.append(x)
        return seen

    def label(self, index: int, max_len: int = 40) -> str:
        """A short name for a node: its input or step name, else its expression."""
        node = self.nodes[index]
        if node.name:
            if self._name_counts().get(node.name, 0) > 1:
                return f"{node.name} (node {index})"
            return node.name
        text = render(self.code(index, max_nodes=12))
        return text if len(text) <= max_len else text[: max_len - 3] + "..."

    def _name_counts(self) -> dict:
        if self._counts is None:
            counts: dict = {}
            for n in self.nodes:
                if n.name:
                    counts[n.name] = counts.get(n.name, 0) + 1
            self._counts = counts
        return self._counts

    def code(self, index: int, max_nodes: int = 12) -> list:
        """Postfix code of a node's expression, named nodes kept as names, big ones elided."""
        out: list = []
        budget = [max_nodes]

        def emit(ref, top):
            kind, x = ref
            if kind == "const":
                out.append(["const", x])
                return
            node = self.nodes[x]
            if node.op == "leaf" or (node.name and not top) or budget[0] <= 0:
                out.append(["name", node.name or f"n{x}"])
                return
            budget[0] -= 1
            for operand in node.operands:
                emit(operand, False)
            out.append(["op", node.op, len(node.operands)])

        # Expressions here are a few nodes deep (budget), so recursion is bounded.
        emit(("node", index), True)
        return out


def build(program, cap: int = SHAPE_CAP) -> Graph:
    """The program's graph, following it for at most ``cap`` nodes."""
    g = Graph()
    env: dict = {}

    def new(node: Node) -> tuple:
        if len(g.nodes) >= cap:
            raise _Full
        g.nodes.append(node)
        return ("node", len(g.nodes) - 1)

    def evaluate(code) -> tuple:
        stack: list = []
        for ins in code:
            if ins[0] == "name":
                stack.append(env[ins[1]])
            elif ins[0] == "const":
                stack.append(("const", ins[1]))
            else:
                n = ins[2]
                operands = tuple(stack[-n:])
                del stack[-n:]
                stack.append(new(Node(ins[1], operands)))
        return stack[0]

    def bind(name: str, ref: tuple) -> None:
        env[name] = ref
        if ref[0] == "node":
            g.nodes[ref[1]] = Node(g.nodes[ref[1]].op, g.nodes[ref[1]].operands, name)

    def run(steps) -> None:
        for step in steps:
            if step[0] == "set":
                bind(step[1], evaluate(step[2]))
            else:
                for _ in range(step[1]):
                    run(step[2])

    try:
        for name, _value in program.inputs:
            env[name] = new(Node("leaf", (), name))
        run(program.steps)
        out = evaluate(program.output)
        if out[0] == "const" and program.backward:
            out = new(Node("leaf", (), None))  # the worker wraps a constant output in a leaf
        g.output = out
    except _Full:
        g.complete = False
    return g


class _Full(Exception):
    """The graph reached the cap."""


@dataclass(frozen=True)
class Shape:
    """What a graph looks like, in the numbers the pattern diagnoses need."""

    nodes: int            # nodes created (a lower bound when not complete)
    depth: int            # longest chain of ops from an input to the output
    paths: int            # paths from the output down to the inputs (capped at PATH_CAP)
    reuse: bool           # some node feeds more than one operand slot
    complete: bool

    @property
    def exponential(self) -> bool:
        """Far more paths than nodes: a per-path traversal cannot finish."""
        return self.paths >= 1 << 20 and self.paths > 1000 * max(self.nodes, 1)

    @property
    def deep(self) -> bool:
        """Deeper than Python's default recursion limit allows for a recursive walk."""
        return self.depth >= 900


def shape(program, cap: int = SHAPE_CAP) -> Shape:
    """The shape of a program's graph (following at most ``cap`` nodes).

    The same numbers as :func:`shape_of` of :func:`build`'s graph, worked out in one pass that keeps only
    numbers per node, not nodes: blame wants the shape of every case of a failing submission, and a deep
    case has tens of thousands of nodes.  ``tests/unit/test_graph.py`` checks the two agree.
    """
    depth: list[int] = []
    paths: list[int] = []
    uses: list[int] = []
    operands: list[tuple[int, ...]] = []
    env: dict = {}

    def new(refs: tuple[int, ...]) -> int:
        if len(depth) >= cap:
            raise _Full
        d, p = -1, 0
        for x in refs:
            if depth[x] > d:
                d = depth[x]
            p += paths[x]
            uses[x] += 1
        depth.append(d + 1)
        paths.append(min(p, PATH_CAP) if refs else 1)
        uses.append(0)
        operands.append(refs)
        return len(depth) - 1

    def evaluate(code) -> int | None:
        """The node the code computes (None for a constant)."""
        stack: list = []
        for ins in code:
            if ins[0] == "name":
                stack.append(env[ins[1]])
            elif ins[0] == "const":
                stack.append(None)
            else:
                n = ins[2]
                refs = tuple(x for x in stack[-n:] if x is not None)
                del stack[-n:]
                stack.append(new(refs) if refs else new_op_of_constants())
        return stack[0]

    def new_op_of_constants() -> int:
        index = new(())
        depth[index] = 1  # an op (not a leaf) over constants only
        return index

    def run(steps) -> None:
        for step in steps:
            if step[0] == "set":
                env[step[1]] = evaluate(step[2])
            else:
                for _ in range(step[1]):
                    run(step[2])

    out: int | None = None
    complete = True
    try:
        for name, _value in program.inputs:
            env[name] = new(())
        run(program.steps)
        out = evaluate(program.output)
        if out is None and program.backward:
            out = new(())  # the worker wraps a constant output in a leaf
    except _Full:
        complete, out = False, None
    reuse = False
    if any(u > 1 for u in uses):  # else no node is reused, reachable or not
        reach: Collection[int] = range(len(depth))
        if complete:
            reach = {out} if out is not None else set()
            stack = list(reach)
            while stack:
                for x in operands[stack.pop()]:
                    if x not in reach:
                        reach.add(x)
                        stack.append(x)
        reuse = any(uses[i] > 1 for i in reach)
    return Shape(
        nodes=len(depth),
        depth=depth[out] if out is not None else max(depth, default=0),
        paths=paths[out] if out is not None else max(paths, default=1),
        reuse=reuse,
        complete=complete,
    )


def shape_of(g: Graph) -> Shape:
    """The shape of a built graph: the plain statement of what :func:`shape` computes."""
    depth = [0] * len(g.nodes)
    paths = [1] * len(g.nodes)
    uses = [0] * len(g.nodes)
    for i, node in enumerate(g.nodes):
        if node.op == "leaf":
            continue
        refs = [x for kind, x in node.operands if kind == "node"]
        depth[i] = 1 + max((depth[x] for x in refs), default=0)
        paths[i] = min(PATH_CAP, sum(paths[x] for x in refs)) if refs else 1
        for x in refs:
            uses[x] += 1
    reach = g.reachable() if g.complete else set(range(len(g.nodes)))
    out = g.output[1] if g.output and g.output[0] == "node" else None
    return Shape(
        nodes=len(g.nodes),
        depth=depth[out] if out is not None else max(depth, default=0),
        paths=paths[out] if out is not None else max(paths, default=1),
        reuse=any(uses[i] > 1 for i in reach),
        complete=g.complete,
    )


def picture(g: Graph, ref: dict[str, Any] | None, eng: dict[str, Any] | None, expected: dict[str, Any],
            got_by_name: dict[str, float | None], close: Callable[[float | None, float], bool],
            cap: int, culprits: Collection[str] = ()) -> GraphPicture:
    """A case's graph for drawing: each reachable node with its op, value, expected and got grads.

    ``ref`` and ``eng`` are traced runs of the reference and the engine (node by node); without
    them only the named nodes get grads, from ``expected`` and ``got_by_name``.  ``culprits``: the ops
    blame names, to pick the highlighted op among several users of the first wrong node.  ``close(got,
    want)`` says whether a grad is right.  Graphs of more than ``cap`` nodes are not drawn.
    """
    reach = g.reachable() if g.complete else set()
    if not g.complete or len(reach) > cap:
        return GraphPicture(False, f"more than {cap} nodes")
    if not reach:
        return GraphPicture(False, "the output is a plain number")
    last_named: dict[str, int] = {}
    for i, node in enumerate(g.nodes):
        if node.name:
            last_named[node.name] = i
    nodes: list[PictureNode] = []
    edges: list[PictureEdge] = []
    for i in sorted(reach):
        node = g.nodes[i]
        named = node.name if node.name and last_named.get(node.name) == i else None
        want = ref["grads"][i] if ref else (expected.get(named) if named else None)
        got = eng["grads"][i] if eng else (got_by_name.get(named) if named else None)
        if want is None and not ref and named in expected:
            want = expected[named]
        wrong = want is not None and (got is not None or want != 0) and not close(got, want)
        nodes.append(PictureNode(f"n{i}", node.op, g.label(i, 24), ref["values"][i] if ref else None,
                                 want, got, wrong))
        for pos, (kind, x) in enumerate(node.operands):
            if kind == "node":
                edges.append(PictureEdge(f"n{x}", f"n{i}", pos))
            else:
                cid = f"c{i}_{pos}"
                nodes.append(PictureNode(cid, "const", fmt(x), x))
                edges.append(PictureEdge(cid, f"n{i}", pos))
    if len(nodes) > 2 * cap:  # constants count too
        return GraphPicture(False, f"more than {2 * cap} boxes")
    first = next((n.id for n in reversed(nodes) if n.divergent and n.op != "const"), None)  # from the output down
    output = g.output[1] if g.output else 0
    return GraphPicture(True, nodes=tuple(nodes), edges=tuple(edges), output=f"n{output}",
                        first_divergent=first, culprit=_handed(first, f"n{output}", nodes, edges, culprits),
                        traced=bool(ref))


def _handed(first: str | None, output: str, nodes: list[PictureNode], edges: list[PictureEdge],
            culprits: Collection[str]) -> str | None:
    """The op node that handed ``first`` its wrong grad: ``first`` itself when it is the output (backward()
    seeds it), its only user, else the user whose op blame names, else the user whose backward runs last
    (the lowest in the graph: with "= instead of +=", its share is the one left)."""
    if first is None or first == output:
        return first
    op = {n.id: n.op for n in nodes}
    users = sorted({e.target for e in edges if e.source == first}, key=lambda n: int(n[1:]))
    if len(users) <= 1:
        return users[0] if users else first
    named = [u for u in users if op.get(u) in culprits]
    return named[0] if named else users[0]
