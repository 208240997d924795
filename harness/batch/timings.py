"""An earlier run's timings (``--timings REPORT``): how long each submission took, so that long ones start first.

An earlier run's JSON reports (a whole run's, or every shard's) say, per engine, the seconds spent grading
it (``duration_s``: loading, cases, blame and fuzz; reports without it: the sum of its cases' durations)
and how many cases that was.  A submission's estimate is its seconds per case times the cases it grades
now, so that a shard's part or a changed case set is estimated too; a submission the reports do not know
gets the batch's average seconds per case.  A submission is known by its id (``--submissions``), or by its
source as written (``--engine``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

_FIX = "give --timings the JSON report of an earlier run (grade --format json --output FILE)"


@dataclass
class Timings:
    """Seconds and cases per submission id and per source, from earlier reports."""

    by_submission: dict[str, list[float]] = field(default_factory=dict)   # id -> [seconds, cases]
    by_source: dict[str, list[float]] = field(default_factory=dict)       # source -> [seconds, cases]

    def rate(self, submission: str | None, source: str) -> float | None:
        """Seconds per case of a submission (None when the reports do not know it)."""
        known = self.by_submission.get(submission) if submission is not None else self.by_source.get(source)
        return known[0] / known[1] if known and known[1] else None

    def average(self) -> float:
        """Seconds per case over every submission the reports know (1.0 when they hold no case)."""
        seconds = sum(s for s, _ in self.by_submission.values())
        cases = sum(n for _, n in self.by_submission.values())
        return seconds / cases if cases and seconds > 0 else 1.0

    def rates(self, items: list[tuple[str | None, str]]) -> list[float]:
        """Seconds per case of each (submission id, source), the average where the reports do not know it."""
        average = self.average()
        return [average if r is None else r for r in (self.rate(sub, source) for sub, source in items)]


def read(paths: list) -> Timings:
    """The timings in the JSON reports at ``paths``; a HarnessError naming the file when one is not a report."""
    timings = Timings()
    for path in paths:
        report = _load(path)
        for e in report["engines"]:
            seconds = e.get("duration_s")
            if seconds is None:  # a report of an older harness: the engine's own work only
                seconds = sum(c.get("duration_s") or 0.0 for c in e["cases"])
            if not _is_number(seconds) or seconds < 0:
                raise HarnessError(f"--timings {path}: engine {e['engine']!r} has a 'duration_s' that is not "
                                   f"a number of seconds; {_FIX}")
            cases = len(e["cases"])
            for table, key in ((timings.by_submission, e.get("submission") or e["engine"]),
                               (timings.by_source, e["source"])):
                entry = table.setdefault(str(key), [0.0, 0])
                entry[0] += float(seconds)
                entry[1] += cases
    return timings


def _load(path: Any) -> dict:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise HarnessError(f"--timings {path}: cannot read the file: {e.strerror or e}; {_FIX}") from None
    except ValueError:
        raise HarnessError(f"--timings {path}: not a JSON report; {_FIX}") from None
    engines = report.get("engines") if isinstance(report, dict) else None
    if not isinstance(engines, list) or not all(
            isinstance(e, dict) and isinstance(e.get("engine"), str) and isinstance(e.get("source"), str)
            and isinstance(e.get("cases"), list) and all(isinstance(c, dict) for c in e["cases"])
            and all(_is_number(c.get("duration_s") or 0.0) for c in e["cases"]) for e in engines):
        raise HarnessError(f"--timings {path}: not a report of grade (no 'engines' with their 'cases' "
                           f"and durations); {_FIX}")
    return report


def _is_number(x: Any) -> bool:
    return type(x) in (int, float) and math.isfinite(x)
