"""Gradescope's ``results.json``, per the Gradescope autograder specification.

Each case is one test with ``name``, ``score``, ``max_score``, ``status``
(``passed`` or ``failed``), ``output``, ``visibility`` and ``tags``; the case's
``points`` are its ``max_score`` (partial credit per case) and its
``visibility`` (visible, hidden, after_due_date) is the test's.  The top-level
``score`` is the sum of the tests' scores.  The format is meant for one
submission per run; with several engines, each test's name starts with the
engine's label.
"""

from __future__ import annotations

import json

from harness import hookimpl
from harness.reporting.json import strict
from harness.model import ReportContext, RunResult

def as_dict(run: RunResult) -> dict:
    """The results.json document as plain data."""
    several = len(run.engines) > 1
    tests, notes = [], []
    for label, e in zip(run.labels(), run.engines):
        if e.load_error:
            notes.append(f"{label + ': ' if several else ''}your submission could not be loaded, "
                         f"so every test below is an error:\n{e.load_error}")
        for c in e.cases:
            output = "" if c.status == "passed" else f"{c.status}: {c.message}"
            tests.append({
                "name": f"{label}: {c.id}" if several else c.id,
                "score": c.score, "max_score": c.max_score,
                "status": "passed" if c.status == "passed" else "failed",
                "output": output, "visibility": c.visibility, "tags": list(c.tags),
                "extra_data": {"harness_status": c.status, "duration_s": c.duration_s},
            })
    for label, e in zip(run.labels(), run.engines):
        shown = [c for c in e.cases if c.visibility == "visible"]
        passed = sum(c.status == "passed" for c in shown)
        later = len(e.cases) - len(shown)
        summary = f"{passed} of {len(shown)} visible tests passed"
        if later:
            summary += f"; {later} more tests are hidden or shown after the due date"
        notes.append(f"{label}: {summary}" if several else summary)
    for label, e in zip(run.labels(), run.engines):  # which class or cell was graded, what loading skipped
        if e.origin or e.load_notes:
            loaded = ([f"graded: {e.origin}"] if e.origin else []) + [f"- {n}" for n in e.load_notes]
            notes.append((f"{label}: " if several else "") + "\n".join(loaded))
    return {
        "score": sum(e.score for e in run.engines),
        "execution_time": max(0, round(run.duration_s)),
        "output": "\n\n".join(notes),
        "tests": tests,
    }


def render(run: RunResult, context: ReportContext) -> str:
    """One strict JSON document."""
    return json.dumps(strict(as_dict(run)), indent=2, allow_nan=False) + "\n"


@hookimpl
def register_reporters(register):
    register("gradescope", render)
