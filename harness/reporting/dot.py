"""Graphviz DOT of each failing case's graph (``grade --graph dot``), for people who have graphviz."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from harness import Reporter, hookimpl
from harness.model import GraphPicture, ReportContext, RunResult, Status
from harness.reporting.common import Streamed, clean, node_lines


def _quote(text: str) -> str:
    text = clean(text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def digraph(title: str, graph: GraphPicture) -> str:
    """One case's graph as a DOT digraph; divergent nodes are red."""
    out = [f"digraph {_quote(title)} {{", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for n in graph.nodes:
        attrs = [f"label={_quote(chr(10).join(node_lines(n)))}"]
        if n.op == "const":
            attrs.append("shape=plaintext")
        if n.divergent:
            attrs += ["color=red", "fontcolor=red", "penwidth=1"]
        if n.id == (graph.culprit or graph.first_divergent):
            attrs += ["color=red", "penwidth=3", 'style=filled', 'fillcolor="#fff3cd"']
        if n.id == graph.output:
            attrs.append("peripheries=2")
        out.append(f"  {n.id} [{', '.join(attrs)}];")
    for e in graph.edges:
        out.append(f"  {e.source} -> {e.target} [label={_quote(str(e.position + 1))}];")
    out.append("}")
    return "\n".join(out)


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """Every failing case's graph, one digraph each, an engine at a time."""
    empty = True
    for name, e in zip(run.labels(), run.engines, strict=True):
        for c in e.cases:
            if c.status == Status.PASSED or c.graph is None:
                continue
            title = f"{name}: {c.id}"
            if c.graph.drawn:
                yield digraph(title, c.graph) + "\n"
            else:
                yield f"// {clean(title)}: graph not drawn ({c.graph.why or 'too large'})".replace("\n", " ") + "\n"
            empty = False
    if empty:
        yield "// no failing case with a graph\n"


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("dot", render)
