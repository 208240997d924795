"""Graphviz DOT of each failing case's graph (``grade --graph dot``), for people who have graphviz."""

from __future__ import annotations

from harness import hookimpl
from harness.judging.compare import fmt
from harness.model import ReportContext, RunResult


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def node_lines(node: dict) -> list[str]:
    """The text shown in a node: label and op, value, expected and got grads."""
    if node["op"] == "const":
        return [node["label"]]
    head = node["label"] if node["op"] in ("leaf", node["label"]) else f"{node['op']}: {node['label']}"
    lines = [head]
    if node.get("value") is not None:
        lines.append(f"value {fmt(node['value'])}")
    want, got = node.get("expected_grad"), node.get("got_grad")
    if want is not None or got is not None:
        lines.append(f"grad {fmt(got)}")
        if want is not None and node["divergent"]:
            lines.append(f"expected {fmt(want)}")
    return lines


def digraph(title: str, graph: dict) -> str:
    """One case's graph as a DOT digraph; divergent nodes are red."""
    out = [f"digraph {_quote(title)} {{", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for n in graph["nodes"]:
        attrs = [f"label={_quote(chr(10).join(node_lines(n)))}"]
        if n["op"] == "const":
            attrs.append("shape=plaintext")
        if n["divergent"]:
            attrs += ["color=red", "fontcolor=red", "penwidth=2" if n["id"] == graph.get("first_divergent")
                      else "penwidth=1"]
        if n["id"] == graph.get("output"):
            attrs.append("peripheries=2")
        out.append(f"  {n['id']} [{', '.join(attrs)}];")
    for a, b, pos in graph["edges"]:
        out.append(f"  {a} -> {b} [label={_quote(str(pos + 1))}];")
    out.append("}")
    return "\n".join(out)


def render(run: RunResult, context: ReportContext) -> str:
    """Every failing case's graph, one digraph each."""
    out = []
    for name, e in zip(run.labels(), run.engines):
        for c in e.cases:
            if c.status == "passed" or c.graph is None:
                continue
            title = f"{name}: {c.id}"
            if c.graph.get("drawn"):
                out.append(digraph(title, c.graph))
            else:
                out.append(f"// {title}: graph not drawn ({c.graph.get('why', 'too large')})")
    if not out:
        out.append("// no failing case with a graph")
    return "\n".join(out) + "\n"


@hookimpl
def register_reporters(register):
    register("dot", render)
