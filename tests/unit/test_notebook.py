"""Notebooks, in-process: reading them grader-side, and running their cells as one module."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import notebooks  # noqa: E402  (tests/notebooks.py: the fixture notebooks)

from harness.engine_side import cells as C  # noqa: E402
from harness.engine_side.adapters import MicrogradAdapter, NotebookAdapter  # noqa: E402
from harness.engine_side.loading import LoadError, load  # noqa: E402
from harness.intake.notebook import NotebookError, read_cells, submission_fields  # noqa: E402


# -- reading a .ipynb, grader side ---------------------------------------------------------------

@pytest.mark.parametrize("outputs", [False, True])
def test_the_code_cells_come_out_numbered_by_their_place_among_all_cells(tmp_path, outputs):
    cells = notebooks.tutorial_cells()
    path = notebooks.write(tmp_path / "student.ipynb", notebooks.with_outputs(cells) if outputs else cells)
    read = read_cells(path)
    assert [n for n, _ in read] == [2, 3, 4, 5, 6, 7]  # cell 1 is markdown
    assert read[0][1] == "from typing import Optional"
    assert "def _add(" in read[1][1] and "output of cell" not in "".join(s for _, s in read)


def test_an_old_v3_notebook_is_upgraded(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": ["x = 1\n", "y = 2"], "language": "python", "outputs": []}]}]}
    (tmp_path / "old.ipynb").write_text(json.dumps(v3))
    assert read_cells(tmp_path / "old.ipynb") == [(1, "x = 1\ny = 2")]


@pytest.mark.parametrize("text, reason", [
    ("{not json", "student.ipynb: not a notebook (its text is not JSON); was it saved from Jupyter or Colab as .ipynb?"),
    (json.dumps({"nbformat": 9, "nbformat_minor": 0, "cells": []}),
     "student.ipynb: not a notebook nbformat can read (Unsupported nbformat version 9)"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                 "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# only prose"}]}),
     "student.ipynb: the notebook holds no code cell"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"language": "R", "name": "ir",
                                                                                  "display_name": "R"}},
                 "cells": [{"cell_type": "code", "metadata": {}, "source": "x <- 1", "outputs": [],
                            "execution_count": None}]}),
     "student.ipynb: a r notebook, not a Python one"),
])
def test_a_corrupt_notebook_is_one_line_naming_the_file(tmp_path, text, reason):
    (tmp_path / "student.ipynb").write_text(text)
    with pytest.raises(NotebookError) as e:
        read_cells(tmp_path / "student.ipynb")
    assert str(e.value) == reason
    assert submission_fields(str(tmp_path / "student.ipynb"), "defs") == {"notebook_mode": "defs", "unreadable": reason}


def test_a_notebook_too_large_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    from harness.intake import notebook

    path = notebooks.write(tmp_path / "big.ipynb", notebooks.tutorial_cells())
    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_BYTES", 1000)
    with pytest.raises(NotebookError, match=r"^big.ipynb: the notebook is 0 MB, more than the 0 MB"):
        read_cells(path)


# -- IPython syntax ------------------------------------------------------------------------------

def test_magics_and_shell_lines_become_pass_and_are_listed():
    source = "import math\n%matplotlib inline\n!pip install graphviz\nfiles = !ls\nif True:\n    %time x = 1\nmath?\n"
    stripped, skipped = C.strip_ipython(source)
    assert stripped == "import math\npass\npass\npass\nif True:\n    pass\npass\n"
    assert skipped == [(2, "%matplotlib inline"), (3, "!pip install graphviz"), (4, "files = !ls"),
                       (6, "%time x = 1"), (7, "math?")]


def test_valid_python_is_left_alone_except_get_ipython_calls():
    source = "x = (1\n   %2)\nget_ipython().run_line_magic('matplotlib', 'inline')\ny = 5 % 3\n"
    stripped, skipped = C.strip_ipython(source)
    assert stripped == "x = (1\n   %2)\npass\ny = 5 % 3\n"
    assert skipped == [(3, "get_ipython().run_line_magic('matplotlib', 'inline')")]


def test_cell_magics_run_python_bodies_and_skip_the_others():
    assert C.strip_ipython("%%time\nx = 1\n") == ("\nx = 1\n", [(1, "%%time")])
    assert C.strip_ipython("# setup\n%%bash\necho hi\n") == ("", [(2, "%%bash (the whole cell)")])


# -- what runs in defs mode ----------------------------------------------------------------------

def _stmt(code: str):
    import ast

    return ast.parse(code).body[0]


@pytest.mark.parametrize("code", [
    "import math", "from x import y", "def f(): pass", "class A: pass", "x = 1", "x: int = 1", "x += 1",
    "'''a docstring'''", "setattr(Value, 'exp', exp)",
    "try:\n    import graphviz\nexcept ImportError:\n    graphviz = None",
    "if HAVE_TORCH:\n    import torch\nelse:\n    torch = None",
])
def test_statements_that_define_names_run(code):
    assert C.defines(_stmt(code))


@pytest.mark.parametrize("code", [
    "for k in range(10000): step()", "while True: pass", "plt.plot(xs, ys)", "L.backward()", "assert x == 1",
    "if __name__ == '__main__':\n    main()", "if True:\n    train()", "with open('f') as f:\n    data = f.read()",
    "print('hello')",
])
def test_loops_expressions_asserts_and_main_guards_do_not(code):
    assert not C.defines(_stmt(code))


# -- exported scripts ----------------------------------------------------------------------------

def test_an_nbconvert_script_splits_at_its_in_markers():
    text = notebooks.as_nbconvert_script(notebooks.tutorial_cells())
    assert C.looks_exported(text)
    cells = C.split_script(text)
    assert [c.number for c in cells][:3] == [1, 2, 3]
    first_line = text.splitlines()[cells[1].line - 1]
    assert first_line == cells[1].source.splitlines()[0]


def test_a_colab_script_is_one_cell_without_a_number():
    text = notebooks.as_colab_script(notebooks.micrograd_cells("/nowhere"))
    assert C.looks_exported(text)
    assert [(c.number, c.line) for c in C.split_script(text)] == [(0, 1)]


def test_a_plain_module_is_not_an_export():
    assert not C.looks_exported(notebooks.SEED_ENGINE.read_text())
    assert C.looks_exported("import math\n!pip install graphviz\n")


# -- running cells -------------------------------------------------------------------------------

def _run(sources: list, mode: str = "defs", name: str = "student.ipynb") -> C.CellRunner:
    module = C.new_module(f"_test_cells_{abs(hash(tuple(sources)))}_{mode}", None)
    runner = C.CellRunner(module, name, None)
    runner.run([C.Cell(n, s) for n, s in enumerate(sources, 1)], mode)
    return runner


def test_a_failing_cell_is_noted_and_the_cells_after_it_still_run():
    runner = _run(["import graphviz\nx = 1", "assert False, 'self-test'", "y = 2"], mode="all")
    assert runner.module.y == 2 and not hasattr(runner.module, "x")
    assert runner.notes.lines() == [
        "student.ipynb, cell 1: the cell raised ModuleNotFoundError: No module named 'graphviz', "
        "so the rest of the cell was skipped",
        "student.ipynb, cell 2: the cell raised AssertionError: self-test, so the rest of the cell was skipped"]


def test_in_defs_mode_a_failing_statement_costs_only_itself():
    runner = _run(["import graphviz\nx = 1\nassert False\nfor i in range(3):\n    x += 1\nprint(x)"])
    assert runner.module.x == 1
    assert runner.notes.lines() == ["student.ipynb, cell 1: `import graphviz` raised ModuleNotFoundError: "
                                    "No module named 'graphviz'; skipped"]


def test_the_last_definition_wins_and_its_cell_is_remembered():
    runner = _run(["class Value:\n    version = 1", "v = Value()", "class Value:\n    version = 2"])
    assert runner.module.Value.version == 2
    assert runner.defined_in["Value"] == "student.ipynb, cell 3"
    assert runner.defined_in["v"] == "student.ipynb, cell 2"


def test_a_syntax_error_skips_its_cell_only():
    runner = _run(["def broken(:\n    pass", "ok = True"])
    assert runner.module.ok is True
    assert runner.notes.lines() == ["student.ipynb, cell 1: syntax error (invalid syntax); cell skipped"]


def test_notes_are_capped():
    runner = _run([f"import missing_{i}" for i in range(C.MAX_NOTES + 5)])
    assert len(runner.notes.lines()) == C.MAX_NOTES + 1
    assert runner.notes.lines()[-1] == "... and 5 more"


def test_a_traceback_from_a_cell_names_the_cell():
    runner = _run(["def f():\n    return 1 / 0"])
    with pytest.raises(ZeroDivisionError) as e:
        runner.module.f()
    assert e.traceback[-1].path == "student.ipynb[cell 1]" and e.traceback[-1].lineno == 1  # 0-based


# -- loading a whole notebook (the engine process's side, run here) -------------------------------

def _load(tmp_path, cells, mode="defs", name="student.ipynb"):
    path = notebooks.write(tmp_path / name, cells)
    notes: list = []
    engines, trusted = load(str(path), notebook={"name": name, "cells": read_cells(path)}, mode=mode, notes=notes)
    return engines, notes


def test_a_micrograd_style_notebook_loads_without_training(tmp_path):
    marker = tmp_path / "trained.txt"
    engines, notes = _load(tmp_path, notebooks.micrograd_cells(str(marker)))
    (engine,) = engines
    assert isinstance(engine, MicrogradAdapter) and hasattr(engine.cls, "backward")  # the cell-9 Value
    assert engine.origin == "student.ipynb, cell 9: class Value"
    assert not marker.exists()
    assert "student.ipynb, cell 6: `from graphviz import Digraph` raised ModuleNotFoundError: No module named " \
           "'graphviz'; skipped" in notes
    assert "student.ipynb, cell 10: `import torch` raised ModuleNotFoundError: No module named 'torch'; " \
           "skipped" in notes
    assert "student.ipynb, cell 4: skipped IPython syntax `!pip install graphviz`" in notes
    assert "student.ipynb, cell 15: skipped IPython syntax `%%bash (the whole cell)`" in notes
    assert not any("self-test" in n for n in notes)  # asserts do not run in defs mode


def test_mode_all_runs_every_cell_and_notes_the_failing_assert(tmp_path):
    marker = tmp_path / "trained.txt"
    engines, notes = _load(tmp_path, notebooks.micrograd_cells(str(marker)), mode="all")
    assert marker.read_text() == "trained\n"
    assert "student.ipynb, cell 11: the cell raised AssertionError: a self-test that fails, so the rest of " \
           "the cell was skipped" in notes


def test_a_tutorial_style_notebook_loads_with_its_failing_self_test(tmp_path):
    engines, notes = _load(tmp_path, notebooks.with_outputs(notebooks.tutorial_cells()))
    (engine,) = engines
    assert isinstance(engine, NotebookAdapter) and engine.cls.__name__ == "Tensor"
    assert engine.origin == "student.ipynb, cell 3: class Tensor"
    assert notes == []


def test_without_an_engine_among_the_definitions_the_cells_run_whole(tmp_path):
    body = notebooks.SEED_ENGINE.read_text().replace("\n", "\n    ")
    cells = [notebooks.v4.new_code_cell(f"if True:\n    print('defining')\n    {body}")]
    engines, notes = _load(tmp_path, cells)
    assert engines[0].cls.__name__ == "Value"
    assert notes[0] == ("student.ipynb: no engine among the definitions alone, so every cell ran whole "
                        "(as with --notebook-mode all)")


def test_a_notebook_without_an_engine_lists_what_it_skipped(tmp_path):
    cells = [notebooks.v4.new_code_cell("import torch"), notebooks.v4.new_code_cell("class Neuron:\n    pass")]
    with pytest.raises(LoadError) as e:
        _load(tmp_path, cells)
    lines = str(e.value).splitlines()
    assert lines[0] == f"no engine found in {tmp_path / 'student.ipynb'}: found Neuron"
    assert lines[1:3] == ["while loading, skipped:",
                          "  student.ipynb, cell 1: `import torch` raised ModuleNotFoundError: No module named "
                          "'torch'; skipped"]
