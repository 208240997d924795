"""Formatting shared by every report format: numbers, mismatch sentences, a case's message, escaping.

A case's text is composed here, once, from the typed fields of its result
(``harness.model``); no format parses text back out of another's output.
Imports only ``harness.model``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.model import (
    CaseContext,
    CaseResult,
    Confidence,
    Diagnosis,
    DiagnosisKind,
    EngineResult,
    FuzzSummary,
    Mismatch,
    MismatchKind,
    PictureNode,
    ReportContext,
    RunResult,
    Shrunk,
    Verdict,
    Where,
)

#: Characters that may move a terminal's cursor, change its colors, reorder text (bidi controls) or
#: break lines where a report does not expect it: C0 controls but tab and newline, DEL, C1 controls,
#: Unicode line/paragraph separators and direction marks, embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """``text`` with control characters written as visible escapes (``\\x1b``, ``\\u202e``); tab and
    newline are kept, and a CRLF becomes a newline."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


class Streamed:
    """A report format that writes its report piece by piece: ``chunks(run, context)`` yields its text in
    order, reading the run's engines one at a time, and ``grade`` writes each piece as it comes, so that a
    batch's report never is one giant string.  Called, it returns the whole text, as any
    ``harness.Reporter`` does."""

    def __init__(self, chunks: Callable[[RunResult, ReportContext], Iterable[str]]):
        self.chunks = chunks
        self.__doc__ = chunks.__doc__

    def __call__(self, run: RunResult, context: ReportContext) -> str:
        return "".join(self.chunks(run, context))


def fmt(x: float | None) -> str:
    """A number as a person reads it."""
    if x is None:
        return "None"
    if isinstance(x, int):  # an input may be an int too large for a float
        text = str(x)
        return text if len(text) <= 20 else f"{text[:6]}...({len(text)} digits)"
    if math.isfinite(x) and x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return f"{x:.10g}"


def mismatch_sentence(m: Mismatch) -> str:
    """``grad of x: expected 36, got -36``; a gradient the engine did not give is ``no gradient (None)``."""
    got = "no gradient (None)" if m.got is None and m.kind == MismatchKind.GRAD else fmt(m.got)
    return f"{m.quantity}: expected {fmt(m.expected)}, got {got}"


def context_line(ctx: CaseContext) -> str:
    """What the case asked: ``inputs a=1, b=2; output = a - b; backward() x1; tolerance ...``."""
    inputs = ", ".join(f"{k}={fmt(v)}" for k, v in ctx.inputs.items())
    return (f"inputs {inputs or '(none)'}; output = {ctx.output}; backward() x{ctx.backward}; "
            f"tolerance abs {ctx.tolerance_abs:g} + rel {ctx.tolerance_rel:g}")


def blame_line(d: Diagnosis) -> str:
    """One diagnosis as a line under its case."""
    if d.kind == DiagnosisKind.CASE:  # a suspect case: no blame on the engine
        return d.message
    if d.from_shrunk:
        return f"blame ({d.confidence} confidence, on the shrunk expression): {d.message}"
    because = f" ({'; '.join(d.evidence)})" if d.evidence and d.kind == DiagnosisKind.PATTERN else ""
    return f"blame ({d.confidence} confidence): {d.message}{because}{where_suffix(d.where)}"


def summary(c: CaseResult | Shrunk | Verdict) -> str:
    """One line saying what went wrong (or the verdict's note): the first mismatch, else the
    first line of the verdict's own words, else the status."""
    if c.mismatches:
        return mismatch_sentence(c.mismatches[0])
    return c.message.partition("\n")[0] if c.message else str(c.status)


def shrunk_line(s: Shrunk) -> str:
    """``shrunk to 1 op(s): a - b at a=1, b=2: grad of b: expected -1, got 1``."""
    return f"shrunk to {s.ops} op(s): {s.expression}: {summary(s)}"


