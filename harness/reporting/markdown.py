"""A Markdown summary for ``$GITHUB_STEP_SUMMARY``: a table per engine, failures first."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from harness import Reporter, hookimpl
from harness.model import EngineResult, ReportContext, RunResult, Status
from harness.reporting.common import (
    Streamed,
    case_lines,
    clean,
    fix_first,
    ignored_note,
    lines_chunk,
    status_counts,
    suspect_lines,
    where_text,
)

_ICON = {Status.PASSED: "✅", Status.FAILED: "❌", Status.ERROR: "💥", Status.TIMEOUT: "⏱️",
         Status.UNSUPPORTED: "➖"}
#: Table order: what needs attention first.
ORDER = (Status.FAILED, Status.ERROR, Status.TIMEOUT, Status.UNSUPPORTED, Status.PASSED)


_MARKUP = re.compile(r"([\\`*_\[\]~|#$])")


def cell(text: str) -> str:
    """Text that stays inside one table cell and renders literally: no HTML, no emphasis, no control
    characters."""
    import html  # here, not at start-up: most runs write another format

    text = _MARKUP.sub(r"\\\1", html.escape(clean(text.strip()), quote=False))
    return text.replace("\n", "<br>")


def fix_first_markdown(cases: list) -> list[str]:
    """What to fix first, as a numbered list (and a blank line), or nothing."""
    items = fix_first(cases)
    if not items:
        return []
    out = ["**What to fix first:**", ""]
    for k, f in enumerate(items, 1):
        where = f" (`{cell(where_text(f.where))}`)" if f.where else ""
        n = f"{f.cases} case{'s' if f.cases != 1 else ''}"
        out.append(f"{k}. {cell(f.message)}{where}: {n}, e.g. `{f.example}`")
    return out + [""]


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """The summary as Markdown, an engine at a time."""
    yield lines_chunk(["## Grading report", ""])
    for label, e in zip(run.labels(), run.engines, strict=True):
        yield lines_chunk(_engine_lines(label, e, run))
    yield lines_chunk([f"Graded {len(run.engines)} engine(s) in {run.duration_s:.2f} s (sandbox: {cell(run.sandbox)}"
                       + (f"; cgroup: {cell(run.cgroup)}" if run.cgroup else "") + ")."])


def _engine_lines(label: str, e: EngineResult, run: RunResult) -> list[str]:
    out: list[str] = []
    ok = e.counts[Status.PASSED] == len(e.cases)
    out.append(f"### {'✅' if ok else '❌'} {cell(label)}: {e.score:g}/{e.max_score:g} points "
               f"({e.percent:.1f}%)")
    out.append("")
    out.append(f"engine {cell(e.engine)} from {cell(e.source)}: {status_counts(e.counts)}")
    out.append("")
    if e.ignored_engines:
        out.append(cell(ignored_note(e)))
    if e.origin:
        out.append(f"graded: {cell(e.origin)}")
        out.append("")
    if e.load_notes:
        out.extend(f"- {cell(note)}" for note in e.load_notes)
        out.append("")
    if e.load_error:
        out.append("> **The submission failed to load:**<br>" + cell(e.load_error))
        out.append("")
    out += fix_first_markdown(e.cases)
    if run.audience == "instructor":
        out += [f"> {cell(line)}" for line in suspect_lines(e.cases)] + [""] * bool(suspect_lines(e.cases))
    out.append("| status | case | points | details |")
    out.append("|---|---|---|---|")
    for c in sorted(e.cases, key=lambda c: ORDER.index(c.status)):
        details = "" if c.status == Status.PASSED or e.load_error else cell("\n".join(case_lines(c)))
        points = f"{c.score:g}/{c.max_score:g}"
        out.append(f"| {_ICON[c.status]} {c.status} | `{c.id}` | {points} | {details} |")
    out.append("")
    return out


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("markdown", render)
