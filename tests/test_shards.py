"""Sharding a run with --shard K/N and putting it back together with `grade merge`, through the CLI."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from conftest import fixture_engine, run_grade

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

ENGINES = Path(__file__).resolve().parent / "engines"

TWO_ENGINES = '''
from harness import hookimpl
from plugin_engine import TapeEngine


class Alpha(TapeEngine):
    name = "alpha"


class Beta(TapeEngine):
    name = "beta"


@hookimpl
def register_engines(register):
    register(Alpha())
    register(Beta())
'''


def without_durations(report: dict) -> dict:
    """The report minus what differs between any two runs: timings (and the shard marker)."""
    report = dict(report)
    report.pop("duration_s", None)
    report.pop("shard", None)
    report["engines"] = [{**{k: v for k, v in e.items() if k != "duration_s"},
                          "cases": [{k: v for k, v in c.items() if k != "duration_s"} for c in e["cases"]]}
                         for e in report["engines"]]
    return report


def shard_reports(grade, tmp_path, args: list, count: int) -> list:
    """Run every shard of ``args`` into its own JSON file, the way a CI matrix would; return the paths."""
    paths = []
    for k in range(1, count + 1):
        out = tmp_path / f"shard-{k}-of-{count}.json"
        result = grade(*args, "--shard", f"{k}/{count}", "--format", "json", "--output", out)
        assert result.code in (0, 1), result.stderr
        assert result.stdout == ""
        shard = json.loads(out.read_text())["shard"]
        assert {"index": shard["index"], "count": shard["count"]} == {"index": k, "count": count}
        paths.append(out)
    return paths


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A mixed batch: a correct engine, a buggy one, one that fails to load, one with two engines (graded on
    the first)."""
    folder = tmp_path_factory.mktemp("batch")
    shutil.copy(ENGINES / "plugin_engine.py", folder)  # a module of this submission
    two = folder / "two_engines.py"
    two.write_text(TWO_ENGINES)
    return ["--engine", "reference", "--engine", str(fixture_engine("bug_sub_sign")),
            "--engine", str(ENGINES / "syntax_error.py"), "--engine", str(two), "-k", "notebook::", "-k", "ops::sub"]


#: The formats the module's full run and its three shards also write (--report: each as --format writes it).
ALSO = ("csv", "markdown", "junit")


@pytest.fixture(scope="module")
def full_run(batch, tmp_path_factory):
    """The batch in one run: its JSON report, and (``full_run.files``) format -> the file of its report."""
    folder = tmp_path_factory.mktemp("full")
    files = {fmt: folder / f"full.{fmt}" for fmt in ALSO}
    result = run_grade(*batch, "--format", "json", *[a for fmt, f in files.items() for a in ("--report", f"{fmt}:{f}")])
    result.files = files
    return result


@pytest.fixture(scope="module")
def three_shards(batch, tmp_path_factory) -> dict:
    """The batch in three shards, the way a CI matrix would run them: format -> the shards' files, in order."""
    folder = tmp_path_factory.mktemp("three")
    files: dict = {fmt: [] for fmt in ("json", *ALSO)}
    for k in (1, 2, 3):
        out = {fmt: folder / f"shard-{k}-of-3.{fmt}" for fmt in files}
        result = run_grade(*batch, "--shard", f"{k}/3", "--format", "json", "--output", out["json"],
                           *[a for fmt in ALSO for a in ("--report", f"{fmt}:{out[fmt]}")])
        assert result.code in (0, 1), result.stderr
        assert result.stdout == ""
        shard = json.loads(out["json"].read_text())["shard"]
        assert {"index": shard["index"], "count": shard["count"]} == {"index": k, "count": 3}
        for fmt in files:
            files[fmt].append(out[fmt])
    return files


@pytest.mark.parametrize("count", [1, 3, 7])
def test_merged_shards_equal_one_full_run(grade, batch, full_run, tmp_path, count, request):
    assert full_run.code == 1
    assert "shard" not in full_run.report
    paths = list(request.getfixturevalue("three_shards")["json"]) if count == 3 else \
        shard_reports(grade, tmp_path, batch, count)
    random.Random(count).shuffle(paths)  # the order the CI jobs finished in
    merged = grade("merge", *paths)
    assert merged.code == full_run.code, merged.stderr
    assert without_durations(merged.report) == without_durations(full_run.report)
    engines = [e["engine"] for e in merged.report["engines"]]
    assert engines == ["reference", "bug_sub_sign", "syntax_error", "alpha"]  # one engine per submission
    assert merged.report["engines"][3]["ignored_engines"] == ["beta"]
    assert merged.report["engines"][2]["load_error"].startswith("syntax error")
    assert merged.report["engines"][1]["counts"]["failed"] > 0


def test_shards_split_by_an_earlier_runs_timings_merge_to_one_full_run(grade, batch, full_run, tmp_path):
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(full_run.report))
    assert all(e["duration_s"] > 0 for e in full_run.report["engines"])
    paths = shard_reports(grade, tmp_path, [*batch, "--timings", str(earlier)], 3)
    assert len({json.loads(p.read_text())["shard"]["weights"] for p in paths}) == 1  # the same split in each
    merged = grade("merge", *paths)
    assert merged.code == full_run.code, merged.stderr
    assert without_durations(merged.report) == without_durations(full_run.report)


