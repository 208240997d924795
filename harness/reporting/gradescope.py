"""Gradescope's ``results.json``, per the Gradescope autograder specification.

Each case is one test with ``name``, ``score``, ``max_score``, ``status``
(``passed`` or ``failed``), ``output``, ``visibility`` and ``tags``; the case's
``points`` are its ``max_score`` (partial credit per case) and its
``visibility`` (visible, hidden, after_due_date) is the test's.  The top-level
``score`` is the sum of the tests' scores, at most one engine's maximum per
submission.  The format is meant for one submission per run; with several
engines, each test's name starts with the engine's label.  The top-level
``extra_data`` says which harness version, case set and sandbox graded it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from harness import Reporter, hookimpl
from harness.model import ReportContext, RunResult, Status
from harness.reporting.common import Streamed, case_text, clean, fix_first, ignored_note, json_chunks


def as_dict(run: RunResult) -> dict[str, Any]:
    """The results.json document as plain data."""
    return {**_head(run), "tests": list(_tests(run)), **_tail(run)}


def _head(run: RunResult) -> dict[str, Any]:
    """What comes before the tests: the score, and the output, which reads every engine once."""
    several = len(run.engines) > 1
    notes, summaries, fixes, loaded = [], [], [], []  # what to fix first comes first
    for label, e in zip(run.labels(), run.engines, strict=True):
        if e.ignored_engines:
            notes.append(f"{clean(label) + ': ' if several else ''}{ignored_note(e)}")
        if e.load_error:
            notes.append(f"{clean(label) + ': ' if several else ''}your submission could not be loaded, "
                         f"so every test below is an error:\n{clean(e.load_error)}")
        shown = [c for c in e.cases if c.visibility == "visible"]
        passed = sum(c.status == Status.PASSED for c in shown)
        later = len(e.cases) - len(shown)
        summary = f"{passed} of {len(shown)} visible tests passed"
        if later:
            summary += f"; {later} more tests are hidden or shown after the due date"
        summaries.append(f"{clean(label)}: {summary}" if several else summary)
        items = fix_first(e.cases)
        if items:
            fixes.append("\n".join([f"{clean(label) + ': ' if several else ''}What to fix first:",
                                     *(f"  {k}. {clean(f.text())}" for k, f in enumerate(items, 1))]))
        if e.origin or e.load_notes:  # which class or cell was graded, what loading skipped
            lines = ([f"graded: {e.origin}"] if e.origin else []) + [f"- {n}" for n in e.load_notes]
            loaded.append((f"{clean(label)}: " if several else "") + clean("\n".join(lines)))
    return {"score": run.score, "execution_time": max(0, round(run.duration_s)),
            "output": "\n\n".join(fixes + notes + summaries + loaded)}


def _tests(run: RunResult) -> Iterator[dict[str, Any]]:
    """Every case as a test, reading the engines one at a time."""
    several = len(run.engines) > 1
    for label, e in zip(run.labels(), run.engines, strict=True):
        for c in e.cases:
            output = "" if c.status == Status.PASSED else clean(f"{c.status}: {case_text(c)}")
            yield {
                "name": f"{clean(label)}: {c.id}" if several else c.id,
                "score": c.score, "max_score": c.max_score,
                "status": "passed" if c.status == Status.PASSED else "failed",
                "output": output, "visibility": c.visibility, "tags": list(c.tags),
                "extra_data": {"harness_status": str(c.status), "duration_s": c.duration_s},
            }


def _tail(run: RunResult) -> dict[str, Any]:
    return {"extra_data": {"harness_version": run.harness_version, "cases_fingerprint": run.cases_fingerprint,
                           "sandbox": run.sandbox, **({"cgroup": run.cgroup} if run.cgroup else {})}}


def chunks(run: RunResult, context: ReportContext) -> Iterator[str]:
    """One strict JSON document, a test at a time."""
    return json_chunks(_head(run), "tests", _tests(run), _tail(run))


render = Streamed(chunks)


@hookimpl
def register_reporters(register: Callable[[str, Reporter], None]) -> None:
    register("gradescope", render)
