"""Every report format, in process, from one hand-built RunResult: the text is composed once from
typed fields, and nothing an engine said can smuggle a control character into a report."""

from __future__ import annotations

import ast
import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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
from harness.reporting import common, dot, gradescope, html, junit, markdown, text
from harness.reporting import csv as csv_report
from harness.reporting import json as json_report

REPORTING = Path(__file__).resolve().parents[2] / "harness" / "reporting"
ESC = "\x1b[31m"
CTX = CaseContext({"a": 5, "b": 2}, "a - b", 1, 1e-9, 1e-6)
SUB = Diagnosis(DiagnosisKind.OP, "sub", "sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2)",
                Confidence.HIGH, ("sub: d(5 - b)/db is 1, expected -1",), where=Where("engine.py", 12))
PICTURE = GraphPicture(True, nodes=(PictureNode("n0", "leaf", "a", 5.0, 1.0, 1.0),
                                    PictureNode("n1", "leaf", "b", 2.0, -1.0, 1.0, divergent=True),
                                    PictureNode("n2", "sub", "a - b", 3.0, 1.0, 1.0)),
                       edges=(PictureEdge("n0", "n2", 0), PictureEdge("n1", "n2", 1)), output="n2",
                       first_divergent="n1", traced=True)


def build_run(name: str = "engine") -> RunResult:
    sub = CaseResult("ops::sub", Status.FAILED, 0.0, 1.0, mismatches=[Mismatch(MismatchKind.GRAD, -1, 1.0, name="b")],
                     suite="ops", name="sub", description="a - b", hint="the sign of the gradient is flipped",
                     context=CTX, diagnosis=[SUB], graph=PICTURE)
    hinted = CaseResult("ops::neg", Status.FAILED, 0.0, 2.0, mismatches=[Mismatch(MismatchKind.VALUE, -5, 5.0)],
                        suite="ops", name="neg", hint="check neg", context=CTX)
    crashed = CaseResult("ops::log", Status.ERROR, 0.0, 1.0, message=f"the engine raised ValueError: {ESC}bad\nline 2",
                         suite="ops", name="log")
    passed = CaseResult("ops::add", Status.PASSED, 1.0, 1.0, suite="ops", name="add", duration_s=0.002)
    shrunk = Shrunk("a - b at a=1, b=1", 1, Status.FAILED, mismatches=(Mismatch(MismatchKind.GRAD, -1, 1.0, name="b"),),
                    diagnosis=(SUB,))
    fuzzed = CaseResult("fuzz::3", Status.FAILED, 0.0, 0.0, suite="fuzz", name="3",
                        mismatches=[Mismatch(MismatchKind.GRAD, 2, 3.0, name="a")], shrunk=shrunk,
                        diagnosis=[Diagnosis(DiagnosisKind.OP, "sub", SUB.message, Confidence.HIGH, from_shrunk=True)])
    fuzz = FuzzSummary(seed=7, requested=3, forms=("sub (x - y)", "add (x + y)"), generated=3,
                       minimal=(MinimalFailure("grad", "a - b at a=1, b=1", 1),))
    engine = EngineResult(name, "engine.py", [sub, hinted, crashed, passed, fuzzed], submission=name, fuzz=fuzz)
    return RunResult([engine], duration_s=1.5, harness_version="1.2.3", cases_fingerprint="sha256:" + "ab" * 32,
                     sandbox="bwrap")


FORMATS = {"text": text.render, "markdown": markdown.render, "html": html.render, "junit": junit.render,
           "csv": csv_report.render, "gradescope": gradescope.render, "json": json_report.render,
           "dot": dot.render}


