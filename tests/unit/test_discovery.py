"""Repositories, in-process: the engine is found by reading the source with ast, never by running scripts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness.engine_side import discovery, loading
from harness.engine_side.adapters import MicrogradAdapter, NotebookAdapter
from harness.engine_side.loading import LoadError

ENGINES = Path(__file__).resolve().parent.parent / "engines"
NN = "from micrograd.engine import Value\n\nclass Neuron:\n    def __init__(self, nin):\n        self.w = [Value(0.5)] * nin\n"
TRAIN = ("from pathlib import Path\nPath(__file__).with_name('TRAINED').write_text('ran')\n"
         "from micrograd.nn import Neuron\n")


def micrograd_repo(root: Path, package: str = "micrograd") -> Path:
    """Karpathy's layout: PACKAGE/engine.py, PACKAGE/nn.py, and scripts that leave a marker if run."""
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    shutil.copy(ENGINES / "micrograd_full.py", root / package / "engine.py")
    (root / package / "nn.py").write_text(NN.replace("micrograd", package))
    for script in ("train.py", "demo.py", "setup.py", "test_engine.py", "conftest.py"):
        (root / script).write_text(TRAIN.replace("micrograd", package).replace("TRAINED", f"RAN_{script}"))
    return root


@pytest.fixture
def fresh_modules():
    """Undo what loading a repository adds to sys.modules and sys.path."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def test_the_scan_finds_the_engine_class_and_leaves_scripts_alone(tmp_path):
    scan = discovery.scan(micrograd_repo(tmp_path, "mg"))
    assert [(c.rel, c.cls, c.style, c.module) for c in scan.candidates] == [("mg/engine.py", "Value", "micrograd",
                                                                           "mg.engine")]
    assert scan.candidates[0].root == tmp_path
    assert sorted(scan.scripts) == ["conftest.py", "demo.py", "setup.py", "test_engine.py", "train.py"]
    assert scan.files == 8


def test_a_deep_package_and_a_plain_folder_are_importable(tmp_path):
    deep = tmp_path / "src" / "course" / "hw1"
    deep.mkdir(parents=True)
    for d in (tmp_path / "src" / "course", deep):
        (d / "__init__.py").write_text("")
    shutil.copy(ENGINES / "micrograd_full.py", deep / "autograd.py")
    (tmp_path / "loose").mkdir()
    shutil.copy(ENGINES / "notebook_full.py", tmp_path / "loose" / "tensor.py")
    by_rel = {c.rel: c for c in discovery.scan(tmp_path).candidates}
    assert (by_rel["src/course/hw1/autograd.py"].module, by_rel["src/course/hw1/autograd.py"].root) == (
        "course.hw1.autograd", tmp_path / "src")
    assert (by_rel["loose/tensor.py"].module, by_rel["loose/tensor.py"].style) == ("tensor", "notebook")


def test_likely_names_come_first(tmp_path):
    (tmp_path / "helpers.py").write_text("class Node:\n    def backward(self): pass\n    def __add__(self, o): pass\n")
    (tmp_path / "engine.py").write_text("class Value:\n    def backward(self): pass\n    def __mul__(self, o): pass\n")
    (tmp_path / "other.py").write_text("class Thing:\n    def backward(self): pass\n")
    assert [(c.rel, c.cls, c.style) for c in discovery.scan(tmp_path).candidates] == [
        ("engine.py", "Value", "micrograd"), ("helpers.py", "Node", "micrograd"), ("other.py", "Thing", "weak")]


def test_operators_assigned_in_the_class_body_count(tmp_path):
    (tmp_path / "v.py").write_text("def add(a, b): pass\nclass V:\n    __add__ = add\n    def backward(self): pass\n")
    assert [c.style for c in discovery.scan(tmp_path).candidates] == ["micrograd"]


def test_hidden_cache_and_virtualenv_folders_are_not_read(tmp_path):
    for d in (".git", "__pycache__", "venv", "node_modules", ".ipynb_checkpoints"):
        (tmp_path / d).mkdir()
        shutil.copy(ENGINES / "micrograd_full.py", tmp_path / d / "engine.py")
    assert discovery.scan(tmp_path).files == 0


def test_a_symlink_out_of_the_folder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(ENGINES / "micrograd_full.py", outside / "engine.py")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "link").symlink_to(outside)
    (sub / "engine.py").symlink_to(outside / "engine.py")
    assert discovery.scan(sub).files == 0


def test_loading_a_repository_imports_only_the_engine_module(tmp_path, fresh_modules):
    micrograd_repo(tmp_path, "mgrepo")
    notes: list = []
    (engine,) = loading._load_folder(tmp_path, "defs", notes, [])
    assert isinstance(engine, MicrogradAdapter) and engine.cls.__name__ == "Value"
    assert engine.origin == "mgrepo/engine.py: class Value"
    assert "mgrepo.engine" in sys.modules and "mgrepo.nn" not in sys.modules
    assert not list(tmp_path.glob("RAN_*"))


def test_no_engine_lists_what_was_looked_at_and_the_scripts(tmp_path):
    (tmp_path / "train.py").write_text("class Value:\n    def backward(self): pass\n    def __add__(self, o): pass\n")
    (tmp_path / "utils.py").write_text("def helper(): pass\n")
    (tmp_path / "broken.py").write_text("def broken(:\n")
    with pytest.raises(LoadError) as e:
        loading._load_folder(tmp_path, "defs", [], [])
    lines = str(e.value).splitlines()
    assert lines[0] == (f"no engine found in {tmp_path}: looked at 3 .py file(s); scripts never run to find the "
                        "engine: train.py; not Python: broken.py")
    assert lines[2] == ("found in scripts, which are never run to find the engine: train.py (class Value); move the "
                        f"engine into a module of its own, or name it: --engine '{tmp_path}::MODULE:CLASS'")


def test_an_empty_folder_says_so(tmp_path):
    with pytest.raises(LoadError, match="^the folder .* holds no .py file or notebook to grade$"):
        loading._load_folder(tmp_path, "defs", [], [])


def test_dir_module_class_names_the_engine(tmp_path, fresh_modules):
    micrograd_repo(tmp_path, "mgnamed")
    notes: list = []
    engines, trusted = loading.load(f"{tmp_path}::mgnamed.engine:Value", notes=notes)
    assert engines[0].cls.__name__ == "Value" and not trusted
    with pytest.raises(LoadError, match=r"::mgnamed.engine:Nope: mgnamed.engine has no class Nope$"):
        loading.load(f"{tmp_path}::mgnamed.engine:Nope")
    with pytest.raises(LoadError, match=r"::mgnamed.nn:Neuron: class Neuron is not an engine"):
        loading.load(f"{tmp_path}::mgnamed.nn:Neuron")


# -- choosing by behaviour -------------------------------------------------------------------------

MIXED = '''
import math

class Value:
    def __init__(self, data, _children=()):
        self.data, self.grad, self._prev, self._back = data, 0.0, _children, lambda: None

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))
        def _back():
            self.grad += out.grad
            other.grad += out.grad
        out._back = _back
        return out

    __radd__ = __add__

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))
        def _back():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._back = _back
        return out

    __rmul__ = __mul__

    def backward(self):
        order, seen = [], set()
        def visit(v):
            if v not in seen:
                seen.add(v)
                for c in v._prev:
                    visit(c)
                order.append(v)
        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._back()

# helpers with the notebook's names that have nothing to do with grading
def _add(a, b):
    return a.data + b.data

def _sub(a, b):
    return a.data - b.data

def _mul(a, b):
    return a.data * b.data
'''


def _module(name: str, source: str):
    import types

    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def test_operators_win_over_helper_functions_that_fail_the_probe():
    notes: list = []
    (engine,) = loading.find_engines(_module("mixed", MIXED), "mixed", notes)
    assert isinstance(engine, MicrogradAdapter) and not isinstance(engine, NotebookAdapter)
    assert notes == ["graded class Value with operators (micrograd style): it passed the smoke probe L = 2 * 3 + 1, "
                     "then backward(); 1 other candidate(s) were not tried"]


def test_a_tensor_with_broken_operators_is_graded_through_its_functions():
    source = (ENGINES / "notebook_full.py").read_text() + "\nTensor.__add__ = lambda self, other: 'broken'\n"
    notes: list = []
    (engine,) = loading.find_engines(_module("nb_mixed", source), "nb_mixed", notes)
    assert isinstance(engine, NotebookAdapter)


def test_of_two_classes_the_one_passing_the_probe_is_graded():
    broken = (ENGINES / "micrograd_full.py").read_text().replace("Value", "Broken").replace(
        "lambda: (1.0, 1.0)", "lambda: (0.0, 0.0)")
    source = broken + "\n" + (ENGINES / "micrograd_full.py").read_text().replace("Value", "Good")
    notes: list = []
    (engine,) = loading.find_engines(_module("two_classes", source), "two_classes", notes)
    assert engine.cls.__name__ == "Good"
    assert notes[0].startswith("graded class Good with operators (micrograd style): it passed the smoke probe")
    assert "class Broken with operators (micrograd style) gave L = 7.0, dL/da = 0.0" in notes[0]


def test_when_no_candidate_passes_the_likeliest_is_graded_and_said_so():
    broken = (ENGINES / "micrograd_full.py").read_text().replace("lambda: (1.0, 1.0)", "lambda: (0.0, 0.0)")
    source = broken + "\n" + broken.replace("Value", "Other")
    notes: list = []
    (engine,) = loading.find_engines(_module("none_pass", source), "none_pass", notes)
    assert engine.cls.__name__ == "Value"
    assert notes[0].startswith("no candidate passed the smoke probe L = 2 * 3 + 1, then backward()")
