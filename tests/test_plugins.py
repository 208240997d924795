"""The plugin API: hooks, registration, loud failures, and plugin ops and formats."""

from __future__ import annotations

import os

import pytest

from harness import hookimpl, plugins
from harness.errors import HarnessError


PLUGIN_DIR = os.path.join(os.path.dirname(__file__), "plugins")


class TinyEngine:
    name = "tiny"


class TinyPlugin:
    @hookimpl
    def register_engines(self, register):
        register(TinyEngine())


def test_hook_register_engines_collects_what_plugins_register():
    pm = plugins.new_manager()
    pm.register(TinyPlugin())
    assert [e.name for e in plugins.engines(pm)] == ["tiny"]


def test_reference_engine_is_registered_through_the_entry_point_group():
    names = [e.name for e in plugins.engines(plugins.installed_manager())]
    assert "reference" in names


def test_hook_register_reporters_builtin_formats_use_the_hook():
    reporters = plugins.reporters(plugins.installed_manager())
    assert {"text", "json"} <= set(reporters)


def test_misspelled_hook_fails_loudly():
    class Misspelled:
        @hookimpl
        def register_engine(self, register):
            register(TinyEngine())

    pm = plugins.new_manager()
    pm.register(Misspelled(), "misspelled")
    with pytest.raises(HarnessError, match=r"'register_engine' is not a hook \(did you mean 'register_engines'\?\)"):
        plugins.check(pm)


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_misspelled_hook_in_a_submission_is_its_load_error(grade, tmp_path):
    engine = tmp_path / "misspelled.py"
    engine.write_text("from harness import hookimpl\n\n@hookimpl\ndef register_engine(register):\n    pass\n")
    result = grade("--engine", engine, "-k", "notebook::add_value", "--format", "json")
    assert result.code == 1
    assert result.statuses() == {"notebook::add_value": "error"}
    assert "did you mean 'register_engines'" in result.case("notebook::add_value")["message"]


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_plugin_style_submission_registers_through_the_hook(grade, engine):
    result = grade("--engine", engine("plugin_engine"), "-k", "notebook::a_plus", "--format", "json")
    assert result.report["engines"][0]["engine"] == "tape"
    assert set(result.statuses().values()) == {"passed"}


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_hook_register_ops_adds_an_op_to_expressions_and_the_reference_engine(grade):
    env = dict(os.environ, PYTHONPATH=PLUGIN_DIR)
    cases = os.path.join(PLUGIN_DIR, "softplus_cases.yaml")
    result = grade("-p", "softplus_plugin", "--engine", "reference", "--cases", cases, "--format", "json", env=env)
    assert result.code == 0, result.stderr
    assert result.statuses() == {"plugin_ops::softplus_at_0": "passed"}
    # an engine without a softplus() method reports the op as unsupported
    result = grade("-p", "softplus_plugin", "--engine", os.path.join(os.path.dirname(__file__), "engines",
                   "micrograd_full.py"), "--cases", cases, "--format", "json", env=env)
    assert result.statuses() == {"plugin_ops::softplus_at_0": "unsupported"}
    # without the plugin, the op is unknown: the case file is rejected
    bare = grade("--engine", "reference", "--cases", cases)
    assert bare.code == 2
    assert "unknown function 'softplus'" in bare.stderr


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_plugin_report_format(grade):
    env = dict(os.environ, PYTHONPATH=PLUGIN_DIR)
    result = grade("-p", "softplus_plugin", "--engine", "reference", "-k", "notebook::", "--format", "count", env=env)
    assert result.code == 0
    assert result.stdout.endswith(" cases\n")


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_unknown_plugin_module_is_a_usage_error(grade):
    result = grade("-p", "no_such_plugin_module", "--engine", "reference")
    assert result.code == 2
    assert "cannot import plugin 'no_such_plugin_module'" in result.stderr
