"""Split one grading run into shards (``--shard K/N``) and merge their JSON reports back.

The work of a run is the list of (submission, case) pairs, submission by
submission.  Shard K of N takes the K-th of N contiguous, nearly equal blocks
of it, so each submission is loaded by at most a few shards, and a single
submission's cases are split too.  Merging the shards' JSON reports gives the
report of the whole run, in any format; CSV gradebooks merge into a CSV
gradebook (unchecked: a CSV does not say which shard it is).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

from harness.errors import HarnessError
from harness.model import CaseResult, EngineResult, RunResult

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, counting from 1."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse(text: str) -> Shard:
    """``K/N`` -> Shard; ValueError with the fix when malformed."""
    m = _SHARD.fullmatch(text)
    if not m:
        raise ValueError(f"expected K/N such as 2/8, got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= index <= count:
        raise ValueError(f"K must be between 1 and N in K/N, got {text!r}")
    return Shard(index, count)


def split(specs: list, cases: list, shard: Shard | None) -> list[tuple]:
    """The (spec, cases) pairs this shard grades: its block of the run's (spec, case) pairs.

    With no cases at all (``--fuzz`` only), the submissions themselves are split.
    """
    if shard is None:
        return [(spec, list(cases)) for spec in specs]
    if not cases:
        lo, hi = (len(specs) * (shard.index - 1)) // shard.count, (len(specs) * shard.index) // shard.count
        return [(spec, []) for spec in specs[lo:hi]]
    total = len(specs) * len(cases)
    lo, hi = (total * (shard.index - 1)) // shard.count, (total * shard.index) // shard.count
    plan = []
    for i, spec in enumerate(specs):
        first, last = max(lo, i * len(cases)), min(hi, (i + 1) * len(cases))
        if first < last:
            plan.append((spec, list(cases[first - i * len(cases):last - i * len(cases)])))
    return plan


def ends_submission(part: list, cases: list) -> bool:
    """Whether a shard's part of a submission holds its last case: that shard alone runs ``--fuzz``
    (whose cases come after all the others)."""
    return not cases or (bool(part) and part[-1] is cases[-1])


def merge(paths: list) -> RunResult:
    """One run from the JSON reports of its shards (any order), or of separate runs (in order)."""
    reports = [(str(p), _read(p)) for p in paths]
    sharded = [(p, r["shard"]) for p, r in reports if r.get("shard") is not None]
    if sharded:
        reports = _in_shard_order(reports, sharded)
    engines: dict = {}
    seen: dict = {}
    duration = 0.0
    for path, report in reports:
        duration += _number(report.get("duration_s", 0.0), path)
        for e in report["engines"]:
            key = (e["engine"], e["source"], e.get("submission"))
            merged = engines.setdefault(key, _engine(e))
            for name, value in _engine(e).__dict__.items():  # e.g. the fuzz summary, from the shard that fuzzed
                if name != "cases" and value and not getattr(merged, name):
                    setattr(merged, name, value)
            for c in e["cases"]:
                if (key, c["id"]) in seen:
                    raise HarnessError(f"{path}: case {c['id']} of engine {e['engine']} ({e['source']}) "
                                       f"is also in {seen[key, c['id']]}; merge each shard's report once")
                seen[key, c["id"]] = path
                merged.cases.append(_case(c))
    return RunResult(list(engines.values()), round(duration, 3))


def _read(path) -> dict:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise HarnessError(f"{path}: cannot read the report: {e.strerror or e}") from None
    except ValueError as e:
        raise HarnessError(f"{path}: not a JSON report ({e}); write shard reports with "
                           "--format json --output FILE") from None
    problem = _shape_problem(report)
    if problem:
        raise HarnessError(f"{path}: not a report from grade --format json ({problem}); "
                           "write shard reports with --format json --output FILE")
    return report


def _shape_problem(report) -> str:
    """What keeps ``report`` from being a JSON report of grade, or ''."""
    from harness.judging.compare import STATUSES

    if not isinstance(report, dict) or not isinstance(report.get("engines"), list):
        return "missing 'engines'"
    for e in report["engines"]:
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) for k in ("engine", "source")):
            return "an engine without 'engine' and 'source'"
        if not isinstance(e.get("cases"), list):
            return f"engine {e['engine']!r} without a 'cases' list"
        for c in e["cases"]:
            if not isinstance(c, dict) or not isinstance(c.get("id"), str):
                return f"a case of engine {e['engine']!r} without an 'id'"
            if c.get("status") not in STATUSES:
                return f"case {c['id']} has status {c.get('status')!r}, not one of {', '.join(STATUSES)}"
            if not all(type(c.get(k)) in (int, float) for k in ("score", "max_score")):
                return f"case {c['id']} without a numeric 'score' and 'max_score'"
    return ""


def _in_shard_order(reports: list, sharded: list) -> list:
    if len(sharded) != len(reports):
        plain = next(p for p, r in reports if r.get("shard") is None)
        raise HarnessError(f"{plain} is not a shard report, but the others are; merge the reports "
                           "of one sharded run")
    try:
        keys = [(int(s["index"]), int(s["count"])) for _, s in sharded]
    except (KeyError, TypeError, ValueError):
        raise HarnessError(f"{sharded[0][0]}: malformed 'shard' entry {sharded[0][1]!r}") from None
    counts = sorted({n for _, n in keys})
    if len(counts) > 1:
        raise HarnessError(f"the reports come from different splits (into {' and '.join(map(str, counts))} "
                           "shards); merge the shards of one run")
    count = counts[0]
    by_index: dict = {}
    for (path, _), (k, _) in zip(sharded, keys):
        if k in by_index:
            raise HarnessError(f"{path} and {by_index[k]} are both shard {k}/{count}; merge each shard once")
        by_index[k] = path
    missing = [str(k) for k in range(1, count + 1) if k not in by_index]
    if missing:
        raise HarnessError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} of {count} "
                           f"{'are' if len(missing) > 1 else 'is'} missing; pass all {count} shard reports")
    order = sorted(range(len(reports)), key=lambda i: keys[i][0])
    return [reports[i] for i in order]


_CASE_FIELDS = {f.name for f in fields(CaseResult)}
_ENGINE_FIELDS = {f.name for f in fields(EngineResult)} - {"cases"}


def _engine(e: dict) -> EngineResult:
    """An engine's result, without its cases yet, from its entry in a JSON report."""
    return EngineResult(**{k: v for k, v in e.items() if k in _ENGINE_FIELDS}, cases=[])


