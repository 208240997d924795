"""A batch's results wait in the spool and every built-in report is written piece by piece, reading one
engine at a time: the reports are byte for byte what the whole-string reporters wrote, and the number of
engine results alive at once stays bounded however large the batch is.

The expected reports (``tests/fixtures/reports/streamed.json``) were written by the whole-string
reporters before streaming, from ``batch()`` below: ``PYTHONPATH=<that tree> python
tests/unit/test_streamed_reports.py`` writes them again with whichever reporters it imports.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import stat
import sys
import weakref
from pathlib import Path

import pytest

from harness import plugins
from harness.model import (
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
    ReportContext,
    RunResult,
    Shrunk,
    Status,
    Where,
)
from harness.reporting import audience, html

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "reports" / "streamed.json"
FORMATS = ("text", "json", "junit", "csv", "gradescope", "markdown", "html", "dot")
ESC = "\x1b[31m"


def _svg(graph, title="", uid="g", engine="auto"):  # the drawing's layout depends on whether dot is installed
    return f'<svg data-uid="{uid}">{len(graph.nodes)} nodes</svg>'


def _cases(k: int) -> list[CaseResult]:
    ctx = CaseContext({"a": 5, "b": 2}, "a - b", 1, 1e-9, 1e-6)
    sub = Diagnosis(DiagnosisKind.OP, "sub", "sub: d(a - b)/db is 1, expected -1", Confidence.HIGH,
                    ("sub: d(5 - b)/db is 1",), where=Where("engine.py", 12))
    pattern = Diagnosis(DiagnosisKind.PATTERN, "accumulation", "grads are assigned, not added", Confidence.MEDIUM,
                        ("ops::mul_self", "chain::reuse"))
    suspect = Diagnosis(DiagnosisKind.CASE, "case", "the reference engine disagrees with this case's expected grad",
                        Confidence.HIGH)
    picture = GraphPicture(True, nodes=(PictureNode("n0", "leaf", "a", 5.0, 1.0, 1.0),
                                        PictureNode("n1", "leaf", "b", 2.0, -1.0, 1.0, divergent=True),
                                        PictureNode("n2", "sub", "a - b", 3.0, 1.0, 1.0)),
                           edges=(PictureEdge("n0", "n2", 0), PictureEdge("n1", "n2", 1)), output="n2",
                           first_divergent="n1", traced=True)
    shrunk = Shrunk("a - b at a=1, b=1", 1, Status.FAILED, mismatches=(Mismatch(MismatchKind.GRAD, -1, 1.0, name="b"),),
                    diagnosis=(sub,))
    return [
        CaseResult("ops::sub", Status.FAILED, 0.0, 1.0, mismatches=[Mismatch(MismatchKind.GRAD, -1, 1.0, name="b")],
                   suite="ops", name="sub", description="a - b", hint="the sign is flipped", context=ctx,
                   diagnosis=[sub], graph=picture, duration_s=0.0123 * k),
        CaseResult("ops::neg", Status.FAILED, 0.0, 2.0, mismatches=[Mismatch(MismatchKind.VALUE, math.nan, math.inf)],
                   suite="ops", name="neg", hint="check neg", context=ctx,
                   graph=GraphPicture(False, why="more than 40 nodes")),
        CaseResult("ops::log", Status.ERROR, 0.0, 1.0, message=f"the engine raised ValueError: {ESC}bad\nline 2 <&>",
                   suite="ops", name="log"),
        CaseResult("ops::add", Status.PASSED, 1.0, 1.0, suite="ops", name="add", duration_s=0.002),
        CaseResult("chain::slow", Status.TIMEOUT, 0.0, 1.0, message="no answer in 10 s", suite="chain"),
        CaseResult("chain::relu", Status.UNSUPPORTED, 0.0, 1.0, message="the engine lacks relu", suite="chain"),
        CaseResult("chain::reuse", Status.FAILED, 0.0, 1.0, mismatches=[Mismatch(MismatchKind.ARGS, 2, None, index=0)],
                   suite="chain", diagnosis=[pattern, suspect]),
        CaseResult("hidden::h1", Status.FAILED, 0.0, 3.0, mismatches=[Mismatch(MismatchKind.GRAD, 1, 2.0, name="x")],
                   suite="hidden", visibility="hidden", description="the secret expression tanh(x) * x",
                   context=CaseContext({"x": 0.5}, "tanh(x) * x", 2, 1e-9, 1e-6), tags=("secret",)),
        CaseResult("later::l1", Status.FAILED, 0.0, 1.0, message="wrong", suite="later", visibility="after_due_date"),
        CaseResult("fuzz::3", Status.FAILED, 0.0, 0.0, suite="fuzz", name="3", shrunk=shrunk,
                   mismatches=[Mismatch(MismatchKind.GRAD, 2, 3.0, name="a")],
                   diagnosis=[dataclasses.replace(sub, from_shrunk=True)]),
    ]


def _engine(k: int) -> list[EngineResult]:
    """Submission k's engines: a rotation of what a batch holds."""
    sub = f"student-{k:03d}"
    kind = k % 6
    if kind == 0:  # everything passes
        return [EngineResult("micrograd", f"subs/{sub}", [dataclasses.replace(c, status=Status.PASSED, score=c.max_score,
                                                                              mismatches=[], diagnosis=[], message="")
                                                          for c in _cases(k)[:4]], submission=sub)]
    if kind == 1:  # does not load
        why = f"SyntaxError: invalid syntax (engine.py, line {k})"
        return [EngineResult(sub, f"subs/{sub}.py", [dataclasses.replace(c, status=Status.ERROR, score=0.0, message=why,
                                                                         mismatches=[], diagnosis=[])
                                                     for c in _cases(k)[:3]], load_error=why, submission=sub)]
    if kind == 2:  # two engines graded (--engine-name)
        return [EngineResult(name, f"subs/{sub}", _cases(k), submission=sub, ignored_engines=("Other",))
                for name in ("Value", "Tensor")]
    fuzz = FuzzSummary(seed=7, requested=3, forms=("sub (x - y)",), skipped=("pow: not supported",), generated=3,
                       stopped="stopped after 3", minimal=(MinimalFailure("grad", "a - b at a=1, b=1", 1),))
    cases = _cases(k) if kind == 3 else _cases(k)[2:7] if kind == 4 else _cases(k)[6:]
    return [EngineResult(f"eng{ESC}\u202e{k}", f"subs/{sub}.ipynb", cases, submission=sub,
                         fuzz=fuzz if kind == 3 else None, ignored_engines=tuple(f"E{i}" for i in range(7 * (kind == 4))),
                         origin="student.ipynb, cell 7: class Value" if kind != 5 else "",
                         load_notes=["skipped cell 3: a training loop", f"IPython syntax {ESC}"] if kind == 4 else [])]