def case_lines(c: CaseResult, *, blame: bool = True) -> list[str]:
    """A case's whole message, line by line: the verdict, what the case asked, the judge's guess
    or the blame that replaces it, and a fuzz case's shrunk expression.  ``blame=False`` leaves
    the diagnoses out (for formats that show them on their own)."""
    lines = c.message.split("\n") if c.message else []
    lines += [mismatch_sentence(m) for m in c.mismatches]
    if c.context is not None:
        lines.append(context_line(c.context))
        if c.description:
            lines.append(f"case: {c.description}")
    own = [d for d in c.diagnosis if not d.from_shrunk]
    if blame:
        lines += [blame_line(d) for d in own]
    if c.hint and not own:
        lines.append(f"likely: {c.hint}")
    if c.shrunk is not None:
        lines.append(shrunk_line(c.shrunk))
        if blame:
            lines += [blame_line(d) for d in c.diagnosis if d.from_shrunk]
    return lines


def case_text(c: CaseResult) -> str:
    """A case's whole message as one text (the JSON report's ``message``)."""
    return "\n".join(case_lines(c))


@dataclass(frozen=True)
class FixFirst:
    """One entry of "what to fix first": a culprit blamed with high confidence, the cases it explains."""

    culprit: str
    message: str          # the culprit's explanation, starting with ``culprit:``
    where: Where | None   # where the submission implements it, when an op probe found it
    cases: int            # how many failing cases it explains
    example: str          # one of them (a case id)

    def text(self) -> str:
        """``sub: d(a - b)/db is 1, expected -1 [engine.py:78] (3 cases, e.g. basic::sub)``."""
        return f"{self.message}{where_suffix(self.where)} ({self.cases} case{'s' if self.cases != 1 else ''}, " \
               f"e.g. {self.example})"


def where_text(where: Where | None) -> str:
    """``engine.py:78``, or "" when the place is not known."""
    return f"{where.file}:{where.line}" if where is not None else ""


def where_suffix(where: Where | None) -> str:
    """`` [engine.py:78]`` after a blame, or ""."""
    return f" [{where_text(where)}]" if where is not None else ""


def fix_first(cases: Iterable[CaseResult], most: int = 3) -> list[FixFirst]:
    """What to fix first, for every format: the culprits blamed with high confidence, by how many cases
    they explain (most first), each with its most general explanation.  A suspect case (culprit ``case``)
    is never in it: it is not the engine's fault.  A student's view of a run (``audience.redact``) has no
    diagnosis on a hidden case, so a hidden case never counts nor serves as the example."""
    found: dict[str, list[tuple[str, Diagnosis]]] = {}
    for c in cases:
        for d in c.diagnosis:
            if d.confidence == Confidence.HIGH and d.kind != DiagnosisKind.CASE:
                found.setdefault(d.culprit or d.kind, []).append((c.id, d))
    ranked = sorted(found.items(), key=lambda kv: -len({cid for cid, _ in kv[1]}))
    general = {DiagnosisKind.PATTERN: 0, DiagnosisKind.OP: 1}  # the most general explanation first
    out = []
    for culprit, hits in ranked[:most]:
        example, d = min(hits, key=lambda h: general.get(h[1].kind, 2))
        where = d.where or next((h.where for _, h in hits if h.where is not None), None)
        text = d.message if d.message.startswith(f"{culprit}:") else f"{culprit}: {d.message}"
        out.append(FixFirst(culprit, text, where, len({cid for cid, _ in hits}), example))
    return out


def culprit_lines(cases: Iterable[CaseResult], most: int = 3) -> list[str]:
    """What to fix first, as lines of text (the text report)."""
    items = fix_first(cases, most)
    return ["what to fix first:", *(f"  - {f.text()}" for f in items)] if items else []


def suspect_ids(cases: Iterable[CaseResult]) -> list[str]:
    """The suspect cases: those whose expected numbers the reference engine disagrees with."""
    return [c.id for c in cases if any(d.kind == DiagnosisKind.CASE for d in c.diagnosis)]


