"""A layered layout for small computation graphs, in pure Python (no graphviz binary needed).

Inputs on the left, the output on the right: each node goes in the column of
its topological depth (the longest path from an input to it), a node with no
operands that only feeds one op (a constant) sits just left of its user, and
a few barycenter sweeps order each column to cut down edge crossings.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Top-left corner of each node's box, and the size of the whole drawing."""

    positions: dict
    width: float
    height: float


def layered(nodes: list[str], edges: list[tuple[str, str]], *, box: tuple[float, float] = (150, 56),
            gap: tuple[float, float] = (50, 18), pull_right: Collection[str] = frozenset(), sweeps: int = 4) -> Layout:
    """Place ``nodes`` (ids) given ``edges`` (operand id, user id); ``pull_right`` sources sit next to their user."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in preds and b in preds:
            preds[b].append(a)
            succs[a].append(b)
    layer = _depths(nodes, preds, succs)
    for n in nodes:
        if n in pull_right and not preds[n] and succs[n]:
            layer[n] = max(0, min(layer[s] for s in succs[n]) - 1)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    order = [columns.get(i, []) for i in range(max(layer.values(), default=0) + 1)]
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        indices = range(1, len(order)) if forward else range(len(order) - 2, -1, -1)
        for i in indices:
            ref = order[i - 1] if forward else order[i + 1]
            rank = {n: k for k, n in enumerate(ref)}
            near = preds if forward else succs

            def center(n: str, col: list[str] = order[i], rank: dict[str, int] = rank,
                       near: dict[str, list[str]] = near) -> float:
                ks = [rank[m] for m in near[n] if m in rank]
                return sum(ks) / len(ks) if ks else col.index(n)

            order[i] = sorted(order[i], key=center)
    (w, h), (gx, gy) = box, gap
    tallest = max((len(col) for col in order), default=1)
    positions = {}
    for i, col in enumerate(order):
        top = (tallest - len(col)) * (h + gy) / 2  # center each column vertically
        for k, n in enumerate(col):
            positions[n] = (gx / 2 + i * (w + gx), gy / 2 + top + k * (h + gy))
    return Layout(positions, len(order) * (w + gx), tallest * (h + gy))


def _depths(nodes: list[str], preds: dict, succs: dict) -> dict[str, int]:
    """Longest path from a source to each node (Kahn's order; nodes on a cycle get depth 0)."""
    waiting = {n: len(preds[n]) for n in nodes}
    depth = {n: 0 for n in nodes}
    ready = [n for n in nodes if waiting[n] == 0]
    while ready:
        n = ready.pop()
        for s in succs[n]:
            depth[s] = max(depth[s], depth[n] + 1)
            waiting[s] -= 1
            if waiting[s] == 0:
                ready.append(s)
    return depth