def batch(n: int = 6, shard: bool = True) -> RunResult:
    """A batch of ``n`` submissions with every kind of result a report shows."""
    return RunResult([e for k in range(n) for e in _engine(k)], duration_s=12.345, shard=(2, 3) if shard else None,
                     harness_version="1.2.3", cases_fingerprint="sha256:" + "ab" * 32, sandbox="none",
                     sandbox_warning=f"bwrap is missing {ESC}", cgroup="v2: pids.max=64, memory.max=2048M")


def _shown(run: RunResult, fmt: str, who: str) -> RunResult:
    return audience.redact(run, audience.Audience(who), reveals_after_due_date=fmt in audience.REVEALS_AFTER_DUE_DATE)


def _runs() -> dict[str, RunResult]:
    return {"batch": batch(), "one": batch(1, shard=False), "empty": RunResult([])}


def _reporters() -> dict:
    return plugins.reporters(plugins.installed_manager(entry_points=False))


def expected_reports() -> dict[str, str]:
    """Every built-in format of every run in ``_runs``, for each audience, as the reporters write it whole."""
    found = _reporters()
    saved, html.svg = html.svg, _svg
    try:
        return {f"{fmt}/{who}/{name}": found[fmt](_shown(run, fmt, who), ReportContext())
                for name, run in _runs().items() for fmt in FORMATS for who in ("instructor", "student")}
    finally:
        html.svg = saved


def _spooled(run: RunResult, spool) -> RunResult:
    return dataclasses.replace(run, engines=spool.engines(spool.put(run.engines)))


@pytest.fixture
def spool():
    from harness.running.spool import Spool

    with Spool() as s:
        yield s


@pytest.fixture
def stub_svg(monkeypatch):
    monkeypatch.setattr(html, "svg", _svg)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_streamed_report_is_byte_for_byte_the_whole_string_report(fmt, spool, stub_svg):
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    render = _reporters()[fmt]
    for name, run in _runs().items():
        for who in ("instructor", "student"):
            want = golden[f"{fmt}/{who}/{name}"]
            assert render(_shown(run, fmt, who), ReportContext()) == want, (name, who)  # a list of engines
            pieces = list(render.chunks(_shown(_spooled(run, spool), fmt, who), ReportContext()))
            assert "".join(pieces) == want, (name, who)  # read back from the spool, one engine at a time
            assert len(pieces) >= len(run.engines), "not written an engine at a time"


