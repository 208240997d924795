"""A self-contained HTML report for students: scores, a filterable case table, failing graphs as SVG.

One file, no remote assets: styles, the filter script and every drawing are
inline, so it works offline.  Everything an engine said is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator

from harness import Reporter, hookimpl
from harness.model import (
    STATUSES,
    CaseResult,
    EngineResult,
    GraphPicture,
    PictureNode,
    ReportContext,
    RunResult,
    Status,
)
from harness.reporting.common import (
    Streamed,
    case_lines,
    clean,
    fix_first,
    fuzz_lines,
    ignored_note,
    node_lines,
    status_counts,
    suspect_lines,
    where_suffix,
)
from harness.reporting.layout import lay_out

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; }
.score { font-size: 2em; font-weight: bold; } .score.ok { color: #1a7f37; } .score.bad { color: #c0392b; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f6f8fa; }
.passed { color: #1a7f37; } .failed, .error { color: #c0392b; } .timeout, .unsupported { color: #b7791f; }
.filters { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid #ddd; }
.failure { border: 1px solid #ddd; border-radius: 6px; padding: .5em 1em; margin: 1em 0; }
pre { white-space: pre-wrap; background: #f6f8fa; padding: .5em; border-radius: 4px; }
.blame { margin: .2em 0; } .conf { font-size: .8em; padding: 0 .4em; border-radius: 3px; color: #fff; }
.conf.high { background: #c0392b; } .conf.medium { background: #b7791f; } .conf.low { background: #777; }
.fix-first { border-left: 4px solid #c0392b; background: #fdf3f2; padding: .4em 1em; margin: 1em 0; }
.fix-first h3 { margin: .3em 0; font-size: 1.05em; } .where { font-family: monospace; color: #555; }
.suspect { border-left: 4px solid #b7791f; background: #fdf8ec; padding: .4em 1em; }
svg.graph { max-width: 100%; height: auto; border: 1px solid #eee; }
svg .node rect { fill: #fff; stroke: #555; } svg .node.output rect { stroke-width: 2.5; }
svg .node.divergent rect { fill: #fdecea; stroke: #c0392b; }\nsvg .node.culprit rect { fill: #fff3cd; stroke: #c0392b; stroke-width: 3; }
svg .node.const rect { fill: #f3f3f3; stroke: #bbb; }
svg text { font: 11px monospace; white-space: pre; } svg .node.divergent text { fill: #c0392b; }
svg .edge { stroke: #888; fill: none; }
"""

_SCRIPT = """
function applyFilters() {
  var on = {};
  document.querySelectorAll('input.status').forEach(function (b) { on[b.value] = b.checked; });
  var q = document.getElementById('q').value.toLowerCase();
  document.querySelectorAll('[data-status]').forEach(function (el) {
    el.hidden = !(on[el.dataset.status] && el.dataset.id.toLowerCase().indexOf(q) >= 0);
  });
}
document.querySelectorAll('input.status, #q').forEach(function (el) {
  el.addEventListener('input', applyFilters);
});
"""


def _e(text: object) -> str:
    return html.escape(clean(str(text)), quote=True)


CHAR_W = 7.0      # px per character of the 11px monospace labels (0.6 em, rounded up)
LINE_H = 14.0     # px per label line
PAD = (10.0, 8.0)  # px around a box's text
MAX_CHARS = 34    # a longer label line is cut with an ellipsis (the node's tooltip has it whole)


def _label(node: PictureNode) -> list[str]:
    return [line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 1] + "\u2026" for line in node_lines(node)[:4]]


def box_size(lines: list[str]) -> tuple[float, float]:
    """The size a box needs for its label lines."""
    return (max(len(line) for line in lines) * CHAR_W + 2 * PAD[0], len(lines) * LINE_H + 2 * PAD[1])


