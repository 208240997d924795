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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.model import (
    CSV_COLUMNS,
    STATUSES,
    CaseContext,
    CaseResult,
    Confidence,
    Diagnosis,
    DiagnosisKind,
    EngineResult,
    FuzzSummary,
    GraphPicture,
    MinimalFailure,
    Mismatch,
    MismatchKind,
    PictureEdge,
    PictureNode,
    RunResult,
    Shrunk,
    Status,
    Where,
)

if TYPE_CHECKING:
    from harness.running.spool import Entry, Spool

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


def weights(per_case: list[float]) -> list[int]:
    """Whole weights for ``split`` from seconds per case: milliseconds, at least 1."""
    return [max(1, round(1000 * s)) for s in per_case]


def weights_fingerprint(weights: list[int]) -> str:
    """What a shard report records of its split's weights, so that ``merge`` can check they agree."""
    import hashlib

    return "sha256:" + hashlib.sha256(json.dumps(weights).encode()).hexdigest()[:16]


def split(specs: list, cases: list, shard: Shard | None, weights: list[int] | None = None) -> list[tuple]:
    """The (spec, cases) pairs this shard grades: its block of the run's (spec, case) pairs.

    With no cases at all (``--fuzz`` only), the submissions themselves are split.  ``weights`` gives
    each spec's weight per case (an earlier run's milliseconds per case, ``--timings``): the blocks are
    then nearly equal in weight instead of in number of pairs.
    """
    if shard is None:
        return [(spec, list(cases)) for spec in specs]
    weights = weights or [1] * len(specs)
    n = max(1, len(cases))  # --fuzz only: each submission is one unit of work
    total = sum(w * n for w in weights)
    lo, hi = (total * (shard.index - 1)) // shard.count, (total * shard.index) // shard.count
    plan = []
    start = 0  # where the spec's first pair starts, in weight
    for spec, w in zip(specs, weights, strict=True):
        # pair j spans [start + j w, start + (j + 1) w); the shard takes the pairs whose middle is in
        # [lo, hi): 2 start + (2 j + 1) w in [2 lo, 2 hi) (with every weight 1: j in [lo, hi))
        first, last = (min(n, max(0, -((2 * start + w - 2 * bound) // (2 * w)))) for bound in (lo, hi))
        if first < last:
            plan.append((spec, list(cases[first:last])))
        start += w * n
    return plan


def ends_submission(part: list, cases: list) -> bool:
    """Whether a shard's part of a submission holds its last case: that shard alone runs ``--fuzz``
    (whose cases come after all the others)."""
    return not cases or (bool(part) and part[-1] is cases[-1])


def merge(paths: list, spool: Spool | None = None) -> RunResult:
    """One run from the JSON reports of its shards (any order), or of separate runs (in order).

    The reports are read one at a time and each engine's result goes to ``spool`` (a new one if None) as
    it is read: merging the shards of a course holds one report and a summary per engine in memory, not
    every case of every submission.  An engine split over several shards is read back and stored again
    whole; the run's engines are a ``Spooled`` sequence, loaded one at a time by the reporters.
    """
    from harness.running.spool import Spool

    spool = spool if spool is not None else Spool()
    reports = [(str(p), _spooled(p, spool)) for p in paths]
    sharded = [(p, r["shard"]) for p, r in reports if r.get("shard") is not None]
    if sharded:
        reports = _in_shard_order(reports, sharded)
    index: dict[tuple, int] = {}
    entries: list[Entry] = []
    parts: list[list[tuple[str, int]]] = []  # per merged engine: (report, number of cases) of each part
    duration = 0.0
    for path, report in reports:
        duration += _number(report.get("duration_s", 0.0), path)
        for key, entry in report["engines"]:
            if key not in index:
                index[key] = len(entries)
                entries.append(entry)
                parts.append([(path, len(entry.summary.case_ids))])
                continue
            i = index[key]
            merged, read = spool.load(entries[i]), spool.load(entry)
            _check_once(merged, read, parts[i], path)
            merged.load_error = merged.load_error or read.load_error  # e.g. the fuzz summary, from the
            merged.submission = merged.submission or read.submission  # shard that fuzzed
            merged.fuzz = merged.fuzz or read.fuzz
            merged.duration_s += read.duration_s
            merged.cases.extend(read.cases)
            entries[i] = spool.put([merged])[0]
            parts[i].append((path, len(read.cases)))
    return RunResult(spool.engines(entries), round(duration, 3),
                     harness_version=_agreed(reports, "harness_version", sharded),
                     cases_fingerprint=_agreed(reports, "cases_fingerprint", sharded),
                     sandbox=_agreed(reports, "sandbox", sharded) or "none",
                     cgroup=_agreed(reports, "cgroup", sharded))


def _spooled(path: str | Path, spool: Spool) -> dict:
    """The report at ``path``, checked, with each engine's result put in ``spool``: its ``engines`` become
    (engine key, spool entry) pairs."""
    report = _read(path)
    report["engines"] = [((e["engine"], e["source"], e.get("submission")),
                          spool.put([_engine_with_cases(e, str(path))])[0]) for e in report["engines"]]
    return report


def _engine_with_cases(e: dict, path: str) -> EngineResult:
    result = _engine(e, path)
    result.cases = [_case(c, path) for c in e["cases"]]
    return result


def _check_once(merged: EngineResult, read: EngineResult, parts: list[tuple[str, int]], path: str) -> None:
    """Refuse a case that two reports both graded for the same engine."""
    ids = {c.id: k for k, c in enumerate(merged.cases)}
    again = next((c.id for c in read.cases if c.id in ids), None)
    if again is None:
        return
    at, seen = ids[again], parts[-1][0]
    for where, count in parts:
        if at < count:
            seen = where
            break
        at -= count
    raise HarnessError(f"{path}: case {again} of engine {read.engine} ({read.source}) is also in {seen}; "
                       "merge each shard's report once")


def _agreed(reports: list, key: str, sharded: list) -> str:
    """What the reports say under ``key``: one value when they agree, else every value, joined by commas.

    The shards of one run must agree on the case set they graded.
    """
    values = list(dict.fromkeys(str(r.get(key) or "") for _, r in reports))
    known = [v for v in values if v]
    if key == "cases_fingerprint" and sharded and len(known) > 1:
        raise HarnessError(f"the shard reports graded different case sets ({', '.join(known)}); merge the "
                           "shards of one run")
    return ",".join(known)


def _read(path: str | Path) -> dict:
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


def _shape_problem(report: Any) -> str:
    """What keeps ``report`` from being a JSON report of grade, or ''."""
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
    split_by = {str(s.get("weights") or "") for _, s in sharded}
    if len(split_by) > 1:
        raise HarnessError("the shards were split by different --timings (or some with it, some without), so "
                           "their parts may overlap or leave cases out; run every shard with the same --timings")
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


def _engine(e: dict, path: str) -> EngineResult:
    """An engine's result, without its cases yet, from its entry in a JSON report."""
    fuzz = e.get("fuzz")
    return EngineResult(e["engine"], e["source"], [], load_error=str(e.get("load_error") or ""),
                        submission=str(e.get("submission") or ""),
                        ignored_engines=tuple(str(n) for n in e.get("ignored_engines", ())),
                        fuzz=_read_part(_fuzz, fuzz, path, "fuzz") if fuzz is not None else None,
                        origin=str(e.get("origin") or ""),
                        load_notes=[str(n) for n in e.get("load_notes") or []],
                        duration_s=_number(e.get("duration_s", 0.0), path))


def _case(c: dict, path: str) -> CaseResult:
    """A case's result from its entry in a JSON report (the fields its message is composed from)."""
    context, graph, shrunk = c.get("context"), c.get("graph"), c.get("shrunk")
    return CaseResult(
        id=c["id"], status=Status(c["status"]), score=float(c["score"]), max_score=float(c["max_score"]),
        message=str(c.get("detail", c.get("message", ""))), duration_s=float(c.get("duration_s", 0.0)),
        suite=str(c.get("suite", "")), name=str(c.get("name", "")), description=str(c.get("description", "")),
        tags=tuple(c.get("tags", ())), visibility=str(c.get("visibility", "visible")),
        mismatches=[_read_part(_mismatch, m, path, c["id"]) for m in c.get("mismatches", [])],
        hint=str(c.get("hint", "")),
        context=None if context is None else _read_part(_context, context, path, c["id"]),
        diagnosis=[_read_part(diagnosis_from_dict, d, path, c["id"]) for d in c.get("diagnosis", [])],
        graph=None if graph is None else _read_part(_graph, graph, path, c["id"]),
        shrunk=None if shrunk is None else _read_part(_shrunk, shrunk, path, c["id"]))


def _read_part(read: Any, data: Any, path: str, where: str) -> Any:
    """``read(data)``, or a one-line error naming the report and the case when ``data`` is malformed."""
    try:
        return read(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise HarnessError(f"{path}: {where}: a malformed entry in the report ({type(e).__name__}: {e}); "
                           "write shard reports with --format json --output FILE") from None


def _mismatch(m: dict) -> Mismatch:
    return Mismatch(MismatchKind(m["kind"]), _float(m["expected"]), _float(m["got"]), name=str(m.get("name", "")),
                    index=m.get("index"))


def _context(c: dict) -> CaseContext:
    return CaseContext({str(k): _float(v) for k, v in c["inputs"].items()}, str(c["output"]), int(c["backward"]),
                       float(c["tolerance_abs"]), float(c["tolerance_rel"]))


def diagnosis_from_dict(d: dict) -> Diagnosis:
    """A diagnosis read back from ``harness.reporting.json.diagnosis_dict``."""
    where = d.get("where")
    return Diagnosis(DiagnosisKind(d["kind"]), str(d["culprit"]), str(d["message"]), Confidence(d["confidence"]),
                     tuple(str(x) for x in d.get("evidence", ())),
                     where=None if where is None else Where(str(where["file"]), int(where["line"])),
                     from_shrunk=bool(d.get("from_shrunk", False)))


def _graph(g: dict) -> GraphPicture:
    if not g["drawn"]:
        return GraphPicture(False, str(g.get("why", "")))
    nodes = tuple(PictureNode(str(n["id"]), str(n["op"]), str(n["label"]), _float(n.get("value")),
                              _float(n.get("expected_grad")), _float(n.get("got_grad")), bool(n["divergent"]))
                  for n in g["nodes"])
    edges = tuple(PictureEdge(str(a), str(b), int(pos)) for a, b, pos in g["edges"])
    return GraphPicture(True, nodes=nodes, edges=edges, output=str(g["output"]),
                        first_divergent=g.get("first_divergent"), culprit=g.get("culprit"), traced=bool(g.get("traced")))


def _shrunk(s: dict) -> Shrunk:
    return Shrunk(str(s["expression"]), int(s["ops"]), Status(s.get("status", Status.FAILED)),
                  str(s.get("detail", s.get("message", ""))),
                  tuple(_mismatch(m) for m in s.get("mismatches", ())),
                  tuple(diagnosis_from_dict(d) for d in s.get("diagnosis", ())))


def _fuzz(f: dict) -> FuzzSummary:
    return FuzzSummary(
        seed=int(f["seed"]), requested=int(f.get("requested", 0)), forms=tuple(f.get("forms", ())),
        skipped=tuple(f.get("skipped", ())), generated=int(f.get("generated", 0)),
        rejected=int(f.get("rejected", 0)), stopped=str(f.get("stopped") or ""),
        minimal=tuple(MinimalFailure(str(m["failure"]), str(m["expression"]), int(m["ops"]))
                      for m in f.get("minimal", ())))


def _float(x: Any) -> Any:
    """Undo the JSON report's strings for non-finite numbers."""
    return float(x) if x in ("nan", "inf", "-inf") else x


def _number(x: Any, path: str) -> float:
    if type(x) not in (int, float) or not math.isfinite(x):
        raise HarnessError(f"{path}: 'duration_s' is not a number")
    return float(x)


def kind(path: str | Path) -> str:
    """"json" or "csv": what sort of report ``path`` holds."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError as e:
        raise HarnessError(f"{path}: cannot read the report: {e.strerror or e}") from None
    except ValueError:
        head = ""
    if head.lstrip().startswith("{"):
        return "json"
    if head.startswith(",".join(CSV_COLUMNS[:3])):
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
        return all(int(self.cells[s]) == 0 for s in STATUSES if s != "passed")


def merge_csv(paths: list) -> tuple[str, list]:
    """One CSV gradebook from the gradebooks of the shards (in the order given), and its rows."""
    case_ids: dict = {}
    rows: dict = {}
    for path in paths:
        try:
            table = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8"), newline="")))
        except (OSError, ValueError, csv.Error) as e:
            raise HarnessError(f"{path}: not a CSV gradebook ({e})") from None
        if not table or tuple(table[0][:len(CSV_COLUMNS)]) != CSV_COLUMNS:
            raise HarnessError(f"{path}: not a CSV gradebook from grade --format csv (its header should "
                               f"start with {','.join(CSV_COLUMNS)})")
        ids = table[0][len(CSV_COLUMNS):]
        case_ids.update(dict.fromkeys(ids))
        for n, line in enumerate(table[1:], 2):
            if len(line) != len(table[0]):
                raise HarnessError(f"{path}:{n}: expected {len(table[0])} cells, found {len(line)}")
            cells = dict(zip(CSV_COLUMNS, line))
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
            for case_id, status in zip(ids, line[len(CSV_COLUMNS):]):
                if status and row.statuses.get(case_id):
                    raise HarnessError(f"{path}:{n}: case {case_id} of {key[0]} is already in another "
                                       "report; merge each shard's gradebook once")
                if status:
                    row.statuses[case_id] = status
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *case_ids])
    for row in rows.values():
        score, max_score = float(row.cells["score"]), float(row.cells["max_score"])
        row.cells["percent"] = f"{100.0 * score / max_score if max_score else 100.0:.2f}"
        writer.writerow([*(row.cells[c] for c in CSV_COLUMNS), *(row.statuses.get(i, "") for i in case_ids)])
    return out.getvalue(), list(rows.values())
