"""Case files read numbers by YAML 1.2's core schema: loader results and error messages."""

from __future__ import annotations

import math

import pytest
import yaml

from harness.cases import yaml12
from harness.cases.loader import load_suite
from harness.errors import CaseFileError

LOADERS = [yaml12.Loader, yaml12.FastLoader]


@pytest.mark.parametrize("loader", LOADERS, ids=["python", "libyaml"])
@pytest.mark.parametrize("text, want", [
    ("1e-6", 1e-6), ("1E+3", 1000.0), ("-2.5e2", -250.0), (".5", 0.5), ("5.", 5.0), ("+3", 3),
    ("010", 10), ("-007", -7), ("0x10", 16), ("0xfF", 255), ("0o10", 8),
    (".inf", math.inf), ("-.Inf", -math.inf), ("+.INF", math.inf),
    ("true", True), ("False", False), ("~", None), ("null", None),
    ("1:30", "1:30"), ("1_000", "1_000"), ("0b101", "0b101"), ("yes", "yes"), ("off", "off"),
    ("2024-01-01", "2024-01-01"), ("0o8", "0o8"), ("0x", "0x"), ("1e", "1e"),
])
def test_plain_scalars_follow_the_yaml_1_2_core_schema(loader, text, want):
    got = yaml.load(f"v: {text}", Loader=loader)["v"]
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("loader", LOADERS, ids=["python", "libyaml"])
def test_nan_quoted_text_and_merge_keys(loader):
    data = yaml.load("a: .NaN\nb: '010'\nbase: &b {x: 1}\nc: {<<: *b, y: 010}\n", Loader=loader)
    assert math.isnan(data["a"]) and data["b"] == "010" and data["c"] == {"x": 1, "y": 10}


def test_pyyaml_itself_is_left_alone():
    # the core schema lives on our loader classes only, not on PyYAML's SafeLoader
    assert yaml.safe_load("v: 010")["v"] == 8 and yaml.safe_load("v: 1e-6")["v"] == "1e-6"


def write(tmp_path, body: str):
    path = tmp_path / "suite.yaml"
    path.write_text("cases:\n" + body)
    return path


def test_case_numbers_in_yaml_1_2_forms(tmp_path):
    path = write(tmp_path, "  - name: c\n    inputs: {x: 010, y: 0x10}\n    output: x * y\n"
                           "    tolerance: {rel: 1e-6, abs: 1e-9}\n"
                           "    expect: {value: 160, grad: {x: 16, y: 1e1}}\n")
    case = load_suite(path).cases[0]
    assert case.inputs == {"x": 10, "y": 16}
    assert case.tolerance.rel == 1e-6 and case.tolerance.abs == 1e-9
    assert case.expect.grad == {"x": 16, "y": 10.0}


@pytest.mark.parametrize("field, line, message", [
    ("    inputs: {x: 1:30}\n    output: x\n    expect: {value: 1}\n", 3,
     "input 'x' must be a number, got '1:30' (a YAML 1.1 base-60 number; YAML 1.2 reads it as text)"),
    ("    inputs: {x: 1}\n    output: x\n    expect: {value: 1_000}\n", 5,
     ("'expect.value' must be a number (or .nan, .inf, -.inf), got '1_000' (digits with '_'; "
      "YAML 1.2 reads it as text: leave out the underscores)")),
    ("    inputs: {x: 1}\n    output: x\n    timeout: 1:30\n    expect: {value: 1}\n", 5,
     "'timeout' must be a finite number, got '1:30' (a YAML 1.1 base-60 number; YAML 1.2 reads it as text)"),
    ("    inputs: {x: 1}\n    output: x\n    backward: 0b1\n    expect: {value: 1}\n", 5,
     "'backward' must be a whole number >= 0, got '0b1' (a YAML 1.1 binary number; YAML 1.2 reads it as text)"),
    ("    inputs: {x: 1}\n    output: x\n    expect: {value: 1, raises: yes}\n", 5,
     "'expect.raises' must be true or false, got 'yes'"),
], ids=["sexagesimal-input", "underscores", "sexagesimal-timeout", "binary", "yes"])
def test_yaml_1_1_numbers_are_errors_naming_file_line_and_case(tmp_path, field, line, message):
    path = write(tmp_path, "  - name: c\n" + field)
    with pytest.raises(CaseFileError) as e:
        load_suite(path)
    assert str(e.value) == f"{path}:{line}: case 'c': {message}"
