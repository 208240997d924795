"""The JSON report (contract section 4), extended with per-case details.

Each case's ``message`` is its whole text, composed once (``harness.reporting.common``); the
typed fields it is composed from are there too (``detail``, ``hint``, ``context``, ``mismatches``,
``diagnosis``, ``shrunk``), so ``grade merge`` can read a report back and write any format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from harness import Reporter, hookimpl
from harness.model import (
    CaseResult,
    Diagnosis,
    EngineResult,
    GraphPicture,
    LazyEngines,
    Mismatch,
    ReportContext,
    RunResult,
    Shrunk,
)
from harness.reporting.common import Dumped, Streamed, case_text, dumped, json_chunks, summary


def mismatch_dict(m: Mismatch) -> dict[str, Any]:
    """A mismatch as plain data: ``quantity`` names it as reports do, ``kind``/``name``/``index`` say it."""
    out: dict[str, Any] = {"quantity": m.quantity, "kind": str(m.kind), "expected": m.expected, "got": m.got}
    if m.name:
        out["name"] = m.name
    if m.index is not None:
        out["index"] = m.index
    return out


def diagnosis_dict(d: Diagnosis) -> dict[str, Any]:
    """A diagnosis as plain data."""
    out: dict[str, Any] = {"kind": str(d.kind), "culprit": d.culprit, "message": d.message,
                           "confidence": str(d.confidence), "evidence": list(d.evidence)}
    if d.where is not None:
        out["where"] = {"file": d.where.file, "line": d.where.line}
    if d.from_shrunk:
        out["from_shrunk"] = True
    return out


def graph_dict(g: GraphPicture) -> dict[str, Any]:
    """A case's picture as plain data; edges as ``[operand, user, position]``."""
    if not g.drawn:
        return {"drawn": False, "why": g.why}
    return {"drawn": True, "nodes": [dataclasses.asdict(n) for n in g.nodes],
            "edges": [[e.source, e.target, e.position] for e in g.edges], "output": g.output,
            "first_divergent": g.first_divergent, "culprit": g.culprit, "traced": g.traced}


def shrunk_dict(s: Shrunk) -> dict[str, Any]:
    """A fuzz case's shrunk expression as plain data."""
    return {"expression": s.expression, "ops": s.ops, "status": str(s.status), "message": summary(s),
            "detail": s.message, "mismatches": [mismatch_dict(m) for m in s.mismatches],
            "diagnosis": [diagnosis_dict(d) for d in s.diagnosis]}


def case_dict(c: CaseResult) -> dict[str, Any]:
    """One case's entry."""
    out: dict[str, Any] = {
        "id": c.id, "status": str(c.status), "score": c.score, "max_score": c.max_score,
        "message": case_text(c), "duration_s": c.duration_s, "suite": c.suite, "name": c.name,
        "description": c.description, "tags": list(c.tags), "visibility": c.visibility,
        "mismatches": [mismatch_dict(m) for m in c.mismatches],
        "diagnosis": [diagnosis_dict(d) for d in c.diagnosis],
        "detail": c.message,
    }
    if c.hint:
        out["hint"] = c.hint
    if c.context is not None:
        out["context"] = dataclasses.asdict(c.context)
    if c.graph is not None:
        out["graph"] = graph_dict(c.graph)
    if c.shrunk is not None:
        out["shrunk"] = shrunk_dict(c.shrunk)
    return out


def engine_dict(e: EngineResult) -> dict[str, Any]:
    """One engine's entry."""
    return {"engine": e.engine, "source": e.source, "submission": e.submission, "score": e.score,
            "max_score": e.max_score, "percent": round(e.percent, 2), "counts": e.counts,
            **({"load_error": e.load_error} if e.load_error else {}),
            **({"ignored_engines": list(e.ignored_engines)} if e.ignored_engines else {}),
            **({"origin": e.origin} if e.origin else {}),
            **({"load_notes": list(e.load_notes)} if e.load_notes else {}),
            **({"fuzz": dataclasses.asdict(e.fuzz)} if e.fuzz is not None else {}),
            "duration_s": e.duration_s, "cases": [case_dict(c) for c in e.cases]}


def as_dict(run: RunResult) -> dict[str, Any]:
    """The report as plain data."""
    return {"engines": [engine_dict(e) for e in run.engines], **_run_fields(run)}


def _run_fields(run: RunResult) -> dict[str, Any]:
    return {
        "duration_s": run.duration_s,
        **({"shard": {"index": run.shard[0], "count": run.shard[1],
                      **({"weights": run.shard_weights} if run.shard_weights else {})}} if run.shard else {}),
        "harness_version": run.harness_version,
        "cases_fingerprint": run.cases_fingerprint,
        "sandbox": run.sandbox,
        **({"sandbox_warning": run.sandbox_warning} if run.sandbox_warning else {}),
        **({"cgroup": run.cgroup} if run.cgroup else {}),
    }


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """One strict JSON document, an engine at a time."""
    return json_chunks({}, "engines", _entries(run.engines), _run_fields(run))


#: The kind of ``engine_piece``'s text, for ``LazyEngines.piece``.
KIND = "json"


def engine_piece(e: EngineResult) -> str:
    """An engine's entry as ``chunks`` writes it: made where a batch's engine is graded (in its job
    process), so that writing the report copies it (``harness.running.spool``)."""
    return dumped(engine_dict(e))


def _entries(engines: Sequence[EngineResult] | LazyEngines) -> Iterator[dict[str, Any] | Dumped]:
    if not isinstance(engines, LazyEngines):
        yield from (engine_dict(e) for e in engines)
        return
    for k in range(len(engines)):
        text = engines.piece(k, KIND)
        yield Dumped(text) if text is not None else engine_dict(engines[k])


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("json", render)