def test_a_case_message_is_composed_once_from_its_fields():
    sub, hinted, crashed, _, fuzzed = build_run().engines[0].cases
    assert common.case_lines(sub) == [
        "grad of b: expected -1, got 1",
        "inputs a=5, b=2; output = a - b; backward() x1; tolerance abs 1e-09 + rel 1e-06",
        "case: a - b",
        "blame (high confidence): sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2) [engine.py:12]",
    ]  # the blame replaces the judge's guess
    assert common.case_lines(hinted)[-1] == "likely: check neg"
    assert common.case_text(crashed) == f"the engine raised ValueError: {ESC}bad\nline 2"
    assert common.summary(crashed) == f"the engine raised ValueError: {ESC}bad"
    assert common.case_lines(fuzzed) == [
        "grad of a: expected 2, got 3",
        "shrunk to 1 op(s): a - b at a=1, b=1: grad of b: expected -1, got 1",
        f"blame (high confidence, on the shrunk expression): {SUB.message}",
    ]
    assert common.case_lines(sub, blame=False)[-1] == "case: a - b"


def test_text_report():
    out = text.render(build_run(), ReportContext())
    lines = out.splitlines()
    assert lines[0] == "== engine (engine.py)"
    assert lines[1].startswith("FAIL        ops::sub ")
    assert "            | grad of b: expected -1, got 1" in lines
    assert "            | likely: check neg" in lines
    assert "            | the engine raised ValueError: \\x1b[31mbad" in lines and "            | line 2" in lines
    assert "what to fix first:" in lines
    assert "  - sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2) [engine.py:12] (2 cases, e.g. ops::sub)" in lines
    assert "fuzz: 3 random expressions (seed 7) over add, sub" in lines
    assert "      shrunk failure (grad, 1 op(s)): a - b at a=1, b=1" in lines
    assert "engine: 1/5 points (20.0%), 1 passed, 3 failed, 1 error" in lines
    assert lines[-1] == "graded 1 engine(s) in 1.50 s; sandbox: bwrap"
    assert "\x1b" not in out
    assert "\x1b[1m" in text.render(build_run(), ReportContext(color=True))  # its own colors only when asked


def test_json_report_has_the_contract_keys_the_composed_message_and_the_typed_fields():
    report = json.loads(json_report.render(build_run(), ReportContext()))
    assert (report["harness_version"], report["cases_fingerprint"], report["sandbox"]) == (
        "1.2.3", "sha256:" + "ab" * 32, "bwrap")
    e = report["engines"][0]
    assert (e["engine"], e["source"], e["score"], e["max_score"]) == ("engine", "engine.py", 1.0, 5.0)
    sub = e["cases"][0]
    assert {"id", "status", "score", "max_score", "message", "duration_s"} <= set(sub)
    assert sub["message"] == common.case_text(build_run().engines[0].cases[0])
    assert sub["mismatches"] == [{"quantity": "grad of b", "kind": "grad", "name": "b", "expected": -1, "got": 1.0}]
    assert sub["diagnosis"][0]["where"] == {"file": "engine.py", "line": 12}
    assert sub["graph"]["edges"] == [["n0", "n2", 0], ["n1", "n2", 1]]
    assert e["fuzz"]["minimal"] == [{"failure": "grad", "expression": "a - b at a=1, b=1", "ops": 1}]
    assert e["cases"][4]["shrunk"]["message"] == "grad of b: expected -1, got 1"


def test_markdown_report():
    out = markdown.render(build_run(), ReportContext())
    assert "### ❌ engine: 1/5 points (20.0%)" in out
    (row,) = [line for line in out.splitlines() if "`ops::sub`" in line and line.startswith("|")]
    assert row.startswith("| ❌ failed | `ops::sub` | 0/1 | grad of b: expected -1, got 1<br>inputs a=5")
    assert out.rstrip().endswith("(sandbox: bwrap).")


def test_junit_report():
    root = ET.fromstring(junit.render(build_run(), ReportContext()))
    failure = root.find("testsuite/testcase[@name='ops::sub']/failure")
    assert failure.get("message") == "grad of b: expected -1, got 1"
    assert failure.text.startswith("grad of b: expected -1, got 1\ninputs a=5, b=2")
    error = root.find("testsuite/testcase[@name='ops::log']/error")
    assert error.get("message") == "the engine raised ValueError: \\x1b[31mbad"


