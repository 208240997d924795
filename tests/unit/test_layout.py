"""The graph layout (harness.reporting.layout), checked on its computed coordinates for both backends:
boxes never overlap, each label fits its box, no edge passes through a box it does not join; and the
highlight is the op that handed the first wrong grad down."""

from __future__ import annotations

import itertools
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.diagnosis.graph import _handed
from harness.model import GraphPicture, PictureEdge, PictureNode
from harness.reporting import html
from harness.reporting.layout import Box, Layout, lay_out

DOT = pytest.param("dot", marks=[pytest.mark.slow,  # runs the dot program as a subprocess
                                 pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot is not installed")])
BACKENDS = [DOT, "grandalf"]

# w1*x1 + w2*x2 + b, then tanh: the picture of the issue, where an edge ran behind the wrong node
NEURON = GraphPicture(True, nodes=(
    PictureNode("n0", "leaf", "x1", 2.0, -1.5, -1.5), PictureNode("n1", "leaf", "w1", -3.0, 1.0, 1.0),
    PictureNode("n2", "leaf", "x2", 0.0, 0.5, 0.5), PictureNode("n3", "leaf", "w2", 1.0, 0.0, 0.0),
    PictureNode("n4", "leaf", "b", 6.8813735870195432, 0.5, 0.5),
    PictureNode("n5", "mul", "w1*x1", -6.0, 0.5, 0.5), PictureNode("n6", "mul", "w2*x2", 0.0, 0.5, 0.5),
    PictureNode("n7", "add", "w1*x1 + w2*x2", -6.0, 0.5, 0.5),
    PictureNode("n8", "add", "w1*x1 + w2*x2 + b", 0.8813735870195432, 0.5, 0.9, divergent=True),
    PictureNode("n9", "tanh", "tanh(w1*x1 + w2*x2 + b)", 0.7071067811865476, 1.0, 1.0),
    PictureNode("c9_1", "const", "2")),
    edges=(PictureEdge("n1", "n5", 0), PictureEdge("n0", "n5", 1), PictureEdge("n3", "n6", 0),
           PictureEdge("n2", "n6", 1), PictureEdge("n5", "n7", 0), PictureEdge("n6", "n7", 1),
           PictureEdge("n7", "n8", 0), PictureEdge("n4", "n8", 1), PictureEdge("n8", "n9", 0),
           PictureEdge("c9_1", "n9", 1)),
    output="n9", first_divergent="n8", culprit="n9", traced=True)


def check_geometry(lay: Layout, sizes: dict[str, tuple[float, float]], edges: list[tuple[str, str]]) -> None:
    """The properties every drawing must have."""
    assert set(lay.boxes) == set(sizes)
    for n, (w, h) in sizes.items():  # each box as big as its text needs
        b = lay.boxes[n]
        assert b.w >= w - 0.01 and b.h >= h - 0.01, n
        assert b.x >= 0 and b.y >= 0 and b.x + b.w <= lay.width + 0.01 and b.y + b.h <= lay.height + 0.01, n
    for (m, a), (n, b) in itertools.combinations(lay.boxes.items(), 2):
        assert not _overlap(a, b), (m, n, a, b)
    assert sorted((e.source, e.target) for e in lay.edges) == sorted(edges)
    for e in lay.edges:
        first, last = e.samples[0], e.samples[-1]
        assert _near(first, lay.boxes[e.source]) and _near(last, lay.boxes[e.target]), e
        for n, box in lay.boxes.items():
            if n in (e.source, e.target):
                continue
            inside = [p for p in e.samples if box.contains(p, inset=1.0)]
            assert not inside, f"edge {e.source}->{e.target} passes through {n}: {inside[:3]}"


def _overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def _near(p: tuple[float, float], b: Box, slack: float = 12.0) -> bool:
    return b.x - slack <= p[0] <= b.x + b.w + slack and b.y - slack <= p[1] <= b.y + b.h + slack


def picture_sizes(g: GraphPicture) -> dict[str, tuple[float, float]]:
    return {n.id: html.box_size(html._label(n)) for n in g.nodes}


@pytest.mark.parametrize("engine", BACKENDS)
def test_the_neuron_is_drawn_cleanly(engine):
    sizes, edges = picture_sizes(NEURON), [(e.source, e.target) for e in NEURON.edges]
    lay = lay_out(sizes, edges, engine)
    assert lay.engine == engine
    check_geometry(lay, sizes, edges)
    xs = {n: lay.boxes[n].center[0] for n in sizes}
    assert all(xs[a] < xs[b] for a, b in edges)  # inputs on the left, the output on the right


@st.composite
def dags(draw):
    n = draw(st.integers(1, 12))
    sizes = {f"n{k}": (draw(st.integers(20, 240)), draw(st.sampled_from([30, 44, 58, 72]))) for k in range(n)}
    edges = sorted({(f"n{a}", f"n{b}") for b in range(n) for a in draw(st.sets(st.integers(0, max(0, b - 1)),
                                                                                 max_size=3)) if a < b})
    return sizes, edges


@pytest.mark.parametrize("engine", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(graph=dags())
def test_random_graphs_keep_every_property(engine, graph):
    sizes, edges = graph
    check_geometry(lay_out(sizes, edges, engine), sizes, edges)


def test_the_svg_is_self_contained_and_highlights_the_culprit_op():
    out = html.svg(NEURON, "neuron", engine="grandalf")
    assert out.startswith("<svg") and "http" not in out.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'class="node culprit output" data-node="n9"' in out  # tanh handed the add its wrong grad
    assert 'class="node divergent" data-node="n8"' in out
    assert out.count('<path class="edge"') == len(NEURON.edges)


def test_a_label_is_never_sent_to_dot(monkeypatch):
    sent = []

    def run(args, input, **kwargs):  # noqa: A002 (subprocess.run's own name)
        sent.append(input)
        raise OSError("no dot here")

    monkeypatch.setattr("harness.reporting.layout.shutil.which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr("harness.reporting.layout.subprocess.run", run)
    sizes = {'x"; evil -> y [label="\\N"]; //': (40.0, 30.0), "y": (40.0, 30.0)}
    lay = lay_out(sizes, [('x"; evil -> y [label="\\N"]; //', "y")])
    assert lay.engine == "grandalf"  # dot failed: the fallback drew it
    assert sent and "evil" not in sent[0] and "label" not in sent[0].replace('label=""', "")


def test_the_highlight_is_the_op_that_handed_the_wrong_grad():
    nodes = [PictureNode("n0", "leaf", "x"), PictureNode("n1", "log", "log(x)"), PictureNode("n2", "mul", "x * log(x)")]
    edges = [PictureEdge("n0", "n1", 0), PictureEdge("n0", "n2", 0), PictureEdge("n1", "n2", 1)]
    assert _handed("n1", "n2", nodes, edges, ()) == "n2"          # one user: it handed the grad
    assert _handed("n2", "n2", nodes, edges, ()) == "n2"          # the output: backward() seeds it
    assert _handed("n0", "n2", nodes, edges, {"log"}) == "n1"     # several users: the one blame names
    assert _handed("n0", "n2", nodes, edges, {"mul"}) == "n2"
    assert _handed("n0", "n2", nodes, edges, ()) == "n1"          # else the one whose backward runs last
    assert _handed(None, "n2", nodes, edges, ()) is None


@pytest.mark.parametrize("engine", BACKENDS)
def test_the_same_graph_is_drawn_the_same_way_every_time(engine):
    assert len({html.svg(NEURON, "neuron", engine=engine) for _ in range(6)}) == 1
