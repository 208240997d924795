"""The terminal report: a line per case, details under failures, a summary per engine."""

from __future__ import annotations

from harness import hookimpl
from harness.model import ReportContext, RunResult

_LABEL = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT",
          "unsupported": "UNSUPPORTED"}
_COLOR = {"passed": "32", "failed": "31", "error": "31", "timeout": "33", "unsupported": "33"}


def _paint(text: str, code: str, context: ReportContext) -> str:
    return f"\033[{code}m{text}\033[0m" if context.color else text


def render(run: RunResult, context: ReportContext) -> str:
    """The whole report as text."""
    out: list[str] = []
    for name, e in zip(run.labels(), run.engines):
        title = f"{name} ({e.source})" if name == e.engine else f"{name}: {e.engine} ({e.source})"
        out.append(_paint(f"== {title}", "1", context))
        out.extend(load_lines(e))
        if e.load_error:
            out.append("   the submission failed to load:")
            out.extend(f"   | {line}" for line in e.load_error.splitlines())
        width = max((len(c.id) for c in e.cases), default=0)
        for c in e.cases:
            label = _paint(f"{_LABEL[c.status]:<11}", _COLOR[c.status], context)
            out.append(f"{label} {c.id:<{width}}  {c.duration_s * 1000:8.1f} ms")
            if c.status != "passed" and c.message and not e.load_error:
                out.extend(f"            | {line}" for line in c.message.splitlines())
        if e.fuzz is not None:
            out.extend(fuzz_lines(e.fuzz))
        out.extend(culprit_lines(e.cases))
        counts = ", ".join(f"{n} {s}" for s, n in e.counts.items() if n)
        summary = f"{name}: {e.score:g}/{e.max_score:g} points ({e.percent:.1f}%), {counts}"
        ok = e.counts["passed"] == len(e.cases)
        out.append(_paint(summary, "32;1" if ok else "31;1", context))
        out.append("")
    shard = f" (shard {run.shard[0]}/{run.shard[1]})" if run.shard else ""
    out.append(f"graded {len(run.engines)} engine(s) in {run.duration_s:.2f} s{shard}")
    return "\n".join(out) + "\n"


def load_lines(e) -> list[str]:
    """Where the graded engine was defined, and what loading skipped or chose."""
    lines = [f"   graded: {e.origin}"] if e.origin else []
    if e.load_notes:
        lines.append("   while loading:")
        lines.extend(f"   - {note}" for note in e.load_notes)
    return lines


def culprit_lines(cases: list, most: int = 3) -> list[str]:
    """What to fix first: the culprits blamed with high confidence, by how many cases they explain."""
    found: dict[str, list] = {}
    for c in cases:
        for d in c.diagnosis:
            if d.get("confidence") == "high":
                found.setdefault(d.get("culprit") or d.get("kind", "?"), []).append((c.id, d))
    if not found:
        return []
    ranked = sorted(found.items(), key=lambda kv: -len({cid for cid, _ in kv[1]}))
    lines = ["what to fix first:"]
    kinds = {"pattern": 0, "op": 1}  # the most general explanation first
    for culprit, hits in ranked[:most]:
        n = len({cid for cid, _ in hits})
        example, d = min(hits, key=lambda h: kinds.get(h[1].get("kind"), 2))
        text = d["message"] if d["message"].startswith(f"{culprit}:") else f"{culprit}: {d['message']}"
        lines.append(f"  - {text} ({n} case{'s' if n != 1 else ''}, e.g. {example})")
    return lines


def fuzz_lines(fuzz: dict) -> list[str]:
    """The fuzzing summary of one engine."""
    ops = sorted({f.split(" ")[0] for f in fuzz.get("forms", [])})
    lines = [f"fuzz: {fuzz.get('generated', 0)} random expressions (seed {fuzz['seed']}) over "
             f"{', '.join(ops) or 'no op'}"]
    if fuzz.get("stopped"):
        lines.append(f"      {fuzz['stopped']}")
    if fuzz.get("skipped"):
        lines.append(f"      left out: {'; '.join(fuzz['skipped'])}")
    for m in fuzz.get("minimal", []):
        lines.append(f"      shrunk failure ({m['failure']}, {m['ops']} op(s)): {m['expression']}")
    return lines


@hookimpl
def register_reporters(register):
    register("text", render)