def test_csv_report():
    rows = list(csv.DictReader(io.StringIO(csv_report.render(build_run(), ReportContext()))))
    assert rows[0]["score"] == "1" and rows[0]["ops::sub"] == "failed" and rows[0]["failed"] == "3"


def test_gradescope_report_clamps_and_records_what_graded_it():
    run = build_run()
    run.engines.append(EngineResult("engine", "engine.py", [CaseResult("ops::add", Status.PASSED, 1.0, 1.0)] * 9,
                                    submission="engine"))
    report = json.loads(gradescope.render(run, ReportContext()))
    assert report["score"] <= max(e.max_score for e in run.engines)
    assert report["extra_data"] == {"harness_version": "1.2.3", "cases_fingerprint": "sha256:" + "ab" * 32,
                                    "sandbox": "bwrap"}
    test = next(t for t in report["tests"] if t["name"].endswith("ops::sub"))
    assert test["output"].startswith("failed: grad of b: expected -1, got 1\n")


def test_html_report_shows_blame_once_and_the_picture():
    out = html.render(build_run(), ReportContext())
    # once per case that it explains: in the case's blame, not again in its message; and once in what to fix first
    assert out.count("sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2)") == 3
    assert 'data-node="n1"' in out and "first" in out
    assert "sandbox bwrap" in out


def test_dot_report_draws_the_failing_graph():
    out = dot.render(build_run(), ReportContext())
    assert 'digraph "engine: ops::sub"' in out and "n1 -> n2" in out and "color=red" in out


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_control_characters_from_an_engine_never_reach_a_report(fmt):
    name = f"{ESC}red\u202e\r"
    out = FORMATS[fmt](build_run(name), ReportContext())
    if fmt == "json":  # JSON escapes them itself
        assert json.loads(out)["engines"][0]["engine"] == name
    if fmt == "csv":  # its rows end in CRLF (RFC 4180)
        out = out.replace("\r\n", "\n")
    assert not any(ch in out for ch in ("\x1b", "\u202e", "\r")), fmt


def test_clean_escapes_controls_but_keeps_lines_and_tabs():
    assert common.clean("a\x1b[2Jb\tc\r\nd\x9be\u2066") == "a\\x1b[2Jb\tc\nd\\x9be\\u2066"


@pytest.mark.parametrize("path", sorted(p.name for p in REPORTING.glob("*.py") if p.name != "__init__.py"))
def test_reporters_import_only_the_model_and_the_common_helpers(path):
    tree = ast.parse((REPORTING / path).read_text())
    harness_imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                       and n.module and n.module.startswith("harness")}
    allowed = {"harness", "harness.model", "harness.reporting.common", "harness.reporting.layout"}
    assert harness_imports <= allowed, path


def _harness_imports(module: str) -> set[str]:
    """Every harness module ``module`` imports, directly or not (module-level and function-level alike)."""
    root = REPORTING.parent.parent
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = root / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = root / name.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text())
        for n in ast.walk(tree):
            names = ([a.name for a in n.names] if isinstance(n, ast.Import)
                     else [n.module] + [f"{n.module}.{a.name}" for a in n.names]
                     if isinstance(n, ast.ImportFrom) and n.module else [])
            for imported in names:
                if imported.startswith("harness") and ((root / (imported.replace(".", "/") + ".py")).exists()
                                                       or (root / imported.replace(".", "/")).is_dir()):
                    todo.append(imported)
    return seen


@pytest.mark.parametrize("module", ["harness.reporting." + p.stem for p in sorted(REPORTING.glob("*.py"))]
                         + ["harness.judging.compare", "harness.model"])
def test_reporters_and_the_judge_never_reach_the_process_supervisor(module):
    reached = _harness_imports(module)
    assert not {m for m in reached if m.startswith(("harness.running.runner", "harness.sandbox"))}, module