def test_more_shards_than_work_gives_empty_shards_that_merge(grade, engine, tmp_path):
    args = ["--engine", "reference", "--engine", engine("bug_sub_sign"), "-k", "notebook::add_value",
            "-k", "notebook::sub_value"]
    full = grade(*args, "--format", "json")
    paths = shard_reports(grade, tmp_path, args, 6)
    sizes = [sum(len(e["cases"]) for e in json.loads(p.read_text())["engines"]) for p in paths]
    assert sorted(sizes) == [0, 0, 1, 1, 1, 1]
    merged = grade("merge", *paths, "--format", "json")
    assert without_durations(merged.report) == without_durations(full.report)
    assert merged.code == full.code


@pytest.mark.parametrize("engines, count", [(0, 5), (3, 4)])
def test_shards_partition_the_work_evenly_and_in_order(grade, engines, count):
    """--list shows each shard's part: together they are the whole run, each within one pair of equal."""
    args = [a for i in range(engines) for a in ("--engine", f"engine{i}.py")] + ["-k", "notebook::"]
    whole = grade("--list", *args).stdout.splitlines()
    if engines == 0:
        assert len(whole) == 12
    else:
        whole = [f"{spec}  {line}" for spec in (f"engine{i}.py" for i in range(engines))
                 for line in grade("--list", "-k", "notebook::").stdout.splitlines()]
    parts = [grade("--list", *args, "--shard", f"{k}/{count}").stdout.splitlines() for k in range(1, count + 1)]
    assert [line for part in parts for line in part] == whole
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shard_reports_say_which_shard_they_are(grade):
    result = grade("--engine", "reference", "-k", "notebook::", "--shard", "2/3")
    assert result.code == 0
    assert "(shard 2/3)" in result.stdout.splitlines()[-1]


def test_merge_writes_any_format_and_honours_fail_under(grade, engine, tmp_path):
    args = ["--engine", engine("bug_sub_sign"), "-k", "notebook::"]
    paths = shard_reports(grade, tmp_path, args, 2)
    text = grade("merge", *paths, "--format", "text")
    assert text.code == 1
    assert text.stdout.splitlines()[-1].startswith("graded 1 engine(s)")
    assert "bug_sub_sign: " in text.stdout
    percent = json.loads(grade("merge", *paths).stdout)["engines"][0]["percent"]
    assert grade("merge", *paths, "--fail-under", str(percent)).code == 0
    assert grade("merge", *paths, "--fail-under", str(min(100, percent + 1))).code == 1
    out = tmp_path / "merged.json"
    written = grade("merge", *paths, "--output", out)
    assert written.stdout == "" and json.loads(out.read_text())["engines"][0]["engine"] == "bug_sub_sign"


@pytest.mark.parametrize("value, problem", [
    ("0/3", "K must be between 1 and N"),
    ("4/3", "K must be between 1 and N"),
    ("2", "expected K/N such as 2/8"),
    ("a/b", "expected K/N such as 2/8"),
])
def test_bad_shard_is_a_usage_error(grade, value, problem):
    result = grade("--engine", "reference", "--shard", value)
    assert result.code == 2
    assert f"argument --shard: {problem}" in result.stderr
    assert "Traceback" not in result.stderr


def test_merge_refuses_an_incomplete_or_inconsistent_set(grade, tmp_path):
    args = ["--engine", "reference", "-k", "notebook::"]
    (tmp_path / "three").mkdir()
    (tmp_path / "two").mkdir()
    three = shard_reports(grade, tmp_path / "three", args, 3)
    two = shard_reports(grade, tmp_path / "two", args, 2)
    plain = tmp_path / "plain.json"
    grade(*args, "--format", "json", "--output", plain)
    cases = [
        ([three[0], three[2]], "shard 2 of 3 is missing; pass all 3 shard reports"),
        ([three[0]], "shards 2, 3 of 3 are missing"),
        ([three[0], three[0], three[1], three[2]], f"{three[0]} and {three[0]} are both shard 1/3"),
        ([*three, two[0]], "the reports come from different splits (into 2 and 3 shards)"),
        ([three[0], plain], f"{plain} is not a shard report, but the others are"),
        ([plain, plain], "case notebook::add_value of engine reference (reference) is also in"),
    ]
    for paths, message in cases:
        result = grade("merge", *paths)
        assert result.code == 2, (paths, result.stdout)
        assert message in result.stderr, result.stderr
        assert result.stderr.startswith("grade merge: error: ")
        assert result.stdout == ""


