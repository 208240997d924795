"""The JSON report (contract section 4), extended with per-case details."""

from __future__ import annotations

import json
import math

from harness import hookimpl
from harness.model import ReportContext, RunResult


def as_dict(run: RunResult) -> dict:
    """The report as plain data."""
    return {
        "engines": [
            {"engine": e.engine, "source": e.source, "submission": e.submission, "score": e.score,
             "max_score": e.max_score, "percent": round(e.percent, 2), "counts": e.counts,
             **({"load_error": e.load_error} if e.load_error else {}),
             **({"origin": e.origin} if e.origin else {}),
             **({"load_notes": list(e.load_notes)} if e.load_notes else {}),
             **({"fuzz": e.fuzz} if e.fuzz is not None else {}),
             "cases": [
                 {"id": c.id, "status": c.status, "score": c.score, "max_score": c.max_score,
                  "message": c.message, "duration_s": c.duration_s, "suite": c.suite, "name": c.name,
                  "description": c.description, "tags": list(c.tags), "visibility": c.visibility, "mismatches": c.mismatches,
                  "diagnosis": c.diagnosis,
                  **({"graph": c.graph} if c.graph is not None else {}),
                  **({"shrunk": c.shrunk} if c.shrunk is not None else {})}
                 for c in e.cases]}
            for e in run.engines],
        "duration_s": run.duration_s,
        **({"shard": {"index": run.shard[0], "count": run.shard[1]}} if run.shard else {}),
    }


def strict(obj):
    """``obj`` with NaN and infinities as the strings "nan", "inf", "-inf" (strict JSON has none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def render(run: RunResult, context: ReportContext) -> str:
    """One strict JSON document."""
    return json.dumps(strict(as_dict(run)), indent=2, allow_nan=False) + "\n"


@hookimpl
def register_reporters(register):
    register("json", render)