def test_a_gradient_the_engine_did_not_give_says_so():
    assert common.mismatch_sentence(Mismatch(MismatchKind.GRAD, -1, None, name="b")) == (
        "grad of b: expected -1, got no gradient (None)")
    assert common.mismatch_sentence(Mismatch(MismatchKind.VALUE, 3, None)) == "value: expected 3, got None"


def test_a_json_report_reads_back_into_the_same_typed_run(tmp_path):
    from harness.batch import shards

    run = build_run()
    path = tmp_path / "report.json"
    path.write_text(json_report.render(run, ReportContext()))
    back = shards.merge([path])
    assert list(back.engines) == run.engines  # every typed field, mismatches, diagnoses, picture and shrunk included
    assert (back.harness_version, back.cases_fingerprint, back.sandbox) == ("1.2.3", "sha256:" + "ab" * 32, "bwrap")
    for fmt, render in FORMATS.items():
        assert render(back, ReportContext()) == render(run, ReportContext()), fmt


def test_merge_keeps_agreeing_versions_and_lists_different_ones(tmp_path):
    from harness.batch import shards

    paths = []
    for n, version in enumerate(("1.0", "1.0", "2.0")):
        run = build_run()
        run.harness_version, run.engines[0].submission = version, f"s{n}"
        paths.append(tmp_path / f"{n}.json")
        paths[-1].write_text(json_report.render(run, ReportContext()))
    assert shards.merge(paths[:2]).harness_version == "1.0"
    assert shards.merge(paths).harness_version == "1.0,2.0"


def test_merge_refuses_shards_of_different_case_sets(tmp_path):
    from harness.batch import shards
    from harness.errors import HarnessError

    paths = []
    for k, fingerprint in ((1, "sha256:aa"), (2, "sha256:bb")):
        run = build_run()
        run.shard, run.cases_fingerprint, run.engines[0].submission = (k, 2), fingerprint, f"s{k}"
        paths.append(tmp_path / f"{k}.json")
        paths[-1].write_text(json_report.render(run, ReportContext()))
    with pytest.raises(HarnessError, match="graded different case sets"):
        shards.merge(paths)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "junit", "gradescope", "json"])
def test_every_report_about_a_submission_says_where_its_engine_was_defined(fmt):
    run = build_run()
    engine = run.engines[0]
    engine.origin = "student.ipynb, cell 7: class Value"
    engine.load_notes = ["cell 3 skipped: ModuleNotFoundError: No module named 'graphviz'"]
    out = FORMATS[fmt](run, ReportContext())
    assert "student.ipynb, cell 7: class Value" in out, fmt
    assert "No module named" in out, fmt


def test_every_format_that_names_the_sandbox_names_the_cgroup_limits_next_to_it():
    run = build_run()
    run.cgroup = "v1: pids.max=64, memory.limit_in_bytes=2048M"
    assert text.render(run, ReportContext()).splitlines()[-1] == (
        "graded 1 engine(s) in 1.50 s; sandbox: bwrap; cgroup: v1: pids.max=64, memory.limit_in_bytes=2048M")
    assert json.loads(json_report.render(run, ReportContext()))["cgroup"] == run.cgroup
    assert json.loads(gradescope.render(run, ReportContext()))["extra_data"]["cgroup"] == run.cgroup
    assert "cgroup: v1: pids.max=64" in markdown.render(run, ReportContext())
    assert "cgroup v1: pids.max=64" in html.render(run, ReportContext())
    props = ET.fromstring(junit.render(run, ReportContext())).find("testsuite/properties")
    assert {p.get("name"): p.get("value") for p in props}.items() >= {"sandbox": "bwrap",
                                                                      "cgroup": run.cgroup}.items()
    assert "cgroup" not in json.loads(json_report.render(build_run(), ReportContext()))  # not recorded: absent
    assert "cgroup" not in junit.render(build_run(), ReportContext())
