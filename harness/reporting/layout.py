"""Where each box and edge of a drawn graph goes: a layered (Sugiyama) layout from a well-kept library.

Inputs on the left, the output on the right.  Graphviz's ``dot`` program lays the graph out when it is
installed (run with ``-Tjson`` and a timeout; it gets only generated names and box sizes, never a label,
so nothing an engine said reaches it); otherwise grandalf, a pure-Python Sugiyama implementation, so a
plain ``pip install`` still draws.  Either way every box has the size its text needs, boxes never overlap,
and no edge passes through a box it does not join:

- ``dot`` routes its own splines around the boxes;
- with grandalf, an edge runs horizontally inside a column (at its own box's height, or at its dummy
  vertex's, which the layout keeps clear of the column's boxes) and turns only in the gaps between columns.

Imports only the standard library (and grandalf, on first use).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

DOT_TIMEOUT = 10.0   # seconds for one dot run; a slower one falls back to grandalf
MARGIN = 8.0         # around the drawing
NODE_GAP = 16.0      # between boxes of one column
RANK_GAP = 48.0      # between columns
Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """A node's box: top-left corner and size."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> Point:
        return self.x + self.w / 2, self.y + self.h / 2

    def contains(self, p: Point, inset: float = 0.0) -> bool:
        """Whether ``p`` is inside the box shrunk by ``inset`` on every side."""
        return (self.x + inset < p[0] < self.x + self.w - inset) and (self.y + inset < p[1] < self.y + self.h - inset)


@dataclass(frozen=True)
class EdgePath:
    """An edge as an SVG path (``d``) and points sampled along it (for checking the geometry)."""

    source: str
    target: str
    d: str
    samples: tuple[Point, ...]


@dataclass(frozen=True)
class Layout:
    """Every node's box and every edge's path; ``engine`` is "dot" or "grandalf"."""

    boxes: dict[str, Box]
    edges: tuple[EdgePath, ...]
    width: float
    height: float
    engine: str


def dot_available() -> bool:
    return shutil.which("dot") is not None


def lay_out(sizes: dict[str, tuple[float, float]], edges: Sequence[tuple[str, str]], engine: str = "auto") -> Layout:
    """Lay out nodes of the given (width, height) and the edges (source id, target id) between them.

    ``engine``: "dot", "grandalf" or "auto" (dot when installed and it answers, else grandalf).
    """
    edges = [(a, b) for a, b in edges if a in sizes and b in sizes and a != b]
    if engine in ("auto", "dot") and dot_available():
        lay = _with_dot(sizes, edges)
        if lay is not None or engine == "dot":
            if lay is None:
                raise RuntimeError("dot failed to lay out the graph")
            return lay
    elif engine == "dot":
        raise RuntimeError("dot is not installed")
    return _with_grandalf(sizes, edges)


# ---- Graphviz dot ----------------------------------------------------------------------------------------

def _with_dot(sizes: dict[str, tuple[float, float]], edges: list[tuple[str, str]]) -> Layout | None:
    names = {n: f"v{k}" for k, n in enumerate(sizes)}  # generated names: nothing of the engine's reaches dot
    back = {v: n for n, v in names.items()}
    lines = ["digraph G {", "rankdir=LR;", f"nodesep={NODE_GAP / 72:.3f};", f"ranksep={RANK_GAP / 72:.3f};",
             'node [shape=box, fixedsize=true, label=""];', "edge [arrowsize=0.7];"]
    lines += [f"{names[n]} [width={w / 72:.4f}, height={h / 72:.4f}];" for n, (w, h) in sizes.items()]
    lines += [f"{names[a]} -> {names[b]};" for a, b in edges]
    lines.append("}")
    try:
        done = subprocess.run(["dot", "-Tjson"], input="\n".join(lines), capture_output=True, text=True,
                              timeout=DOT_TIMEOUT, check=False)
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout)
        _, _, bw, bh = (float(v) for v in data["bb"].split(","))
        gvid = {}
        boxes = {}
        for obj in data.get("objects", []):
            if obj.get("name") not in back:
                continue
            n = back[obj["name"]]
            gvid[obj["_gvid"]] = n
            cx, cy = (float(v) for v in obj["pos"].split(","))
            w, h = sizes[n]
            boxes[n] = Box(cx - w / 2 + MARGIN, bh - cy - h / 2 + MARGIN, w, h)
        paths = []
        for e in data.get("edges", []):
            a, b = gvid[e["tail"]], gvid[e["head"]]
            paths.append(_dot_edge(a, b, e["pos"], bh))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None
    if set(boxes) != set(sizes):
        return None
    return Layout(boxes, tuple(paths), bw + 2 * MARGIN, bh + 2 * MARGIN, "dot")


def _dot_edge(a: str, b: str, pos: str, bh: float) -> EdgePath:
    """dot's spline (``e,x,y p0 p1 p2 p3 ...``, y upwards) as an SVG path ending at the arrow's tip."""
    end = None
    points: list[Point] = []
    for part in pos.split():
        if part.startswith(("e,", "s,")):
            _, x, y = part.split(",")
            if part[0] == "e":
                end = (float(x) + MARGIN, bh - float(y) + MARGIN)
            continue
        x, y = part.split(",")
        points.append((float(x) + MARGIN, bh - float(y) + MARGIN))
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    samples: list[Point] = [points[0]]
    for k in range(1, len(points) - 2, 3):
        p0, p1, p2, p3 = points[k - 1], points[k], points[k + 1], points[k + 2]
        d.append(f"C{p1[0]:.1f},{p1[1]:.1f} {p2[0]:.1f},{p2[1]:.1f} {p3[0]:.1f},{p3[1]:.1f}")
        samples += [_bezier(p0, p1, p2, p3, t / 16) for t in range(1, 17)]
    if end is not None:
        d.append(f"L{end[0]:.1f},{end[1]:.1f}")
        samples += _line(samples[-1], end)
    return EdgePath(a, b, " ".join(d), tuple(samples))


