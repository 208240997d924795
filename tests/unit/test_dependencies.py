"""Runtime dependencies: what grade needs, listed once (pyproject.toml), pinned in the Gradescope zip."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from harness.batch import gradescope_zip
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_zip_installs_every_runtime_dependency_pinned_to_the_installed_version():
    pins = [Requirement(p) for p in gradescope_zip.dependencies()]
    declared = [Requirement(r) for r in PROJECT["dependencies"]]
    assert [p.name for p in pins] == [d.name for d in declared]
    for pin, wanted in zip(pins, declared):
        (spec,) = pin.specifier
        assert spec.operator == "==" and spec.version == importlib.metadata.version(pin.name)
        assert wanted.specifier.contains(spec.version), f"{pin} is outside {wanted}"


def test_pytest_is_an_extra_not_a_runtime_dependency():
    assert not any(Requirement(r).name == "pytest" for r in PROJECT["dependencies"])
    assert any(Requirement(r).name == "pytest" for r in PROJECT["optional-dependencies"]["pytest"])
    plugin = ROOT / "harness" / "batch" / "pytest_plugin.py"
    users = [p.relative_to(ROOT).as_posix() for p in (ROOT / "harness").rglob("*.py")
             if p != plugin and ("import pytest" in p.read_text() or "from pytest" in p.read_text())]
    assert not users, f"grade imports pytest: {users}"


def test_a_dependency_that_is_not_installed_is_named_with_the_fix(monkeypatch):
    monkeypatch.setattr(gradescope_zip, "requirements", lambda: ["pluggy>=1.3", "no-such-dist-xyz>=2; python_version>'3'"])
    with pytest.raises(HarnessError, match=r"no-such-dist-xyz, which grade needs, is not installed here; "
                                           r"pip install 'no-such-dist-xyz>=2'"):
        gradescope_zip.dependencies()
