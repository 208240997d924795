"""The terminal report: a line per case, details under failures, a summary per engine.

Everything an engine said is shown with its control characters escaped, so a name or a message
cannot move the cursor or recolor the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from harness import Reporter, hookimpl
from harness.model import EngineResult, ReportContext, RunResult, Status
from harness.reporting.common import (
    Streamed,
    case_lines,
    clean,
    culprit_lines,
    fuzz_lines,
    ignored_note,
    status_counts,
    suspect_lines,
)

_LABEL = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.ERROR: "ERROR", Status.TIMEOUT: "TIMEOUT",
          Status.UNSUPPORTED: "UNSUPPORTED"}
_COLOR = {Status.PASSED: "32", Status.FAILED: "31", Status.ERROR: "31", Status.TIMEOUT: "33",
          Status.UNSUPPORTED: "33"}


def _paint(text: str, code: str, context: ReportContext) -> str:
    return f"\033[{code}m{text}\033[0m" if context.color else text


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """The report as text, an engine at a time (the engines are read one by one)."""
    for name, e in zip(run.labels(), run.engines, strict=True):
        yield "\n".join(_engine_lines(name, e, run, context)) + "\n\n"
    shard = f" (shard {run.shard[0]}/{run.shard[1]})" if run.shard else ""
    warning = f" (warning: {clean(run.sandbox_warning)})" if run.sandbox_warning else ""
    yield (f"graded {len(run.engines)} engine(s) in {run.duration_s:.2f} s{shard}; "
           f"sandbox: {clean(run.sandbox)}{warning}" + (f"; cgroup: {clean(run.cgroup)}" if run.cgroup else "") + "\n")


def _engine_lines(name: str, e: EngineResult, run: RunResult, context: ReportContext) -> list[str]:
    out: list[str] = []
    title = f"{name} ({e.source})" if name == e.engine else f"{name}: {e.engine} ({e.source})"
    out.append(_paint(f"== {clean(title)}", "1", context))
    out.extend(load_lines(e))
    if e.ignored_engines:
        out.append(f"   {ignored_note(e)}")
    if e.load_error:
        out.append("   the submission failed to load:")
        out.extend(f"   | {line}" for line in clean(e.load_error).split("\n"))
    width = max((len(c.id) for c in e.cases), default=0)
    for c in e.cases:
        label = _paint(f"{_LABEL[c.status]:<11}", _COLOR[c.status], context)
        out.append(f"{label} {c.id:<{width}}  {c.duration_s * 1000:8.1f} ms")
        lines = case_lines(c) if c.status != Status.PASSED and not e.load_error else []
        out.extend(f"            | {line}" for line in clean("\n".join(lines)).split("\n") if lines)
    if e.fuzz is not None:
        out.extend(clean(line) for line in fuzz_lines(e.fuzz))
    out.extend(clean(line) for line in culprit_lines(e.cases))
    if run.audience == "instructor":
        out.extend(clean(line) for line in suspect_lines(e.cases))
    summary = f"{clean(name)}: {e.score:g}/{e.max_score:g} points ({e.percent:.1f}%), {status_counts(e.counts)}"
    ok = e.counts[Status.PASSED] == len(e.cases)
    out.append(_paint(summary, "32;1" if ok else "31;1", context))
    return out


render = Streamed(chunks)


def load_lines(e: EngineResult) -> list[str]:
    """Where the graded engine was defined, and what loading skipped or chose."""
    lines = [f"   graded: {clean(e.origin)}"] if e.origin else []
    if e.load_notes:
        lines.append("   while loading:")
        lines.extend(f"   - {clean(note)}" for note in e.load_notes)
    return lines


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("text", render)