def _bezier(p0: Point, p1: Point, p2: Point, p3: Point, t: float) -> Point:
    u = 1 - t
    return (u ** 3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t ** 3 * p3[0],
            u ** 3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t ** 3 * p3[1])


def _line(p: Point, q: Point, step: float = 2.0) -> list[Point]:
    n = max(1, int(max(abs(q[0] - p[0]), abs(q[1] - p[1])) / step))
    return [(p[0] + (q[0] - p[0]) * k / n, p[1] + (q[1] - p[1]) * k / n) for k in range(1, n + 1)]


# ---- grandalf --------------------------------------------------------------------------------------------

class _View:
    """A vertex's size as grandalf sees it: it lays out top-down, so width and height are swapped
    (its layers become our columns)."""

    def __init__(self, w: float, h: float):
        self.w, self.h = h, w
        self.xy = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[Point] = []

    def setpath(self, points: list) -> None:
        self.points = [(float(x), float(y)) for x, y in points]


def _with_grandalf(sizes: dict[str, tuple[float, float]], edges: list[tuple[str, str]]) -> Layout:
    from grandalf.graphs import Edge, Vertex, graph_core
    from grandalf.layouts import SugiyamaLayout
    from grandalf.routing import route_with_lines

    vertices = {n: Vertex(n) for n in sizes}
    for n, v in vertices.items():
        v.view = _View(*sizes[n])
    gedges = []
    for a, b in edges:
        e = Edge(vertices[a], vertices[b])
        e.view = _EdgeView()
        gedges.append(e)
    boxes: dict[str, Box] = {}
    paths: list[EdgePath] = []
    top = MARGIN
    width = 0.0
    for part in _parts(list(sizes), edges):  # each connected part, one under the other
        # built in a fixed order (grandalf's Graph collects edges in a set, which would make the drawing
        # differ from run to run)
        comp = graph_core([vertices[n] for n in part], [e for e in gedges if e.v[0].data in part])
        sug = SugiyamaLayout(comp)
        sug.xspace, sug.yspace = NODE_GAP, RANK_GAP
        sug.route_edge = route_with_lines
        roots = [v for v in comp.sV if not v.e_in()]
        sug.init_all(roots=roots, optimize=True)
        sug.draw(3)
        placed = {v.data: v.view.xy for v in comp.sV}  # (across a column, along the columns)
        dummies = [p for e in comp.sE for p in e.view.points[1:-1]]
        lo = min([xy[0] - sizes[n][1] / 2 for n, xy in placed.items()] + [p[0] - NODE_GAP for p in dummies])
        left = min(xy[1] - sizes[n][0] / 2 for n, xy in placed.items())

        def at(p: Point, lo: float = lo, left: float = left, top: float = top) -> Point:
            return p[1] - left + MARGIN, p[0] - lo + top  # transpose: grandalf's layers become columns

        for n, (gx, gy) in placed.items():
            cx, cy = at((gx, gy))
            w, h = sizes[n]
            boxes[n] = Box(cx - w / 2, cy - h / 2, w, h)
        columns: dict[float, tuple[float, float]] = {}  # a column's x center -> its left and right
        for n in placed:
            box = boxes[n]
            cx = round(box.center[0], 3)
            lft, rgt = columns.get(cx, (box.x, box.x + box.w))
            columns[cx] = (min(lft, box.x), max(rgt, box.x + box.w))
        for e in comp.sE:
            pts = [at(p) for p in e.view.points] or [boxes[e.v[0].data].center, boxes[e.v[1].data].center]
            paths.append(_routed(e.v[0].data, e.v[1].data, pts, boxes, columns))
        bottom = max([bx.y + bx.h for n, bx in boxes.items() if n in placed]
                     + [at(p)[1] + NODE_GAP for p in dummies])
        width = max(width, max(bx.x + bx.w for bx in boxes.values()) + MARGIN)
        top = bottom + NODE_GAP * 2
    return Layout(boxes, tuple(paths), width, top - NODE_GAP * 2 + MARGIN, "grandalf")


def _parts(nodes: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """The connected parts of the graph, each in the nodes' order, in the order of their first node."""
    part = {n: n for n in nodes}

    def root(n: str) -> str:
        while part[n] != n:
            part[n] = part[part[n]]
            n = part[n]
        return n

    for a, b in edges:
        part[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _routed(a: str, b: str, pts: list[Point], boxes: dict[str, Box], columns: dict) -> EdgePath:
    """An edge through grandalf's points (source center, dummy vertices, target center): horizontal inside
    each column, a straight turn in the gaps between columns."""
    src, dst = boxes[a], boxes[b]

    def span(x: float) -> tuple[float, float]:
        near = min(columns, key=lambda c: abs(c - x))
        return columns[near] if abs(near - x) < 1 else (x, x)  # a column of dummies only has no width

    way: list[Point] = [(src.x + src.w, src.center[1]), (span(src.center[0])[1], src.center[1])]
    for p in pts[1:-1]:
        lft, rgt = span(p[0])
        way += [(lft, p[1]), (rgt, p[1])]
    way += [(span(dst.center[0])[0], dst.center[1]), (dst.x, dst.center[1])]
    d = f"M{way[0][0]:.1f},{way[0][1]:.1f} " + " ".join(f"L{x:.1f},{y:.1f}" for x, y in way[1:])
    samples: list[Point] = [way[0]]
    for p, q in zip(way, way[1:]):
        samples += _line(p, q)
    return EdgePath(a, b, d, tuple(samples))
