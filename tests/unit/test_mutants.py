"""The fixture engines of tests/engines/mutants.py: each edit applies once, and each seeded bug is live."""

from __future__ import annotations

import ast
import math
import runpy

import pytest
from engines import mutants
from engines.mutants import MUTANTS, Mutant, materialise, source


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_valid_python_that_differs_from_its_base(name):
    text = source(name)
    tree = ast.parse(text)
    assert ast.get_docstring(tree).startswith(MUTANTS[name].doc.strip().splitlines()[0])
    assert text != mutants.base_source(MUTANTS[name].base)
    for _, replace in MUTANTS[name].edits:
        assert replace in text


def test_an_edit_that_no_longer_fits_its_base_fails_loudly(monkeypatch):
    monkeypatch.setitem(MUTANTS, "stale", Mutant("micrograd_full", "stale", (("no such text", "x"),)))
    with pytest.raises(AssertionError, match="'no such text' occurs 0 times in micrograd_full.py, not once"):
        source("stale")
    monkeypatch.setitem(MUTANTS, "ambiguous", Mutant("micrograd_full", "ambiguous", (("self.data", "x"),)))
    with pytest.raises(AssertionError, match=r"'self.data' occurs \d+ times"):
        source("ambiguous")


def test_materialise_writes_the_named_file(tmp_path):
    path = materialise("bug_tanh", tmp_path)
    assert path == tmp_path / "bug_tanh.py" and path.read_text() == source("bug_tanh")


def grads(module: dict, build, **inputs):
    """Values of the inputs' grads after one backward() of build(**leaves), for a micrograd-style module."""
    leaves = {k: module["Value"](v) for k, v in inputs.items()}
    out = build(**leaves)
    out.backward()
    return out.data, {k: leaf.grad for k, leaf in leaves.items()}


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mutants")
    correct = runpy.run_path(str(mutants.HERE / "micrograd_full.py"))
    loaded = {n: runpy.run_path(str(materialise(n, folder))) for n in
              ("bug_tanh", "bug_exp_input", "bug_assign_grad", "bug_reset_grads", "bug_noop_backward",
               "bug_recursive_topo")}
    return correct, loaded


@pytest.mark.parametrize("name, build, inputs", [
    ("bug_tanh", lambda a: a.tanh(), {"a": 0.5}),
    ("bug_exp_input", lambda a: a.exp(), {"a": 0.5}),
    ("bug_assign_grad", lambda a, b, c: a + b * (a + c), {"a": 1.0, "b": 1.0, "c": 1.0}),
    ("bug_noop_backward", lambda a, b: a * b, {"a": 2.0, "b": 3.0}),
])
def test_each_seeded_bug_gives_wrong_grads_but_right_values(engines, name, build, inputs):
    correct, loaded = engines
    value, right = grads(correct, build, **inputs)
    bug_value, wrong = grads(loaded[name], build, **inputs)
    assert bug_value == value
    assert wrong != right


def test_reset_grads_breaks_only_a_second_backward(engines):
    correct, loaded = engines
    for module, factor in ((correct, 2), (loaded["bug_reset_grads"], 1)):
        a = module["Value"](3.0)
        out = a * a
        out.backward()
        out.backward()
        assert a.grad == factor * 6.0


def test_the_recursive_sort_fails_only_on_a_deep_chain(engines):
    correct, loaded = engines
    for module, deep_ok in ((correct, True), (loaded["bug_recursive_topo"], False)):
        x = module["Value"](1.0)
        out = x
        for _ in range(5000):
            out = out + 1
        if deep_ok:
            out.backward()
            assert x.grad == 1.0
        else:
            with pytest.raises(RecursionError):
                out.backward()
        y = module["Value"](2.0)
        z = y * y + y
        z.backward()
        assert math.isclose(y.grad, 5.0)