def test_the_summaries_answer_what_the_whole_results_answer(spool):
    run = batch(12)
    lazy = _spooled(run, spool)
    assert lazy.engines.summaries == [dataclasses.replace(s) for s in run.summaries()]
    assert (lazy.score, lazy.all_passed, lazy.labels()) == (run.score, run.all_passed, run.labels())
    assert [e.percent for e in lazy.summaries()] == [e.percent for e in run.engines]
    assert len(lazy.engines) == len(run.engines) and repr(lazy.engines[-1]) == repr(run.engines[-1])  # NaN
    assert list(map(repr, lazy.engines)) == list(map(repr, run.engines))
    assert lazy.engines[0] is not lazy.engines[0]  # loaded at each read, kept by no one
    with pytest.raises(IndexError):
        lazy.engines[len(run.engines)]


class Alive:
    """Counts the engine results alive at once in this process: every one made, or unpickled (loaded from
    the spool, or received from a job process), is tracked."""

    def __init__(self, monkeypatch):
        self.alive = 0
        init = EngineResult.__init__

        def tracked_init(e, *args, **kwargs):
            init(e, *args, **kwargs)
            self.track(e)

        def tracked_setstate(e, state):
            e.__dict__.update(state)
            self.track(e)

        monkeypatch.setattr(EngineResult, "__init__", tracked_init)
        monkeypatch.setattr(EngineResult, "__setstate__", tracked_setstate, raising=False)

    def track(self, e: EngineResult) -> None:
        self.alive += 1
        weakref.finalize(e, self.gone)

    def gone(self) -> None:
        self.alive -= 1

    def now(self) -> int:
        return self.alive


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_a_spooled_batch_holds_a_bounded_number_of_engine_results(fmt, spool, monkeypatch, stub_svg):
    n = 300
    render = _reporters()[fmt]
    alive = Alive(monkeypatch)
    whole = batch(n)
    run = _spooled(whole, spool)
    made = alive.now()
    assert made >= n  # the counter sees the batch's results while they are in a list
    del whole
    gc.collect()
    assert alive.now() == 0
    peak = 0
    for who in ("instructor", "student"):
        pieces = 0
        for _ in render.chunks(_shown(run, fmt, who), ReportContext()):
            peak = max(peak, alive.now())
            pieces += 1
        assert pieces >= n
    assert peak <= 3, f"{peak} engine results alive at once"


@pytest.mark.parametrize("jobs, processes", [(1, "1"), (2, "0"), (2, "1")])
def test_grading_a_batch_into_the_spool_holds_a_bounded_number_of_engine_results(jobs, processes, spool, monkeypatch):
    """With job processes, each submission's results are made in a job process and sent to this one, which
    spools them as they come: the count here is of those received and not yet let go."""
    from harness.running import grading
    from harness.running.jobs import ENV_SWITCH
    from harness.running.runner import Limits

    monkeypatch.setenv(ENV_SWITCH, processes)
    n = 200
    alive = Alive(monkeypatch)
    peak = 0

    def grade_one(spec, submission, *args, **kwargs):  # a submission's results, as engines would give them
        nonlocal peak
        peak = max(peak, alive.now())
        return _engine(int(submission))

    def progress(done, total):
        nonlocal peak
        peak = max(peak, alive.now())

    monkeypatch.setattr(grading, "_grade_one", grade_one)
    plan = [((f"spec-{k}", str(k)), []) for k in range(n)]
    run = grading.grade_plan(plan, Limits(), jobs=jobs, progress=progress, spool=spool)
    assert peak <= 2 * jobs + 2, f"{peak} engine results alive at once while grading {n} submissions"
    assert alive.now() == 0 and len(run.engines) == sum(len(_engine(k)) for k in range(n))
    assert [e.submission for e in run.summaries()] == [e.submission for k in range(n) for e in _engine(k)]
    assert [e.engine for e in run.engines] == [e.engine for k in range(n) for e in _engine(k)]  # the plan's order
    unspooled = grading.grade_plan(plan[:3], Limits(), jobs=jobs)
    assert isinstance(unspooled.engines, list) and alive.now() == len(unspooled.engines)


def test_the_report_reaches_stdout_piece_by_piece(capsys):
    from harness import cli

    seen = []

    def report():
        for k in range(3):
            seen.append(capsys.readouterr().out)  # what was written before this piece was made
            yield f"piece {k}\n"

    outcome = cli.Outcome("", chunks=report(), passed=False)
    assert cli._finish(outcome, cli.parse([])) == 1
    assert seen == ["", "piece 0\n", "piece 1\n"] and capsys.readouterr().out == "piece 2\n"


