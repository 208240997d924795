"""The public API (``harness``), the hooks, and the plugin manager built on pluggy's public API."""

from __future__ import annotations

import ast
import inspect
import math
import re
import sys
import types
from pathlib import Path

import pytest

import harness
from harness import hookspecs, plugins
from harness.engine_side import adapters, collector
from harness.errors import HarnessError
from reference_engine.plugin import ReferenceEngine
from reference_engine.tensor import Tensor

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"


def make_plugin(source: str) -> types.ModuleType:
    """A plugin module from source, as a course would write it."""
    module = types.ModuleType("course_plugin")
    exec(compile(source, "course_plugin.py", "exec"), module.__dict__)  # noqa: S102 (test source)
    return module


# --- the public API ----------------------------------------------------------


def test_the_public_api_is_exactly_this():
    assert set(harness.__all__) == {"hookimpl", "hookspec", "Engine", "StructuredEngine", "Reporter",
                                    "Unsupported", "OpSpec", "OPS"}
    for name in harness.__all__:
        assert getattr(harness, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'plugins_'"):
        harness.plugins_  # noqa: B018


def test_importing_harness_does_not_import_pluggy():
    saved = {n: m for n, m in sys.modules.items() if n == "pluggy" or n.startswith(("pluggy.", "harness"))}
    for name in saved:
        del sys.modules[name]
    try:
        import harness as fresh

        assert "pluggy" not in sys.modules and "harness.model" not in sys.modules
        assert fresh.Unsupported and fresh.OPS
        fresh.hookimpl  # noqa: B018 (the first use of a marker imports pluggy)
        assert "pluggy" in sys.modules
    finally:
        for name in [n for n in sys.modules if n == "pluggy" or n.startswith(("pluggy.", "harness"))]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_engines_of_every_style_are_harness_engines():
    import reference_engine

    notebook = adapters.NotebookAdapter(reference_engine, Tensor, "notebook")
    micrograd = adapters.MicrogradAdapter(Tensor, "micrograd")
    for engine in (ReferenceEngine(), notebook, micrograd):
        assert isinstance(engine, harness.Engine)
    assert isinstance(ReferenceEngine(), harness.StructuredEngine)
    assert isinstance(notebook, harness.StructuredEngine)
    assert not isinstance(micrograd, harness.StructuredEngine)  # no args(): the structure checks are skipped
    assert not isinstance(object(), harness.Engine)


def test_the_engine_contract_is_written_in_its_docstring():
    doc = " ".join(harness.Engine.__doc__.split())
    assert "One engine object serves every case in an engine process" in doc
    assert "plain numbers only" in doc
    assert "A second ``backward()`` on the same output adds" in doc
    assert "``grad()`` of intermediate nodes" in doc and "blame" in doc
    required = {"name", "leaf", "apply", "backward", "value", "grad"}
    assert required <= set(dir(harness.Engine)) | set(harness.Engine.__annotations__) and not {"args", "local_derivatives"} & set(vars(harness.Engine))
    assert {"args", "local_derivatives"} <= set(vars(harness.StructuredEngine))


def test_every_builtin_format_is_a_reporter():
    for name, render in plugins.reporters(plugins.installed_manager(entry_points=False)).items():
        assert isinstance(render, harness.Reporter), name
        assert list(inspect.signature(render).parameters)[:2] == ["run", "context"], name


# --- the hooks ---------------------------------------------------------------

HOOKS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("register_") and callable(fn)}


def test_hook_register_engines():
    pm = plugins.new_manager()
    pm.register(make_plugin(
        "from harness import hookimpl\n"
        "from reference_engine.plugin import ReferenceEngine\n"
        "class Renamed(ReferenceEngine):\n    name = 'renamed'\n"
        "@hookimpl\ndef register_engines(register):\n    register(Renamed())\n    register(ReferenceEngine())\n"))
    assert [e.name for e in plugins.engines(pm)] == ["renamed", "reference"]


def test_hook_register_reporters():
    pm = plugins.new_manager()
    pm.register(make_plugin(
        "from harness import hookimpl\n"
        "@hookimpl\ndef register_reporters(register):\n"
        "    register('count', lambda run, context: f'{len(run.engines)} engines')\n"))
    render = plugins.reporters(pm)["count"]
    assert render(types.SimpleNamespace(engines=[1, 2]), None) == "2 engines"