def test_merge_names_a_file_that_is_not_a_report(grade, tmp_path):
    missing = tmp_path / "nope.json"
    not_json = tmp_path / "report.txt"
    not_json.write_text("PASS notebook::add_value\n")
    wrong_shape = tmp_path / "other.json"
    wrong_shape.write_text('{"results": []}')
    bad_status = tmp_path / "status.json"
    bad_status.write_text('{"engines": [{"engine": "e", "source": "e.py", "cases": [{"id": "s::c", "status": "ok", '
                          '"score": 1, "max_score": 1}]}]}')
    no_score = tmp_path / "score.json"
    no_score.write_text('{"engines": [{"engine": "e", "source": "e.py", "cases": [{"id": "s::c", "status": "passed"}]}]}')
    for path, message in [(missing, "cannot read the report"), (not_json, "not a JSON report"),
                          (wrong_shape, "not a report from grade --format json (missing 'engines')"),
                          (bad_status, "not a report from grade --format json (case s::c has status 'ok', "
                                       "not one of passed, failed"),
                          (no_score, "not a report from grade --format json (case s::c without a numeric "
                                     "'score' and 'max_score')")]:
        result = grade("merge", path)
        assert result.code == 2
        assert f"{path}: {message}" in result.stderr
        assert "Traceback" not in result.stderr
    assert grade("merge").code == 2


def csv_rows(text: str) -> dict:
    """A CSV gradebook as {(submission, engine, source): {column: cell}}, whatever the column order."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text)))
    return {(r["submission"], r["engine"], r["source"]): r for r in rows}


def test_csv_gradebooks_of_the_shards_merge_into_the_full_gradebook(grade, full_run, three_shards):
    full = full_run.files["csv"].read_text()  # as --format csv prints it (read with universal newlines)
    assert full_run.code == 1
    paths = three_shards["csv"]
    in_order = grade("merge", *paths)
    assert (in_order.code, in_order.stdout) == (full_run.code, full)
    shuffled = grade("merge", paths[2], paths[0], paths[1], "--format", "csv")
    assert shuffled.code == full_run.code
    assert csv_rows(shuffled.stdout) == csv_rows(full)
    percent = min(float(r["percent"]) for r in csv_rows(full).values())
    assert grade("merge", *paths, "--fail-under", str(percent)).code == 0


def test_json_shards_render_any_format_of_the_full_run(grade, full_run, three_shards, tmp_path):
    merged = grade("merge", *three_shards["json"], "--format", "text",
                   *[a for f in ALSO for a in ("--report", f"{f}:{tmp_path / ('merged-' + f)}")])
    assert merged.code == full_run.code
    for fmt in ALSO:
        want, got = full_run.files[fmt].read_bytes().decode(), (tmp_path / f"merged-{fmt}").read_bytes().decode()
        if fmt == "csv":
            assert got == want
        else:
            assert len(got.splitlines()) == len(want.splitlines()) > 3


def test_merge_refuses_mixed_or_misformatted_gradebooks(grade, tmp_path):
    args = ["--engine", "reference", "-k", "notebook::"]
    csv_path, json_path = tmp_path / "a.csv", tmp_path / "a.json"
    grade(*args, "--shard", "1/2", "--format", "csv", "--output", csv_path)
    grade(*args, "--shard", "2/2", "--format", "json", "--output", json_path)
    for paths, extra, message in [
        ([csv_path, json_path], [], "the reports mix JSON and CSV"),
        ([csv_path], ["--format", "json"], "CSV gradebooks merge into --format csv only, not 'json'"),
        ([csv_path, csv_path], [], "case notebook::add_value of reference is already in another report"),
    ]:
        result = grade("merge", *paths, *extra)
        assert result.code == 2, result.stdout
        assert message in result.stderr


def test_shards_of_a_submissions_folder_merge_into_its_gradebook(grade, engine, tmp_path):
    folder = tmp_path / "submissions"
    for name, fixture in [("ada", "notebook_full"), ("bob", "bug_sub_sign"), ("cy", "micrograd_full")]:
        (folder / name).mkdir(parents=True)
        shutil.copy(engine(fixture), folder / name / "engine.py")
    args = ["--submissions", folder, "-k", "notebook::", "-k", "ops::sub"]
    full = grade(*args, "--format", "csv")
    paths = shard_reports(grade, tmp_path, args, 4)
    merged = grade("merge", *paths, "--format", "csv")
    assert (merged.code, merged.stdout) == (full.code, full.stdout)
    assert [row[0] for row in csv_rows(full.stdout)] == ["ada", "bob", "cy"]


@pytest.mark.parametrize("selection", [["-k", "notebook::"], ["-k", "no-such-case"]])
def test_fuzzed_shards_merge_into_one_fuzzed_run(grade, engine, tmp_path, selection):
    """Each submission is fuzzed by one shard only: the one holding its first case (any, with no cases)."""
    args = ["--engine", "reference", "--engine", engine("bug_mul_swapped"), "--fuzz", "8", "--seed", "3", *selection]
    full = grade(*args, "--format", "json")
    fuzzed = [c for c in full.report["engines"][1]["cases"] if c["id"].startswith("fuzz::")]
    assert len(fuzzed) == 8, full.stderr
    paths = shard_reports(grade, tmp_path, args, 3)
    merged = grade("merge", *paths)
    assert merged.code == full.code, merged.stderr
    assert without_durations(merged.report) == without_durations(full.report)