def test_a_report_that_fails_half_way_leaves_no_output_file(tmp_path):
    from harness import cli

    def report():
        yield "half"
        raise RuntimeError("a reporter's bug")

    with pytest.raises(RuntimeError):
        cli._finish(cli.Outcome("", chunks=report()), cli.parse(["--output", str(tmp_path / "r.txt")]))
    assert list(tmp_path.iterdir()) == []


def test_per_submission_reports_are_rendered_one_submission_at_a_time(spool, monkeypatch, stub_svg):
    from harness import cli

    run = _spooled(batch(12), spool)
    alive = Alive(monkeypatch)
    render = _reporters()["json"]
    names = []
    for name, pieces in cli.per_submission_reports(run, render, "json"):
        report = json.loads("".join(pieces))
        names.append(name)
        assert {e["submission"] for e in report["engines"]} == {name.removesuffix(".json")}
        assert alive.now() <= 2
    assert names == [f"student-{k:03d}.json" for k in range(12)]


def test_a_third_party_reporter_gets_engines_it_can_iterate_index_and_count(spool):
    from harness import cli

    def scores(run, context):  # written for a list: iterates twice, indexes, takes len
        lines = [f"{e.engine}: {e.score:g}/{e.max_score:g}" for e in run.engines]
        lines += [f"{len(run.engines)} engines, first {run.engines[0].submission}, last {run.engines[-1].submission}"]
        return "\n".join(lines + [str(sum(len(e.cases) for e in run.engines))]) + "\n"

    run = batch(12)
    (whole,) = cli.pieces(scores, _spooled(run, spool), ReportContext())  # not streamed: one piece
    assert whole == scores(run, ReportContext())


def test_the_spool_is_a_file_no_one_else_can_reach_and_it_goes_away(spool):
    e = batch(1).engines[0]
    (entry,) = spool.put([e])
    fd = spool._file.fileno()
    assert os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")  # no name on disk, even while grading
    assert stat.S_IMODE(os.fstat(fd).st_mode) & 0o077 == 0
    assert spool.load(entry) == e
    spool._file.seek(entry.offset + entry.size - 1)
    spool._file.write(b"\0")
    with pytest.raises(ValueError, match="changed on disk"):
        spool.load(entry)
    spool.close()
    with pytest.raises(ValueError, match="closed"):
        spool.load(entry)


def test_a_changed_spooled_result_is_stored_again(spool):
    run = _spooled(batch(3), spool)
    e = run.engines[1]
    e.cases[0].diagnosis = []
    run.engines[1] = e
    assert run.engines[1].cases[0].diagnosis == [] and run.engines[2].cases[0].diagnosis


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(expected_reports(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} with {sys.modules['harness'].__file__}")


def test_merging_shard_reports_holds_a_bounded_number_of_engine_results(tmp_path, monkeypatch):
    """``grade merge``: each report's engines go to the spool as it is read; an engine split over two shards
    is read back and stored whole. The merged run equals the whole one."""
    from harness.batch import shards
    from harness.running import spool as spooling

    whole = batch(90, shard=False)
    engines = list(whole.engines)
    render = _reporters()["json"]
    cut = [0, 30, 60, len(engines)]
    paths = []
    for k in range(3):
        part = engines[cut[k]:cut[k + 1]]
        if k < 2:  # the last engine of this shard is split with the next one
            last = part[-1]
            half = len(last.cases) // 2
            part = [*part[:-1], dataclasses.replace(last, cases=last.cases[:half])]
        if k > 0:
            first = engines[cut[k] - 1]
            part = [dataclasses.replace(first, cases=first.cases[len(first.cases) // 2:]), *part]
        path = tmp_path / f"shard-{k + 1}.json"
        path.write_text(render(dataclasses.replace(whole, engines=part, shard=(k + 1, 3)), ReportContext()))
        paths.append(path)
    assert len({len(json.loads(p.read_text())["engines"]) for p in paths}) > 1

    alive = Alive(monkeypatch)
    peak, put = 0, spooling.Spool.put

    def counted(self, results):
        nonlocal peak
        peak = max(peak, alive.now())
        return put(self, results)

    monkeypatch.setattr(spooling.Spool, "put", counted)
    with spooling.Spool() as spool:
        merged = shards.merge(list(reversed(paths)), spool)  # any order: the shards say theirs
        gc.collect()
        assert alive.now() == 0 and peak <= 3, f"{peak} engine results alive at once"
        one = tmp_path / "whole.json"
        one.write_text(render(whole, ReportContext()))
        back = shards.merge([one], spool)  # as read from one report (NaN != NaN: compare the texts)
        assert render(dataclasses.replace(merged, duration_s=back.duration_s), ReportContext()) == render(
            back, ReportContext())