def svg(graph: GraphPicture, title: str = "", uid: str = "g", engine: str = "auto") -> str:
    """A case's graph as inline SVG, laid out by Graphviz's dot (or grandalf), inputs on the left.

    The highlight (class ``culprit``) is on the op that handed the first wrong gradient down."""
    labels = {n.id: _label(n) for n in graph.nodes}
    lay = lay_out({n: box_size(lines) for n, lines in labels.items()},
                  [(e.source, e.target) for e in graph.edges], engine)
    out = [f'<svg class="graph" role="img" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" '
           f'width="{lay.width:.0f}" height="{lay.height:.0f}" data-layout="{lay.engine}"><title>{_e(title)}</title>',
           f'<defs><marker id="arrow-{uid}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>']
    for edge in lay.edges:
        out.append(f'<path class="edge" data-source="{_e(edge.source)}" data-target="{_e(edge.target)}" '
                   f'marker-end="url(#arrow-{uid})" d="{edge.d}"/>')
    culprit = graph.culprit or graph.first_divergent
    for n in graph.nodes:
        b = lay.boxes[n.id]
        classes = ["node"] + (["const"] if n.op == "const" else []) + (["divergent"] if n.divergent else []) + (
            ["culprit"] if n.id == culprit else []) + (["output"] if n.id == graph.output else [])
        lines = labels[n.id]
        out.append(f'<g class="{" ".join(classes)}" data-node="{_e(n.id)}">'
                   f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" rx="5"/>')
        for k, line in enumerate(lines):
            ty = b.y + PAD[1] + k * LINE_H + LINE_H - 3.5
            out.append(f'<text x="{b.x + PAD[0]:.1f}" y="{ty:.1f}">{_e(line)}</text>')
        out.append(f"<title>{_e(chr(10).join(node_lines(n)))}</title></g>")
    out.append("</svg>")
    return "".join(out)


def _failure(anchor: str, c: CaseResult, uid: str) -> str:
    parts = [f'<div class="failure" id="{_e(anchor)}" data-status="{c.status}" '
             f'data-id="{_e(c.id)}"><h3><span class="{c.status}">{c.status.upper()}</span> {_e(c.id)}</h3>']
    if c.description:
        parts.append(f"<p>{_e(c.description)}</p>")
    for d in c.diagnosis:
        on = " (on the shrunk expression)" if d.from_shrunk else ""
        where = f' <span class="where">{_e(where_suffix(d.where).strip())}</span>' if d.where else ""
        parts.append(f'<p class="blame"><span class="conf {_e(d.confidence)}">{_e(d.confidence)}</span> '
                     f"{_e(d.message + on)}{where}</p>")
    parts.append(f"<pre>{_e(chr(10).join(case_lines(c, blame=False)))}</pre>")
    if c.graph and c.graph.drawn:
        parts.append(svg(c.graph, c.id, uid))
        parts.append('<p class="legend">Red: grads that differ from the reference engine'
                     + (". Thick yellow: the op that handed the first wrong grad down"
                        if c.graph.culprit or c.graph.first_divergent else "")
                     + ". Double border: the output.</p>")
    elif c.graph:
        parts.append(f"<p>Graph not drawn: {_e(c.graph.why or 'too large')}.</p>")
    parts.append("</div>")
    return "".join(parts)


def _fix_first(cases: list[CaseResult], i: int, show_suspects: bool) -> str:
    """What to fix first, before the case table: each culprit, where, and a link to an example case."""
    parts = []
    items = fix_first(cases)
    if items:
        parts.append('<div class="fix-first"><h3>What to fix first</h3><ol>')
        for f in items:
            where = f' <span class="where">{_e(where_suffix(f.where).strip())}</span>' if f.where else ""
            n = f"{f.cases} case{'s' if f.cases != 1 else ''}"
            parts.append(f"<li>{_e(f.message)}{where} ({n}, e.g. "
                         f'<a href="#e{i}-{_e(f.example)}">{_e(f.example)}</a>)</li>')
        parts.append("</ol></div>")
    if show_suspects:
        parts += [f'<p class="suspect">{_e(line)}</p>' for line in suspect_lines(cases)]
    return "".join(parts)


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """The whole report as one HTML document, an engine's section at a time."""
    parts = _body(run)
    yield ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           f"<title>Grading report</title><style>{_STYLE}</style></head><body>" + next(parts))
    for part in parts:
        yield "\n" + part
    yield f"<script>{_SCRIPT}</script></body></html>\n"


def _body(run: RunResult) -> Iterator[str]:
    """The body's parts (joined by newlines): the filters, each engine's section, the footer."""
    yield '<h1>Autograd grading report</h1><div class="filters">Show: '
    yield from (f'<label><input type="checkbox" class="status" value="{s}" checked> {s}</label> '
                for s in STATUSES)
    yield '<input id="q" type="search" placeholder="filter by case id"></div>'
    for i, (name, e) in enumerate(zip(run.labels(), run.engines, strict=True)):
        yield "\n".join(_section(i, name, e, run))
    yield (f"<footer><p>harness {_e(run.harness_version or 'unknown')}, cases {_e(run.cases_fingerprint[:19])}, "
           f"sandbox {_e(run.sandbox)}{f', cgroup {_e(run.cgroup)}' if run.cgroup else ''}</p></footer>")


def _section(i: int, name: str, e: EngineResult, run: RunResult) -> list[str]:
    """One engine's section, as parts joined by newlines."""
    body = []
    ok = e.counts[Status.PASSED] == len(e.cases)
    counts = status_counts(e.counts)
    title = name if name == e.engine else f"{name}: {e.engine}"
    body.append(f'<section class="engine"><h2>{_e(title)} <small>({_e(e.source)})</small></h2>'
                f'<p><span class="score {"ok" if ok else "bad"}">{e.score:g}/{e.max_score:g}</span> '
                f"points ({e.percent:.1f}%): {_e(counts)}</p>")
    if e.ignored_engines:
        body.append(f"<p>{_e(ignored_note(e))}</p>")
    if e.origin:
        body.append(f'<p class="origin">graded: {_e(e.origin)}</p>')
    if e.load_notes:
        body.append("<ul class=\"notes\">" + "".join(f"<li>{_e(n)}</li>" for n in e.load_notes) + "</ul>")
    if e.load_error:
        body.append(f"<p>The submission failed to load:</p><pre>{_e(e.load_error)}</pre>")
    body.append(_fix_first(e.cases, i, show_suspects=run.audience == "instructor"))
    if e.fuzz is not None:
        body.append(f"<pre>{_e(chr(10).join(fuzz_lines(e.fuzz)))}</pre>")
    body.append("<table><tr><th>case</th><th>status</th><th>points</th><th>time</th></tr>")
    for c in e.cases:
        link = (f'<a href="#e{i}-{_e(c.id)}">{_e(c.id)}</a>' if c.status != Status.PASSED
                and not e.load_error else _e(c.id))
        body.append(f'<tr class="case" data-status="{c.status}" data-id="{_e(c.id)}"><td>{link}</td>'
                    f'<td class="{c.status}">{c.status}</td><td>{c.score:g}/{c.max_score:g}</td>'
                    f"<td>{c.duration_s * 1000:.1f} ms</td></tr>")
    body.append("</table>")
    if not e.load_error:
        body += [_failure(f"e{i}-{c.id}", c, f"{i}-{k}") for k, c in enumerate(e.cases)
                 if c.status != Status.PASSED]
    body.append("</section>")
    return body


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("html", render)