def _case(c: dict) -> CaseResult:
    data = {k: v for k, v in c.items() if k in _CASE_FIELDS}
    data["tags"] = tuple(data.get("tags", ()))
    data["mismatches"] = [{k: _float(v) for k, v in m.items()} for m in data.get("mismatches", [])]
    return CaseResult(**data)


def _float(x):
    """Undo the JSON report's strings for non-finite numbers."""
    return float(x) if x in ("nan", "inf", "-inf") else x


def _number(x, path) -> float:
    if type(x) not in (int, float) or not math.isfinite(x):
        raise HarnessError(f"{path}: 'duration_s' is not a number")
    return float(x)


def kind(path) -> str:
    """"json" or "csv": what sort of report ``path`` holds."""
    from harness.reporting.csv import FIXED_COLUMNS

    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError as e:
        raise HarnessError(f"{path}: cannot read the report: {e.strerror or e}") from None
    except ValueError:
        head = ""
    if head.lstrip().startswith("{"):
        return "json"
    if head.startswith(",".join(FIXED_COLUMNS[:3])):
        return "csv"
    raise HarnessError(f"{path}: not a JSON report or a CSV gradebook from grade; write shard reports with "
                       "--format json --output FILE")


@dataclass
class CsvRow:
    """One submission's merged row of a CSV gradebook."""

    cells: dict          # fixed column -> text
    statuses: dict       # case id -> status

    @property
    def percent(self) -> float:
        return float(self.cells["percent"])

    @property
    def all_passed(self) -> bool:
        from harness.judging.compare import STATUSES

        return all(int(self.cells[s]) == 0 for s in STATUSES if s != "passed")


def merge_csv(paths: list) -> tuple[str, list]:
    """One CSV gradebook from the gradebooks of the shards (in the order given), and its rows."""
    from harness.judging.compare import STATUSES
    from harness.reporting.csv import FIXED_COLUMNS

    case_ids: dict = {}
    rows: dict = {}
    for path in paths:
        try:
            table = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8"), newline="")))
        except (OSError, ValueError, csv.Error) as e:
            raise HarnessError(f"{path}: not a CSV gradebook ({e})") from None
        if not table or tuple(table[0][:len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
            raise HarnessError(f"{path}: not a CSV gradebook from grade --format csv (its header should "
                               f"start with {','.join(FIXED_COLUMNS)})")
        ids = table[0][len(FIXED_COLUMNS):]
        case_ids.update(dict.fromkeys(ids))
        for n, line in enumerate(table[1:], 2):
            if len(line) != len(table[0]):
                raise HarnessError(f"{path}:{n}: expected {len(table[0])} cells, found {len(line)}")
            cells = dict(zip(FIXED_COLUMNS, line))
            key = (cells["submission"], cells["engine"], cells["source"])
            row = rows.setdefault(key, CsvRow({**cells, "score": "0", "max_score": "0",
                                               **{s: "0" for s in STATUSES}}, {}))
            try:
                for column in ("score", "max_score", *STATUSES):
                    total = float(row.cells[column]) + float(cells[column])
                    row.cells[column] = f"{total:g}" if column in ("score", "max_score") else str(int(total))
            except ValueError:
                raise HarnessError(f"{path}:{n}: a score or count is not a number") from None
            row.cells["load_error"] = row.cells["load_error"] or cells["load_error"]
            for case_id, status in zip(ids, line[len(FIXED_COLUMNS):]):
                if status and row.statuses.get(case_id):
                    raise HarnessError(f"{path}:{n}: case {case_id} of {key[0]} is already in another "
                                       "report; merge each shard's gradebook once")
                if status:
                    row.statuses[case_id] = status
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*FIXED_COLUMNS, *case_ids])
    for row in rows.values():
        score, max_score = float(row.cells["score"]), float(row.cells["max_score"])
        row.cells["percent"] = f"{100.0 * score / max_score if max_score else 100.0:.2f}"
        writer.writerow([*(row.cells[c] for c in FIXED_COLUMNS), *(row.statuses.get(i, "") for i in case_ids)])
    return out.getvalue(), list(rows.values())
