"""Who reads a report: the instructor sees everything; a student never sees what a hidden case holds.

One step, on the typed run, before any reporter composes text: ``redact(run, Audience.STUDENT)``.
A student's view shows a hidden case only as ``hidden case: passed`` or ``hidden case: failed`` (with its
id, tags, points and status), with no expression, inputs, expectations, description, graph or blame, and no other case's text (blame
evidence, hints, "what to fix first") names it.  ``after_due_date`` cases are hidden the same way, except
in formats that reveal them after the deadline themselves (Gradescope): there each keeps its own details,
and still no other case names it.  Imports only ``harness.model``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from enum import StrEnum

from harness.model import CaseResult, Diagnosis, EngineResult, EngineSummary, LazyEngines, RunResult, Shrunk, Status


class Audience(StrEnum):
    """Who a report is for (``grade --audience``)."""

    INSTRUCTOR = "instructor"
    STUDENT = "student"


#: The audience of each built-in format when ``--audience`` is not given; any other format is for students.
DEFAULT_AUDIENCE = {"text": Audience.INSTRUCTOR, "json": Audience.INSTRUCTOR, "junit": Audience.INSTRUCTOR,
                    "csv": Audience.INSTRUCTOR, "dot": Audience.INSTRUCTOR, "html": Audience.STUDENT,
                    "markdown": Audience.STUDENT, "gradescope": Audience.STUDENT}
#: Formats whose platform shows ``after_due_date`` cases to students only after the deadline.
REVEALS_AFTER_DUE_DATE = frozenset({"gradescope"})
HIDDEN = "hidden"
AFTER_DUE_DATE = "after_due_date"
Scrub = Callable[[str], str]
#: What a hidden case's description or expression must be at least as long as to be scrubbed from other
#: cases' text (shorter ones, such as ``a + b``, would hit the visible cases' own words).
_MIN_SCRUBBED = 12


def audience_for(fmt: str, asked: str | None = None) -> Audience:
    """The audience of a report in format ``fmt``: the one asked for, else the format's default."""
    return Audience(asked) if asked else DEFAULT_AUDIENCE.get(fmt, Audience.STUDENT)


def redact(run: RunResult, audience: Audience, *, reveals_after_due_date: bool = False) -> RunResult:
    """``run`` as ``audience`` may see it (the instructor's view is ``run`` itself).

    ``reveals_after_due_date``: the format shows ``after_due_date`` cases only after the deadline, so
    they keep their own details (but no other case names them).
    """
    if audience == Audience.INSTRUCTOR:
        return run
    engines: list[EngineResult] | LazyEngines
    if isinstance(run.engines, LazyEngines):  # a batch: each engine redacted when it is read
        engines = _Redacted(run.engines, reveals_after_due_date)
    else:
        engines = [_engine(e, reveals_after_due_date) for e in run.engines]
    return dataclasses.replace(run, engines=engines, audience=str(audience))


class _Redacted(LazyEngines):
    """A batch's engines, each as a student may see it, redacted when it is read (its summary is the
    same: redacting keeps ids, points and statuses)."""

    def __init__(self, base: LazyEngines, reveals_later: bool):
        self.base, self.reveals_later = base, reveals_later

    @property
    def summaries(self) -> list[EngineSummary]:
        return self.base.summaries

    def load(self, index: int) -> EngineResult:
        return _engine(self.base.load(index), self.reveals_later)


def hidden_text(status: Status) -> str:
    """All a student is told of a hidden case."""
    return f"hidden case: {'passed' if status == Status.PASSED else 'failed'}"


def _engine(e: EngineResult, reveals_later: bool) -> EngineResult:
    protected = [c for c in e.cases if c.visibility in (HIDDEN, AFTER_DUE_DATE)]
    if not protected:
        return e
    scrub_all = _scrubber(protected)  # for visible cases
    scrub_hidden = _scrubber([c for c in protected if c.visibility == HIDDEN])  # for revealed later ones
    cases = []
    for c in e.cases:
        if c.visibility == HIDDEN or (c.visibility == AFTER_DUE_DATE and not reveals_later):
            cases.append(_hidden(c))
        else:
            cases.append(_scrubbed(c, scrub_hidden if c.visibility == AFTER_DUE_DATE else scrub_all))
    return dataclasses.replace(e, cases=cases)


def _hidden(c: CaseResult) -> CaseResult:
    """A hidden case reduced to its id, tags, points, status and whether it passed."""
    return CaseResult(id=c.id, status=c.status, score=c.score, max_score=c.max_score,
                      message="" if c.status == Status.PASSED else hidden_text(c.status),
                      duration_s=c.duration_s, suite=c.suite, name=c.name, tags=c.tags, visibility=c.visibility)


def _scrubber(protected: list[CaseResult]) -> Scrub:
    """A function that replaces every mention of a protected case in a text with 'a hidden case'."""
    words = {c.id for c in protected}
    for c in protected:
        words.update(t for t in (c.description, c.context.output if c.context else "") if len(t) >= _MIN_SCRUBBED)
    if not words:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    return lambda text: pattern.sub("a hidden case", text) if text else text


def _scrubbed(c: CaseResult, scrub: Scrub) -> CaseResult:
    """A shown case whose own text (its message, hint and blame) names no protected case."""
    return dataclasses.replace(c, message=scrub(c.message), hint=scrub(c.hint),
                               diagnosis=[_diagnosis(d, scrub) for d in c.diagnosis],
                               shrunk=_shrunk(c.shrunk, scrub))


def _diagnosis(d: Diagnosis, scrub: Scrub) -> Diagnosis:
    return dataclasses.replace(d, message=scrub(d.message), evidence=tuple(scrub(x) for x in d.evidence))


def _shrunk(s: Shrunk | None, scrub: Scrub) -> Shrunk | None:
    if s is None:
        return None
    return dataclasses.replace(s, message=scrub(s.message), diagnosis=tuple(_diagnosis(d, scrub) for d in s.diagnosis))
