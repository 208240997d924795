"""Many submissions at once: --submissions, --jobs, the progress line and --fail-under."""

from __future__ import annotations

import csv
import io
import os
import pty
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, fixture_engine, run_grade

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

ONE_CASE = ("-k", "notebook::a_plus_b_times_c")


def gradebook(result) -> dict:
    """submission id -> CSV row."""
    assert result.stderr == "", result.stderr
    return {row["submission"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def graded_cleanly(row: dict) -> bool:
    """Every case passed, except the structure cases a micrograd-style engine cannot answer."""
    return (int(row["passed"]) > 0 and row["failed"] == row["error"] == row["timeout"] == "0"
            and int(row["unsupported"]) <= 3)


def make_submissions(folder, **engines) -> None:
    """name -> fixture engine; a name ending in '_dir' becomes a folder (without the suffix) holding engine.py."""
    folder.mkdir(exist_ok=True)
    for name, fixture in engines.items():
        if name.endswith("_dir"):
            (folder / name[:-4]).mkdir()
            shutil.copy(fixture_engine(fixture), folder / name[:-4] / "engine.py")
        else:
            shutil.copy(fixture_engine(fixture), folder / f"{name}.py")


def test_three_submissions_with_two_jobs_give_three_rows(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, alice_dir="micrograd_full", bob="bug_mul_swapped", carol_dir="raises_in_init")
    # The notebook and ops suites: a mix of verdicts for bob (every built-in case is graded elsewhere).
    result = run_grade("--submissions", subs, "--jobs", "2", "--format", "csv", "-k", "notebook::", "-k", "ops::")
    assert result.code == 1
    rows = gradebook(result)
    assert list(rows) == ["alice", "bob", "carol"]  # in name order, whatever finished first
    assert rows["alice"]["engine"] == "engine" and rows["alice"]["source"] == str(subs / "alice")
    assert graded_cleanly(rows["alice"])
    assert int(rows["bob"]["failed"]) > 0 and int(rows["bob"]["passed"]) > 0
    assert rows["bob"]["notebook::a_plus_b_times_c"] == "failed"
    assert rows["carol"]["score"] == "0" and int(rows["carol"]["error"]) == int(rows["carol"]["max_score"])
    assert "RuntimeError" in rows["carol"]["load_error"]


def test_submission_ids_in_the_json_report(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, alice_dir="micrograd_full", bob="bug_mul_swapped")
    result = run_grade("--engine", "reference", "--submissions", subs, *ONE_CASE, "--format", "json")
    engines = result.report["engines"]
    assert [(e["submission"], e["engine"]) for e in engines] == [
        ("reference", "reference"), ("alice", "engine"), ("bob", "bob")]


def test_broken_submissions_never_stop_the_others(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, a_hangs="hang_on_import", b_good="micrograd_full", c_segfault="crash_segfault",
                     d_exits="exit_in_backward")
    (subs / "e_syntax.py").write_text("def broken(:\n")
    (subs / "f_empty").mkdir()
    # The ops and numerics suites (83 cases, not all 157): outputs above 1000 (the segfault) and negative ones
    # (the exit) come up again and again, with cases to pass in between and after.
    result = run_grade("--submissions", subs, "--load-timeout", "2", "--jobs", "2", "--no-blame", "--format", "csv",
                       "-k", "ops::", "-k", "numerics::")
    rows = gradebook(result)
    assert list(rows) == ["a_hangs", "b_good", "c_segfault", "d_exits", "e_syntax", "f_empty"]
    assert graded_cleanly(rows["b_good"])
    assert "within 2 s" in rows["a_hangs"]["load_error"]
    assert "syntax error" in rows["e_syntax"]["load_error"]
    assert "no .py file" in rows["f_empty"]["load_error"]
    for name in ("a_hangs", "e_syntax", "f_empty"):
        assert int(rows[name]["error"]) == int(rows[name]["max_score"]), name
    for name in ("c_segfault", "d_exits"):  # crashed on some cases, and went on to pass others
        assert int(rows[name]["error"]) > 1 and int(rows[name]["passed"]) > int(rows[name]["error"]), name


def test_only_folders_and_py_files_are_submissions(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, alice="micrograd_full")
    (subs / "notes.txt").write_text("not a submission")
    (subs / "__MACOSX").mkdir()
    (subs / ".git").mkdir()
    (subs / "__pycache__").mkdir()
    rows = gradebook(run_grade("--submissions", subs, *ONE_CASE, "--format", "csv"))
    assert list(rows) == ["alice"]


def test_spreadsheet_formulas_in_submission_names_are_defused(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, **{"=HYPERLINK(1)": "micrograd_full"})
    rows = gradebook(run_grade("--submissions", subs, *ONE_CASE, "--format", "csv"))
    assert list(rows) == ["'=HYPERLINK(1)"]


def test_two_submissions_with_one_name_are_a_clear_error(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, alice="micrograd_full", alice_dir="micrograd_full")
    result = run_grade("--submissions", subs)
    assert result.code == 2
    assert result.stderr == ("grade: error: two submissions are named 'alice' (a folder and a .py file?); "
                             "rename one so that every submission id is unique\n")


def test_an_empty_or_missing_submissions_folder_is_a_clear_error(tmp_path):
    result = run_grade("--submissions", tmp_path)
    assert (result.code, result.stderr) == (
        2, f"grade: error: no submissions in {tmp_path}: expected child folders, .py, .ipynb or .zip files, or an LMS download\n")
    result = run_grade("--submissions", tmp_path / "missing")
    assert (result.code, result.stderr) == (2, f"grade: error: --submissions {tmp_path / 'missing'}: no such folder or zip\n")


def test_fail_under_gates_on_every_engines_percent(tmp_path):
    bug = fixture_engine("bug_mul_swapped", tmp_path)
    quick = ("--no-blame", "-k", "ops::")  # blame does not change a score; the ops suite has a mix of verdicts
    percent = run_grade(*quick, "--engine", bug, "--format", "json").report["engines"][0]["percent"]
    assert 50 < percent < 90
    assert run_grade(*quick, "--engine", bug, "--fail-under", "50").code == 0
    assert run_grade(*quick, "--engine", bug, "--fail-under", str(percent)).code == 0
    assert run_grade(*quick, "--engine", bug, "--fail-under", "90").code == 1
    assert run_grade(*quick, "--engine", bug, "--engine", "reference", "--fail-under", "90").code == 1
    assert run_grade(*quick, "--engine", "reference", "--fail-under", "100").code == 0
    assert run_grade(*quick, "--engine", bug, "--fail-under", "101").code == 2


def run_with_tty_stderr(*args) -> tuple[int, str, str]:
    """Run grade with stderr on a pseudo-terminal: (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    stdout = proc.stdout.read()
    code = proc.wait(timeout=120)
    os.close(master)
    return code, stdout, shown.decode("utf-8", "replace")


def test_a_large_batch_shows_progress_on_a_terminal(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, **{f"s{i}": "micrograd_full" for i in range(5)})
    code, stdout, shown = run_with_tty_stderr("--submissions", subs, *ONE_CASE, "--format", "csv", "--jobs", "2")
    assert code == 0
    assert len(stdout.splitlines()) == 6  # the report is whole on stdout, untouched by the progress line
    assert "graded 1/5 submissions" in shown
    last = shown.rstrip().split("\r")[-1]
    assert last.startswith("graded 5/5 submissions, 0:0") and "elapsed, ETA 0:00" in last


def test_no_progress_line_for_a_small_batch_or_off_a_terminal(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, **{f"s{i}": "micrograd_full" for i in range(5)})
    result = run_grade("--submissions", subs, *ONE_CASE, "--format", "csv")
    assert result.code == 0 and result.stderr == ""
    shutil.rmtree(subs)
    make_submissions(subs, **{f"s{i}": "micrograd_full" for i in range(4)})
    code, _, shown = run_with_tty_stderr("--submissions", subs, *ONE_CASE, "--format", "csv")
    assert code == 0 and shown == ""


def test_the_text_report_names_each_submission(tmp_path):
    subs = tmp_path / "subs"
    make_submissions(subs, alice_dir="micrograd_full", bob="bug_sub_sign")
    result = run_grade("--submissions", subs, *ONE_CASE)
    assert result.code == 0, result.stderr
    assert f"== alice: engine ({subs / 'alice'})" in result.stdout.splitlines()
    assert f"== bob ({subs / 'bob.py'})" in result.stdout.splitlines()
    assert "alice: 1/1 points (100.0%), 1 passed" in result.stdout.splitlines()


def test_a_harness_failure_on_one_submission_costs_only_that_one(monkeypatch):
    """Even the harness failing (no more processes, say) on one submission leaves the others graded."""
    from harness.running import grading
    from harness.cases.loader import load_suites
    from harness.running.runner import Limits

    real = grading.grade_engine

    def grade_engine(spec, cases, limits, *feedback):
        if spec == "boom":
            raise OSError(24, "Too many open files")
        return real(spec, cases, limits, *feedback)

    monkeypatch.setattr(grading, "grade_engine", grade_engine)
    cases = [c for s in load_suites() for c in s.cases if c.id == "notebook::a_plus_b_times_c"]
    run = grading.grade(["reference", "boom", "reference"], cases, Limits(), jobs=2, ids=[None, "boom", "again"])
    assert [(e.submission, e.cases[0].status) for e in run.engines] == [
        ("reference", "passed"), ("boom", "error"), ("again", "passed")]
    assert run.engines[1].load_error == ("the harness could not grade this submission: "
                                         "OSError: [Errno 24] Too many open files")