def suspect_lines(cases: Iterable[CaseResult]) -> list[str]:
    """For the instructor: the suspect cases, whose expected numbers the reference engine disagrees with."""
    ids = suspect_ids(cases)
    if not ids:
        return []
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return [f"suspect cases ({len(ids)}): the reference engine disagrees with their expected numbers, "
            f"so they are not blamed on the engine; check them with grade --check-cases: {shown}"]


def fuzz_lines(fuzz: FuzzSummary) -> list[str]:
    """The fuzzing summary of one engine."""
    ops = sorted({f.split(" ")[0] for f in fuzz.forms})
    lines = [f"fuzz: {fuzz.generated} random expressions (seed {fuzz.seed}) over {', '.join(ops) or 'no op'}"]
    if fuzz.stopped:
        lines.append(f"      {fuzz.stopped}")
    if fuzz.skipped:
        lines.append(f"      left out: {'; '.join(fuzz.skipped)}")
    for m in fuzz.minimal:
        lines.append(f"      shrunk failure ({m.failure}, {m.ops} op(s)): {m.expression}")
    return lines


def ignored_note(engine: EngineResult) -> str:
    """Which engine was graded when the submission registers others, and which were left out (cleaned)."""
    ignored = engine.ignored_engines
    if not ignored:
        return ""
    shown = ", ".join(ignored[:5]) + (", ..." if len(ignored) > 5 else "")
    return clean(f"graded engine {engine.engine}; the submission registers {len(ignored)} more engine(s), "
                 f"not graded ({shown}): grade another with --engine-name NAME")


def status_counts(counts: dict[str, int]) -> str:
    """``3 passed, 1 failed``: the statuses that occur."""
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def strict(obj: Any) -> Any:
    """``obj`` with NaN and infinities as the strings "nan", "inf", "-inf" (strict JSON has none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Dumped:
    """An item of ``json_chunks`` written already, by ``dumped`` (e.g. in a job process)."""

    text: str


def dumped(item: Any) -> str:
    """An item of ``json_chunks`` as it writes it (before indenting it into the list)."""
    return json.dumps(strict(item), indent=2, allow_nan=False)


def json_chunks(head: dict[str, Any], key: str, items: Iterable[Any], tail: dict[str, Any]) -> Iterator[str]:
    """``json.dumps(strict({**head, key: [*items], **tail}), indent=2, allow_nan=False) + "\\n"``, byte for
    byte, written an item at a time (a report with one entry per engine, which is read one by one).  An
    item may come as ``Dumped`` text."""
    def fields(d: dict[str, Any]) -> str:  # '  "a": 1,\n  "b": 2'
        return json.dumps(strict(d), indent=2, allow_nan=False)[2:-2]

    yield "{\n" + (fields(head) + ",\n" if head else "") + f"  {json.dumps(key)}: ["
    empty = True
    for item in items:
        text = item.text if isinstance(item, Dumped) else dumped(item)
        yield ("\n    " if empty else ",\n    ") + text.replace("\n", "\n    ")
        empty = False
    yield ("]" if empty else "\n  ]") + (",\n" + fields(tail) if tail else "") + "\n}\n"


def lines_chunk(lines: Iterable[str]) -> str:
    """Lines as text, each ending with a newline."""
    return "".join(line + "\n" for line in lines)


def node_lines(node: PictureNode) -> list[str]:
    """The text shown in a drawn node: label and op, value, got grad and (when wrong) the expected one."""
    if node.op == "const":
        return [node.label]
    head = node.label if node.op in ("leaf", node.label) else f"{node.op}: {node.label}"
    lines = [head]
    if node.value is not None:
        lines.append(f"value {fmt(node.value)}")
    if node.expected_grad is not None or node.got_grad is not None:
        lines.append(f"grad {fmt(node.got_grad)}")
        if node.expected_grad is not None and node.divergent:
            lines.append(f"expected {fmt(node.expected_grad)}")
    return lines
