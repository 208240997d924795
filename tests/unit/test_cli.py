"""The grade command line, in-process: subcommands and their flag forms, option values, one-line
errors, --help's format list, the one place that writes output, --output-dir names."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from harness import cli, plugins
from harness.cli import Outcome

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "softplus_plugin.py"


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """-p changes sys.path, PYTHONPATH and HARNESS_PLUGINS; put them back after each test (monkeypatch's
    delenv of an unset variable records nothing, so a variable set by the test would stay)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {name: os.environ.get(name) for name in (plugins.PLUGINS_ENV, "PYTHONPATH")}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def usage_error(capsys, argv) -> str:
    """The one line a bad command line gets (exit 2, no traceback)."""
    with pytest.raises(SystemExit) as e:
        cli.parse(argv)
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- subcommands and their flag forms ------------------------------------------------------------

@pytest.mark.parametrize("argv, mode", [
    (["--engine", "reference"], "grade"),
    ([], "grade"),
    (["list"], "list"), (["--list"], "list"),
    (["check-cases"], "check-cases"), (["--check-cases"], "check-cases"),
    (["schema"], "schema"), (["--schema"], "schema"),
    (["build-gradescope", "a.zip"], "build-gradescope"), (["--build-gradescope", "a.zip"], "build-gradescope"),
    (["merge", "a.json", "b.json"], "merge"),
])
def test_each_mode_is_a_subcommand_and_keeps_its_flag(argv, mode):
    args = cli.parse(argv)
    assert args.mode == mode
    if mode == "build-gradescope":
        assert args.build_gradescope == "a.zip"
    if mode == "merge":
        assert args.reports == ["a.json", "b.json"] and args.format is None


def test_options_before_and_after_a_subcommand_add_up():
    args = cli.parse(["-k", "ops", "--tag", "add", "list", "-k", "notebook", "--cases", "c.yaml"])
    assert [k.text for k in args.keyword] == ["ops", "notebook"]
    assert args.tag == ["add"] and args.cases == ["c.yaml"]


def test_a_subcommand_keeps_the_defaults_of_grade():
    args = cli.parse(["build-gradescope", "a.zip", "--timeout", "5"])
    assert (args.timeout, args.load_timeout, args.memory_mb, args.blame) == (5.0, 20.0, 2048, True)


@pytest.mark.parametrize("argv, needle", [
    (["--engine", "x.py", "merge", "a.json"], "grade merge: error: --engine does not apply to 'grade merge'"),
    (["schema", "--cases", "c.yaml"], "grade schema: error: --cases does not apply to 'grade schema'"),
    (["list", "--jobs=2"], "grade list: error: --jobs does not apply to 'grade list'"),
    (["check-cases", "--engine", "x.py"], "grade check-cases: error: --engine does not apply to 'grade check-cases'"),
    (["list", "--nope", "x"], "grade list: error: unrecognized arguments: --nope x (see 'grade list --help')"),
    (["--list", "--check-cases"], "grade: error: check-cases and list are exclusive modes: choose one"),
    (["--schema", "build-gradescope", "a.zip"], "--schema does not apply to 'grade build-gradescope'"),
    (["grades"], "grade: error: argument COMMAND: invalid choice: 'grades'"),
    (["merge"], "grade merge: error: the following arguments are required: REPORT"),
    (["build-gradescope"], "grade build-gradescope: error: the following arguments are required: ZIP"),
    (["--no-such-flag"], "grade: error: unrecognized arguments: --no-such-flag"),
    (["--engine", "e.py", "--ouptut", "r.json"],
     "grade: error: unrecognized arguments: --ouptut (did you mean '--output'?) (see 'grade --help')"),
    (["--engine", "e.py", "-o", "r.json"], "grade: error: unrecognized arguments: -o (see 'grade --help')"),
    (["--graph", "svg"], "argument --graph: invalid choice: 'svg'"),
    (["--shard", "4/3"], "argument --shard: K must be between 1 and N"),
    (["--forbid-import", "torch; rm -rf /"], "argument --forbid-import:"),
    (["--timeout", "-1"], "argument --timeout: must be > 0, got -1"),
    (["--timeout", "inf"], "argument --timeout: 'inf' is not a finite number"),
    (["--memory-mb", "1.5"], "argument --memory-mb: '1.5' is not a whole number"),
    (["--seed", "x"], "argument --seed: 'x' is not a whole number"),
    (["--fuzz", "-2"], "argument --fuzz: must be >= 0, got -2"),
])
def test_every_bad_command_line_is_one_line_and_exit_2(capsys, argv, needle):
    assert needle in usage_error(capsys, argv)


