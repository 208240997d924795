"""End to end: repositories and LMS bulk downloads given to ``grade``."""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

import pytest

import notebooks
from conftest import ENGINES, fixture_engine, run_grade

pytestmark = pytest.mark.slow
ONE_CASE = ("-k", "notebook::a_plus_b_times_c")
# The marker files prove what did not run only where a script could write them: outside a sandbox.
NO_SANDBOX = ("--sandbox", "none")
TRAIN = ("from pathlib import Path\nPath(__file__).with_name('TRAINED').write_text('train.py ran')\n"
         "from micrograd.nn import Neuron\nfor step in range(10):\n    pass\n")


def micrograd_repo(root: Path) -> Path:
    """micrograd/engine.py, micrograd/nn.py, and a train.py that leaves a marker if it is ever run."""
    (root / "micrograd").mkdir(parents=True)
    (root / "micrograd" / "__init__.py").write_text("")
    shutil.copy(ENGINES / "micrograd_full.py", root / "micrograd" / "engine.py")
    (root / "micrograd" / "nn.py").write_text("from micrograd.engine import Value\n\nclass Neuron:\n    pass\n")
    (root / "train.py").write_text(TRAIN)
    (root / "setup.py").write_text(TRAIN.replace("TRAINED", "SETUP_RAN"))
    return root


def gradebook(result) -> dict:
    assert result.stderr == "", result.stderr
    return {row["submission"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def test_a_repository_is_graded_without_running_its_scripts(tmp_path):
    repo = micrograd_repo(tmp_path / "repo")
    result = run_grade("--engine", repo, "--format", "json", *NO_SANDBOX)
    (engine,) = result.report["engines"]
    assert engine["counts"]["passed"] == engine["max_score"] - engine["counts"]["unsupported"]
    assert engine["origin"] == "micrograd/engine.py: class Value"
    assert not (repo / "TRAINED").exists() and not (repo / "SETUP_RAN").exists()


def test_dir_module_class_points_at_the_engine(tmp_path):
    repo = micrograd_repo(tmp_path / "repo")
    (repo / "micrograd" / "other.py").write_text(fixture_engine("bug_sub_sign").read_text())
    result = run_grade("--engine", f"{repo}::micrograd.engine:Value", *ONE_CASE, "--format", "json", *NO_SANDBOX)
    (engine,) = result.report["engines"]
    assert engine["counts"]["passed"] == 1 and engine["source"] == f"{repo}::micrograd.engine:Value"
    assert not (repo / "TRAINED").exists()


def test_a_repository_without_an_engine_lists_the_candidates(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    (repo / "pkg" / "model.py").write_text("class Weak:\n    def backward(self):\n        raise RuntimeError('no')\n")
    (repo / "train.py").write_text(TRAIN)
    result = run_grade("--engine", repo, *ONE_CASE, "--format", "json", *NO_SANDBOX)
    (engine,) = result.report["engines"]
    assert engine["load_error"].splitlines()[0] == (
        f"no engine found in {repo}: looked at 3 .py file(s); scripts never run to find the engine: train.py")
    assert "candidates tried: pkg/model.py: class Weak (backward but no operators): no engine found" in \
        engine["load_error"]
    assert engine["counts"]["error"] == 1 and not (repo / "TRAINED").exists()


def canvas_files(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(ENGINES / "micrograd_full.py", folder / "smithjane_1001_5001_engine.py")
    shutil.copy(fixture_engine("bug_sub_sign"), folder / "doejohn_LATE_1002_5002_engine-1.py")
    notebooks.write(folder / "leeann_1003_5003_hw1.ipynb", notebooks.tutorial_cells())
    with zipfile.ZipFile(folder / "kimbo_1004_5004_hw.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * (3 << 20))
    (folder / "parkmin_1005_5005_notes.txt").write_text("no code at all")
    return folder


def moodle_folders(folder: Path) -> Path:
    jane = folder / "Jane Smith_1001_assignsubmission_file_"
    jane.mkdir(parents=True)
    notebooks.write(jane / "micrograd.ipynb", notebooks.micrograd_cells(str(folder.parent / "TRAINED")))
    john = folder / "John Doe_1002_assignsubmission_file_"
    john.mkdir()
    repo = micrograd_repo(folder.parent / "john_repo")
    with zipfile.ZipFile(john / "repo.zip", "w") as zf:
        for p in sorted(repo.rglob("*")):
            zf.write(p, p.relative_to(repo.parent).as_posix())
    (folder / "John Doe_1002_assignsubmission_onlinetext_").mkdir()
    (folder / "John Doe_1002_assignsubmission_onlinetext_" / "onlinetext.html").write_text("<p>see zip</p>")
    return folder


def zipped(folder: Path) -> Path:
    target = folder.with_suffix(".zip")
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder).as_posix())
    return target


@pytest.mark.parametrize("as_zip", [False, True])
def test_a_canvas_download_is_graded_per_student(tmp_path, as_zip):
    download = canvas_files(tmp_path / "canvas")
    rows = gradebook(run_grade("--submissions", zipped(download) if as_zip else download, *ONE_CASE,
                               "--format", "csv"))
    assert list(rows) == ["doejohn_1002", "kimbo_1004", "leeann_1003", "parkmin_1005", "smithjane_1001"]
    for sid in ("doejohn_1002", "leeann_1003", "smithjane_1001"):
        assert rows[sid]["passed"] == "1", rows[sid]
    assert rows["kimbo_1004"]["load_error"].startswith("hw.zip: refused as an archive bomb")
    assert rows["parkmin_1005"]["error"] == "1"
    assert rows["smithjane_1001"]["source"].endswith(": smithjane_1001_5001_engine.py")


@pytest.mark.parametrize("as_zip", [False, True])
def test_a_moodle_download_is_graded_per_student(tmp_path, as_zip):
    download = moodle_folders(tmp_path / "moodle")
    result = run_grade("--submissions", zipped(download) if as_zip else download, *ONE_CASE, "--format", "json",
                       *NO_SANDBOX)
    assert result.stderr == ""
    engines = {e["submission"]: e for e in result.report["engines"]}
    assert list(engines) == ["Jane Smith_1001", "John Doe_1002"]
    assert engines["Jane Smith_1001"]["origin"] == "micrograd.ipynb, cell 9: class Value"
    assert engines["John Doe_1002"]["origin"] == "micrograd/engine.py: class Value"
    assert all(e["counts"]["passed"] == 1 for e in engines.values())
    assert not (tmp_path / "TRAINED").exists()
