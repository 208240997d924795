"""--timings REPORT, in process: an earlier run's durations order the batch, longest first."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from harness import cli
from harness.batch import timings
from harness.errors import HarnessError
from harness.running import grading


def write_report(path, engines: list[tuple[str, str, float | None, list[float]]], **extra) -> str:
    """A JSON report: (submission, source, engine duration or None, case durations) per engine."""
    doc = {"engines": [
        {"engine": "e", "source": source, "submission": sub, "score": 0.0, "max_score": 1.0,
         **({} if seconds is None else {"duration_s": seconds}),
         "cases": [{"id": f"s::c{i}", "status": "passed", "score": 1.0, "max_score": 1.0, "message": "",
                    "duration_s": d} for i, d in enumerate(cases)]}
        for sub, source, seconds, cases in engines], **extra}
    path.write_text(json.dumps(doc))
    return str(path)


def test_seconds_per_case_of_known_submissions_and_the_average_for_others(tmp_path):
    path = write_report(tmp_path / "r.json", [("alice", "subs/alice", 8.0, [0.1] * 4),
                                              ("bob", "subs/bob.py", 2.0, [0.1] * 4)])
    t = timings.read([path])
    assert t.rates([("alice", "x"), ("bob", "y"), ("carol", "subs/carol")]) == [2.0, 0.5, 1.25]
    assert t.rates([(None, "subs/bob.py"), (None, "other.py")]) == [0.5, 1.25]  # --engine: by source


def test_shard_reports_add_up_and_old_reports_use_the_case_durations(tmp_path):
    one = write_report(tmp_path / "1.json", [("alice", "a", 3.0, [0.0] * 2)], shard={"index": 1, "count": 2})
    two = write_report(tmp_path / "2.json", [("alice", "a", 1.0, [0.0] * 2)], shard={"index": 2, "count": 2})
    old = write_report(tmp_path / "old.json", [("bob", "b", None, [0.5, 1.5])])
    t = timings.read([one, two, old])
    assert t.rates([("alice", "a"), ("bob", "b")]) == [1.0, 1.0]


def test_no_known_case_gives_one_second_per_case(tmp_path):
    assert timings.read([write_report(tmp_path / "r.json", [])]).rates([("a", "a")]) == [1.0]


@pytest.mark.parametrize("content, says", [
    (None, "cannot read the file"),
    ("{not json", "not a JSON report"),
    ('{"engines": 3}', "not a report of grade"),
    ('[1, 2]', "not a report of grade"),
    ('{"engines": [{"engine": "e", "source": "s", "cases": [{"duration_s": "slow"}]}]}', "not a report of grade"),
    ('{"engines": [{"engine": "e", "source": "s", "duration_s": -1, "cases": []}]}', "not a number of seconds"),
])
def test_a_bad_timings_file_is_one_line_naming_it_and_the_fix(tmp_path, content, says):
    path = tmp_path / "earlier.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HarnessError) as caught:
        timings.read([str(path)])
    message = str(caught.value)
    assert message.startswith(f"--timings {path}: ") and says in message
    assert message.endswith("give --timings the JSON report of an earlier run (grade --format json --output FILE)")


def test_the_command_line_refuses_a_bad_timings_file_with_exit_2(capsys, tmp_path):
    engine = tmp_path / "engine.py"
    engine.write_text("")
    assert cli.main(["--engine", str(engine), "--timings", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"grade: error: --timings {tmp_path / 'missing.json'}: ")
    assert "Traceback" not in err


def test_the_slowest_per_case_start_first_and_unknown_ones_at_the_average(tmp_path, monkeypatch):
    path = write_report(tmp_path / "r.json", [("fast", "f", 1.0, [0.0] * 10), ("slow", "s", 30.0, [0.0] * 10),
                                              ("mid", "m", 5.0, [0.0] * 10)])
    rates = timings.read([path]).rates([("fast", "f"), ("new", "n"), ("slow", "s"), ("mid", "m")])
    seen: dict = {}

    def in_parallel(job, results, jobs, progress, sizes):
        seen["sizes"] = sizes
        results[:] = [[] for _ in results]

    monkeypatch.setattr(grading, "_in_parallel", in_parallel)
    monkeypatch.setenv("GRADE_JOB_PROCESSES", "0")  # the threads' scheduler sees the sizes (job processes: the same)
    monkeypatch.setattr(grading.reference, "resolve", lambda cases, limits, lost, suspects: list(cases))
    cases = [SimpleNamespace(id=f"s::c{i}") for i in range(10)]
    plan = [((spec, spec), cases) for spec in ("fast", "new", "slow", "mid")]
    monkeypatch.setattr(grading.programs, "build", lambda case: case)
    monkeypatch.setattr(grading, "fingerprint", lambda cases: "")
    grading.grade_plan(plan, grading.Limits(), jobs=2, per_case=rates)
    # slow 3 s per case, the average of the known 36 s / 30 cases = 1.2 s for "new", mid 0.5 s, fast 0.1 s
    assert grading.longest_first(seen["sizes"]) == [2, 1, 3, 0]
    grading.grade_plan(plan, grading.Limits(), jobs=2)
    assert grading.longest_first(seen["sizes"]) == [0, 1, 2, 3]  # no timings: cases only (all equal)


def test_a_free_slot_takes_the_longest_job_left():
    started: list[int] = []
    results: list = [None] * 5
    grading._in_parallel(lambda i: started.append(i) or [i], results, 1, None, [3.0, 30.0, 3.0, 330.0, 30.0])
    assert started == [3, 1, 4, 0, 2] and results == [[0], [1], [2], [3], [4]]


def test_with_timings_a_shard_gets_nearly_equal_seconds(capsys, tmp_path):
    path = write_report(tmp_path / "r.json", [("slow", "slow", 30.0, [0.0] * 2), ("a", "a", 1.0, [0.0] * 2),
                                              ("b", "b", 1.0, [0.0] * 2)])
    argv = ["list", "--engine", "slow", "--engine", "a", "--engine", "b", "-k", "notebook::add_value",
            "-k", "notebook::sub_value"]
    listed = {}
    for k in (1, 2):
        for timed in ([], ["--timings", path]):
            assert cli.main([*argv, "--shard", f"{k}/2", *timed]) == 0
            listed[k, bool(timed)] = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed[1, False] == ["slow", "slow", "a"] and listed[2, False] == ["a", "b", "b"]  # 3 pairs each
    assert listed[1, True] == ["slow"] and listed[2, True] == ["slow", "a", "a", "b", "b"]  # 15 s and 17 s


def test_timings_takes_several_reports_at_once_and_repeated():
    args = cli.parse(["--engine", "e.py", "--timings", "1.json", "2.json", "--jobs", "2", "--timings", "3.json"])
    assert args.timings == ["1.json", "2.json", "3.json"]