@pytest.mark.parametrize("text, value", [("0", 0.0), ("0.00", 0.0), ("0.0", 0.0), ("55.5", 55.5),
                                         ("100", 100.0), ("1e2", 100.0), ("100.000", 100.0)])
def test_fail_under_takes_any_number_from_0_to_100(text, value):
    assert cli.parse(["--fail-under", text]).fail_under == value
    assert cli.parse(["merge", "a.json", "--fail-under", text]).fail_under == value


@pytest.mark.parametrize("text, problem", [
    ("-1", "must be between 0 and 100, got -1"), ("100.5", "must be between 0 and 100, got 100.5"),
    ("nan", "'nan' is not a finite number"), ("half", "'half' is not a number"),
])
def test_fail_under_refuses_anything_else(capsys, text, problem):
    assert usage_error(capsys, ["--fail-under", text]) == (
        f"grade: error: argument --fail-under: {problem} (see 'grade --help')\n")


def test_jobs_takes_1_or_more(capsys):
    assert cli.parse(["--jobs", "1"]).jobs == 1 and cli.parse(["--jobs", "16"]).jobs == 16
    assert cli.parse([]).jobs == (os.cpu_count() or 1)
    assert usage_error(capsys, ["--jobs", "0"]) == (
        "grade: error: argument --jobs: must be 1 or more, got 0 (see 'grade --help')\n")
    assert "must be 1 or more, got -3" in usage_error(capsys, ["--jobs", "-3"])
    assert "'two' is not a whole number" in usage_error(capsys, ["--jobs", "two"])


def test_k_takes_expressions_and_refuses_bad_ones_in_one_line(capsys):
    args = cli.parse(["-k", "ops and not sigmoid", "-k", "notebook::"])
    assert [k.text for k in args.keyword] == ["ops and not sigmoid", "notebook::"]
    assert usage_error(capsys, ["-k", "ops and"]) == (
        "grade: error: argument -k: bad expression 'ops and': at column 8: expected a name, 'not' or '('; "
        "got the end of the expression (see 'grade --help')\n")


def test_exclude_tag_repeats():
    assert cli.parse(["--exclude-tag", "semantics", "--exclude-tag", "numerics"]).exclude_tag == [
        "semantics", "numerics"]


def test_p_takes_a_module_name_or_a_path_to_a_py_file(capsys, tmp_path):
    assert cli.parse(["-p", "course.plugin", "-p", str(PLUGIN)]).plugin == ["course.plugin", str(PLUGIN)]
    assert usage_error(capsys, ["-p", str(tmp_path / "missing.py")]).endswith("missing.py: no such .py file "
                                                                              "(see 'grade --help')\n")
    (tmp_path / "my-plugin.py").write_text("")
    assert "'my-plugin' cannot be a module name" in usage_error(capsys, ["-p", str(tmp_path / "my-plugin.py")])
    assert "is neither a module name nor a path" in usage_error(capsys, ["-p", "not a module"])


# --- --help --------------------------------------------------------------------------------------

def formats_in_help(capsys, argv) -> str:
    with pytest.raises(SystemExit) as e:
        cli.parse(argv)
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    return text[text.index("--format FORMAT report format:"):]


def test_help_lists_every_format_of_the_registry(capsys):
    registered = plugins.reporters(plugins.installed_manager())
    assert {"html", "dot", "text", "json"} <= set(registered)
    listed = formats_in_help(capsys, ["--help"])
    assert all(f" {name}," in listed or f" {name} (" in listed for name in registered)
    assert "(default: text)" in listed
    assert "(default: json; csv for CSV gradebooks)" in formats_in_help(capsys, ["merge", "--help"])