def test_hook_register_ops():
    pm = plugins.new_manager()
    pm.register(make_plugin(
        "import math\nfrom harness import OpSpec, hookimpl\n"
        "@hookimpl\ndef register_ops(register):\n"
        "    register(OpSpec('softplus', 1, forward=lambda x: math.log1p(math.exp(x)),\n"
        "                    derivatives=lambda x: (1 / (1 + math.exp(-x)),)))\n"))
    spec = plugins.ops(pm)["softplus"]
    assert isinstance(spec, harness.OpSpec) and spec.form == "call"
    assert (spec.forward(0.0), spec.derivatives(0.0)) == (math.log(2), (0.5,))


def test_every_hook_has_a_test_named_after_it():
    tests = {node.name for path in (ROOT / "tests").rglob("test_*.py")
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef)}
    missing = [name for name in HOOKS if f"test_hook_{name}" not in tests]
    assert not missing, f"hooks without a test_hook_<name>: {missing}"


def signature(name: str) -> str:
    return f"{name}({', '.join(inspect.signature(HOOKS[name]).parameters)})"


def test_every_hook_is_documented_under_its_exact_signature():
    headings = re.findall(r"^#+ `([^`]+)`$", DOCS.read_text(), flags=re.M)
    assert HOOKS and all(signature(name) in headings for name in HOOKS), (headings, list(HOOKS))


def doc_example(name: str) -> str:
    """The first python block under the hook's heading in docs/plugins.md."""
    text = DOCS.read_text()
    section = text.split(f"`{signature(name)}`", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hooks_documented_example_runs(name):
    pm = plugins.new_manager()
    pm.register(make_plugin(doc_example(name)))
    plugins.check(pm)
    found: list = []
    getattr(pm.hook, name)(register=lambda *args: found.append(args))
    assert found, f"the example of {name} registers nothing"


def test_hook_docstrings_have_pytests_shape():
    for name, fn in HOOKS.items():
        doc = inspect.getdoc(fn)
        summary, _, rest = doc.partition("\n\n")
        assert summary.endswith(".") and "\n" not in summary, name
        assert "Called " in rest, f"{name}: when it is called"
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in rest, f"{name}: :param {param}:"
        assert "Return value:" in rest, name


# --- the manager uses pluggy's public API ------------------------------------


def test_hook_functions_uses_pluggys_own_test():
    module = make_plugin("from harness import hookimpl\n"
                         "@hookimpl\ndef register_engines(register): pass\n"
                         "def register_ops(register): pass\n"
                         "harness_impl = 'a string named like the marker'\n")
    assert collector.hook_functions(module) == ["register_engines"]
    assert collector.hook_functions(make_plugin("x = 1\n")) == []


def test_no_private_pluggy_attribute_is_read_in_harness():
    offenders = [f"{path.relative_to(ROOT)}:{i}" for path in (ROOT / "harness").rglob("*.py")
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"""["'](harness_impl|harness_spec)["']|\.harness_(impl|spec)\b""", line)]
    assert not offenders


def test_a_misspelled_hook_is_named_with_the_fix():
    pm = plugins.new_manager()
    pm.register(make_plugin("from harness import hookimpl\n@hookimpl\ndef register_engine(register): pass\n"),
                "course")
    with pytest.raises(HarnessError, match=r"plugin course: unknown hook; 'register_engine' is not a hook "
                                           r"\(did you mean 'register_engines'\?\)"):
        plugins.check(pm)
    with pytest.raises(collector.PluginError):  # the engine process's own error, no grader import
        collector.check(pm)


def test_a_plugin_that_does_not_import_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(plugins.PLUGINS_ENV, "no_such_plugin_module_xyz")
    with pytest.raises(HarnessError, match="cannot import plugin 'no_such_plugin_module_xyz'"):
        plugins.installed_manager(entry_points=False)
    with pytest.raises(collector.PluginError, match="cannot import plugin"):
        collector.installed_manager(entry_points=False)


def test_the_documented_engine_follows_the_contract():
    module = make_plugin(doc_example("register_engines"))
    found: list = []
    module.register_engines(found.append)
    engine = found[0]
    assert isinstance(engine, harness.Engine)
    a, b = engine.leaf(2), engine.leaf(3)
    out = engine.apply("add", engine.apply("mul", a, b), a)  # a * b + a
    engine.backward(out)
    engine.backward(out)  # a second backward() adds
    assert (engine.value(out), engine.grad(a), engine.grad(b)) == (8.0, 8.0, 4.0)
    assert engine.value(engine.apply("mul", 2, 3)) == 6.0  # plain numbers only
    with pytest.raises(harness.Unsupported):
        engine.apply("exp", a)
