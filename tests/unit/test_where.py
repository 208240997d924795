"""Where, not only what: an op culprit names the file and line that implements the op."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from harness.engine_side.adapters import MicrogradAdapter, NotebookAdapter
from harness.engine_side.locate import locate
from harness.engine_side.worker import run
from harness.model import EngineStatus
from harness.running.observation import Observation
from harness.running.program import Program

ENGINES = Path(__file__).resolve().parent.parent / "engines"


def module(stem: str):
    spec = importlib.util.spec_from_file_location(f"where_{stem}", ENGINES / f"{stem}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def line_of(fn) -> int:
    return inspect.getsourcelines(fn)[1]


@pytest.mark.parametrize("op, method", [("sub", "__sub__"), ("div", "__truediv__"), ("neg", "__neg__"),
                                        ("tanh", "tanh"), ("pow", "__pow__")])
def test_micrograd_style_ops_are_found_on_the_class(op, method):
    Value = module("micrograd_full").Value
    assert locate(MicrogradAdapter(Value, "m"), op) == {"file": "micrograd_full.py",
                                                       "line": line_of(getattr(Value, method))}


def test_notebook_style_ops_are_the_module_functions():
    nb = module("notebook_full")
    assert locate(NotebookAdapter(nb, nb.Tensor, "n"), "sub") == {"file": "notebook_full.py",
                                                                "line": line_of(nb._sub)}


def test_a_plugin_engine_is_found_at_its_apply_and_a_missing_op_at_nothing():
    class Engine:
        def apply(self, op, *operands):
            raise NotImplementedError

    assert locate(Engine(), "sub") == {"file": Path(__file__).name, "line": line_of(Engine.apply)}
    Value = module("micrograd_full").Value
    assert locate(MicrogradAdapter(Value, "m"), "cosh") is None


def probe_program(locate_op: str = "sub") -> Program:
    return Program(id="p", inputs=[["a", 5], ["b", 2]], steps=[["set", "out", [["name", "a"], ["name", "b"],
                   ["op", "sub", 2]]]], output=[["name", "out"]], backward=1, grads=["a", "b", "out"],
                   structure=False, locate=locate_op)


def test_the_worker_sends_the_place_and_the_grader_validates_it():
    Value = module("micrograd_full").Value
    program = probe_program()
    reply = run(MicrogradAdapter(Value, "m"), program.to_wire())
    obs = Observation.from_wire(reply, program)
    assert obs.status == EngineStatus.OK and obs.located == ("micrograd_full.py", line_of(Value.__sub__))
    for bad in ({"file": "x.py", "line": "7"}, {"file": 3, "line": 7}, {"file": "x.py", "line": 0}, "x.py:7"):
        assert Observation.from_wire({**reply, "located": bad}, program).status == EngineStatus.CRASHED
    long = Observation.from_wire({**reply, "located": {"file": "x" * 5000, "line": 7}}, program)
    assert long.located is not None and len(long.located[0]) <= 203