def test_help_lists_the_formats_of_a_plugin_given_before_it(capsys):
    assert " count," not in formats_in_help(capsys, ["--help"])
    assert " count," in formats_in_help(capsys, ["-p", str(PLUGIN), "--help"])


def test_help_shows_the_subcommands_and_keeps_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.parse(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for command in cli.SUBCOMMANDS:
        assert f" {command} " in out
    assert "--memory-mb MB" in out and "(default: 2048)" in out


# --- running in-process: the modes that start no engine -----------------------------------------

def test_schema_prints_the_schema_path(capsys):
    assert cli.main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(".json\n") and Path(out.strip()).is_file()
    assert cli.main(["--schema"]) == 0 and capsys.readouterr().out == out


def listed(capsys, argv) -> list[str]:
    assert cli.main(argv) == 0
    return [line.split()[0] for line in capsys.readouterr().out.splitlines()]


def test_list_with_expressions_and_excluded_tags(capsys):
    everything = listed(capsys, ["list"])
    assert listed(capsys, ["--list"]) == everything
    no_semantics = listed(capsys, ["list", "-k", "not semantics"])
    assert no_semantics == [i for i in everything if "semantics" not in i] and len(no_semantics) < len(everything)
    ops = listed(capsys, ["list", "-k", "ops and not sigmoid"])
    assert ops and all(i.startswith("ops::") or "ops" in i for i in ops)
    assert not any("sigmoid" in i for i in ops)
    either = listed(capsys, ["list", "-k", "notebook::a_plus", "-k", "x_plus_x"])
    assert either == [i for i in everything if "notebook::a_plus" in i or "x_plus_x" in i]
    untagged = listed(capsys, ["list", "--exclude-tag", "semantics", "--exclude-tag", "numerics"])
    assert untagged and not any(i.startswith(("semantics::", "numerics::")) for i in untagged)


def test_no_case_left_is_one_line(capsys):
    assert cli.main(["list", "-k", "no_such_case"]) == 2
    assert capsys.readouterr().err == "grade list: error: no case matches the -k/--tag/--exclude-tag filters\n"


def test_a_plugin_by_path_loads_in_process(capsys, tmp_path):
    cases = ROOT / "tests" / "plugins" / "softplus_cases.yaml"
    assert listed(capsys, ["list", "-p", str(PLUGIN), "--cases", str(cases)])
    assert str(PLUGIN.parent) in os.environ["PYTHONPATH"].split(os.pathsep)  # for the engine processes
    assert "softplus_plugin" in plugins.extra_plugin_names()


def test_a_plugin_that_fails_to_import_is_one_line(capsys, tmp_path):
    (tmp_path / "broken_plugin.py").write_text("x = 1\nraise RuntimeError('no softplus today')\n")
    assert cli.main(["list", "-p", str(tmp_path / "broken_plugin.py")]) == 2
    err = capsys.readouterr().err
    assert err == (f"grade list: error: cannot import plugin '{tmp_path / 'broken_plugin.py'}': RuntimeError: "
                   f"no softplus today ({tmp_path / 'broken_plugin.py'}:2)\n")


def test_a_plugin_file_named_like_another_module_is_refused(capsys, tmp_path):
    (tmp_path / "json.py").write_text("")
    assert cli.main(["list", "-p", str(tmp_path / "json.py")]) == 2
    assert "the module name 'json' is taken by " in capsys.readouterr().err
    assert str(tmp_path) not in sys.path


def test_a_plugin_in_the_current_folder_loads_by_name(capsys, tmp_path, monkeypatch):
    (tmp_path / "course_formats.py").write_text(
        "from harness import hookimpl\n\n@hookimpl\ndef register_reporters(register):\n"
        "    register('ids', lambda run, context: 'x')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "course_formats", raising=False)
    assert listed(capsys, ["list", "-p", "course_formats", "-k", "notebook::a_plus"])
    assert str(tmp_path) in os.environ["PYTHONPATH"].split(os.pathsep)
    assert "ids" in plugins.reporters(plugins.installed_manager())


# --- the one place that writes output and picks the exit code ------------------------------------

def finish(outcome: Outcome, *argv: str) -> int:
    return cli._finish(outcome, cli.parse(list(argv)))


def test_exit_codes_come_from_the_outcome_and_fail_under(capsys):
    assert finish(Outcome("r\n", passed=True, percents=[100.0])) == 0
    assert finish(Outcome("r\n", passed=False, percents=[40.0, 80.0])) == 1
    assert finish(Outcome("r\n", passed=False, percents=[40.0, 80.0]), "--fail-under", "40") == 0
    assert finish(Outcome("r\n", passed=False, percents=[40.0, 80.0]), "--fail-under", "40.01") == 1
    assert finish(Outcome("r\n", passed=False, percents=[0.0]), "--fail-under", "0.00") == 0
    assert finish(Outcome("r\n", passed=False, percents=None), "--fail-under", "0") == 1  # check-cases
    assert capsys.readouterr().out == "r\n" * 6


def test_output_and_output_dir_are_written_atomically(capsys, tmp_path):
    out, folder = tmp_path / "report.json", tmp_path / "each"
    folder.mkdir()
    outcome = Outcome("all\n", per_submission=[("alice.json", "a\n"), ("bob.json", "b\n")])
    assert finish(outcome, "--output", str(out), "--output-dir", str(folder)) == 0
    assert capsys.readouterr().out == ""
    assert out.read_text() == "all\n"
    assert sorted(p.name for p in folder.iterdir()) == ["alice.json", "bob.json"]
    assert (folder / "bob.json").read_text() == "b\n"


def test_a_listing_ignores_output(capsys, tmp_path):
    assert finish(Outcome("case\n", to_output=False), "--output", str(tmp_path / "x")) == 0
    assert capsys.readouterr().out == "case\n" and not (tmp_path / "x").exists()


class ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        raise io.UnsupportedOperation("not a file")


def test_a_closed_stdout_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err == "grade: error: stdout was closed before everything was written to it\n"


@pytest.mark.parametrize("ids, names", [
    (["alice", "bob"], ["alice.json", "bob.json"]),
    (["bob smith", "../../etc/passwd", ".hidden", "", "..", "ünïcode"],
     ["bob_smith.json", "_.._etc_passwd.json", "hidden.json", "submission.json", "submission-2.json",
      "_n_code.json"]),
    (["reference", "reference", "Reference"], ["reference.json", "reference-2.json", "Reference-3.json"]),
    (["a/b", "a_b"], ["a_b.json", "a_b-2.json"]),
])
def test_output_dir_file_names_are_safe_and_unique(ids, names):
    assert cli.unique_file_names(ids, ".json") == names


def report(path: Path, engines: list[tuple[str, str, list[str]]], shard=None) -> str:
    """A JSON report in the contract's shape: (submission, source, statuses) per engine."""
    doc: dict = {"engines": [
        {"engine": "e", "source": source, "submission": sub, "cases": [
            {"id": f"s::c{i}", "status": status, "score": float(status == "passed"), "max_score": 1.0,
             "message": "", "duration_s": 0.0} for i, status in enumerate(statuses)]}
        for sub, source, statuses in engines]}
    if shard:
        doc["shard"] = {"index": shard[0], "count": shard[1]}
    path.write_text(json.dumps(doc))
    return str(path)


def test_merge_writes_one_report_per_submission_with_output_dir(capsys, tmp_path):
    one = report(tmp_path / "1.json", [("alice", "subs/alice", ["passed", "failed"])], shard=(1, 2))
    two = report(tmp_path / "2.json", [("bob smith", "subs/bob smith.py", ["passed", "passed"])], shard=(2, 2))
    out = tmp_path / "out"
    assert cli.main(["merge", two, one, "--output-dir", str(out)]) == 1
    whole = json.loads(capsys.readouterr().out)
    assert [e["submission"] for e in whole["engines"]] == ["alice", "bob smith"]
    assert sorted(p.name for p in out.iterdir()) == ["alice.json", "bob_smith.json"]
    bob = json.loads((out / "bob_smith.json").read_text())
    assert [e["submission"] for e in bob["engines"]] == ["bob smith"] and bob["engines"][0]["score"] == 2.0
    assert cli.main(["merge", one, two, "--format", "markdown", "--output-dir", str(out),
                     "--fail-under", "50"]) == 0
    assert (out / "alice.md").read_text().count("alice") >= 1


def test_merge_of_csv_gradebooks_refuses_output_dir(capsys, tmp_path):
    (tmp_path / "a.csv").write_text("submission,engine,source,score,max_score,percent\n")
    assert cli.main(["merge", str(tmp_path / "a.csv"), "--output-dir", str(tmp_path / "o")]) == 2
    assert "--output-dir needs the shards' JSON reports" in capsys.readouterr().err


def test_main_returns_the_exit_code_of_a_bad_command_line_or_help(capsys):
    assert cli.main(["--jobs", "0"]) == 2
    assert capsys.readouterr().err == "grade: error: argument --jobs: must be 1 or more, got 0 (see 'grade --help')\n"
    assert cli.main(["list", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: grade list")


def test_report_writes_further_formats_of_the_same_run_each_as_format_would(capsys, tmp_path):
    one = report(tmp_path / "1.json", [("alice", "subs/alice", ["passed", "failed"])], shard=(1, 2))
    two = report(tmp_path / "2.json", [("bob", "subs/bob.py", ["passed", "passed"])], shard=(2, 2))
    alone = {}
    for fmt in ("junit", "markdown", "csv"):
        assert cli.main(["merge", one, two, "--format", fmt]) == 1
        alone[fmt] = capsys.readouterr().out
    assert cli.main(["merge", one, two, "--report", f"junit:{tmp_path / 'r.xml'}",
                     "--report", f"markdown:{tmp_path / 'r.md'}", "--report", f"csv:{tmp_path / 'r.csv'}"]) == 1
    assert json.loads(capsys.readouterr().out)["engines"][0]["submission"] == "alice"  # --format's report
    for fmt, name in (("junit", "r.xml"), ("markdown", "r.md"), ("csv", "r.csv")):
        assert (tmp_path / name).read_bytes().decode() == alone[fmt], fmt


@pytest.mark.parametrize("argv, problem", [
    (["--report", "junit"], "argument --report: expected FORMAT:FILE, e.g. junit:results.xml, got 'junit'"),
    (["--report", ":x.xml"], "argument --report: expected FORMAT:FILE"),
    (["--report", "xml:x.xml"], "unknown --report format 'xml'"),
    (["--report", "junit:no/such/folder/x.xml"], "--report junit:no/such/folder/x.xml: the folder no/such/folder does not exist"),
])
def test_a_bad_report_is_one_line_and_exit_2_before_any_work(capsys, tmp_path, argv, problem):
    one = report(tmp_path / "1.json", [("alice", "subs/alice", ["passed"])])
    assert cli.main(["merge", one, *argv]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1


def test_merge_of_csv_gradebooks_refuses_report(capsys, tmp_path):
    (tmp_path / "a.csv").write_text("submission,engine,source,score,max_score,percent\n")
    assert cli.main(["merge", str(tmp_path / "a.csv"), "--report", f"json:{tmp_path / 'o.json'}"]) == 2
    assert "--report needs the shards' JSON reports" in capsys.readouterr().err


@pytest.mark.parametrize("target, problem", [
    ("autograder.tar", "--build-gradescope autograder.tar: the file name must end in .zip"),
    ("missing/autograder.zip", "--build-gradescope missing/autograder.zip: no such folder missing"),
    ("-p math a.zip", "plugin 'math': no Python source file to put in the zip (is its folder on PYTHONPATH?)")])
def test_a_bad_autograder_request_is_refused_before_any_case_is_checked(capsys, monkeypatch, tmp_path, target,
                                                                        problem):
    from harness.running import reference

    def checked(*args, **kwargs):
        raise AssertionError("the cases were checked before the name")

    monkeypatch.setattr(reference, "resolve", checked)
    monkeypatch.chdir(tmp_path)
    *plugin, zip_name = target.split()
    assert cli.main([*plugin, "build-gradescope", zip_name]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f": error: {problem}\n") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
