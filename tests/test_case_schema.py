"""The case files' JSON Schema: shipped in the package, agreeing with the loader, documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.cases.loader import (
    CASE_FIELDS, EXPECT_FIELDS, SCHEMA, SCHEMA_PATH, Tolerance, builtin_cases_dir, case_files, load_suite,
)
from harness.errors import CaseFileError

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_ships_inside_the_package():
    assert SCHEMA_PATH.parent.parent == ROOT / "harness" / "cases"
    assert json.loads(SCHEMA_PATH.read_text()) == SCHEMA


@pytest.mark.parametrize("path", case_files([builtin_cases_dir()]), ids=lambda p: p.name)
def test_every_builtin_file_is_valid(path):
    errors = sorted(VALIDATOR.iter_errors(yaml.safe_load(path.read_text())), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)\n")


@pytest.mark.parametrize("path", case_files([ROOT / "cases"]), ids=lambda p: p.name)
def test_every_builtin_file_points_editors_at_the_schema(path):
    modeline = MODELINE.match(path.read_text())
    assert modeline, f"{path.name} does not start with a yaml-language-server modeline"
    assert (path.parent / modeline[1]).resolve() == SCHEMA_PATH


GOOD = {
    "minimal": "cases: [{name: a, inputs: {x: 1}, output: x, expect: {value: 1}}]",
    "defaults_hold_output_and_expect": """
        defaults: {output: x * 2, expect: {grad: {x: 2}}, tags: [t], points: 2}
        cases: [{name: a, inputs: {x: 1}}, {name: b, inputs: {x: 5}, tags: [u]}]
    """,
    "reference": "cases: [{name: a, inputs: {x: 1}, output: exp(x), expect: {value: reference, grad: reference}}]",
    "raises": "cases: [{name: a, inputs: {x: 0}, output: log(x), expect: {raises: true}}]",
    "nan_and_inf": "cases: [{name: a, inputs: {x: 1}, output: x, expect: {value: .nan, grad: {x: .inf}}}]",
    "steps_and_repeat": """
        cases:
          - name: a
            inputs: {x: 1}
            steps: [{y: x}, {repeat: 3, steps: [{y: y * 2}, {repeat: 0, steps: [{z: y}]}]}]
            output: y
            backward: 2
            expect: {value: 8, grad: {x: 16, y: 2}}
    """,
    "every_field": """
        suite: s
        description: d
        cases:
          - name: a-1
            description: d
            tags: one
            points: 0.5
            visibility: after_due_date
            timeout: 2.5
            tolerance: {rel: 0.001, abs: 0}
            inputs: {a: 1, b: 2}
            output: a + b
            backward: 0
            expect: {value: 3, args: [1, 2], local_derivatives: [1, 1]}
    """,
}

BAD = {
    "no_cases": ("suite: s", "missing 'cases:'"),
    "empty_cases": ("cases: []", "non-empty list"),
    "unknown_top_field": ("cass: []\ncases: [{name: a, output: '1', expect: {value: 1}}]", "unknown field 'cass'"),
    "unknown_case_field": ("cases: [{name: a, output: '1', expect: {value: 1}, input: {}}]",
                           "unknown field 'input' in the case (did you mean 'inputs'?)"),
    "bad_case_name": ("cases: [{name: 'a b', output: '1', expect: {value: 1}}]", "needs a 'name'"),
    "bad_visibility": ("cases: [{name: a, output: '1', visibility: secret, expect: {value: 1}}]",
                       "'visibility' must be one of visible, hidden, after_due_date"),
    "negative_backward": ("cases: [{name: a, output: '1', backward: -1, expect: {value: 1}}]", "'backward'"),
    "negative_points": ("cases: [{name: a, output: '1', points: -1, expect: {value: 1}}]", "'points' must be >= 0"),
    "zero_timeout": ("cases: [{name: a, output: '1', timeout: 0, expect: {value: 1}}]", "'timeout' must be > 0"),
    "string_input": ("cases: [{name: a, inputs: {x: one}, output: x, expect: {value: 1}}]", "must be a number"),
    "bad_input_name": ("cases: [{name: a, inputs: {2x: 1}, output: '1', expect: {value: 1}}]", "not a valid name"),
    "unknown_tolerance": ("cases: [{name: a, output: '1', tolerance: {relative: 1}, expect: {value: 1}}]",
                          "unknown field 'relative' in 'tolerance'"),
    "empty_expect": ("cases: [{name: a, output: '1', expect: {}}]", "'expect' must be a mapping"),
    "unknown_expect": ("cases: [{name: a, output: '1', expect: {values: 1}}]", "unknown field 'values' in 'expect'"),
    "string_value": ("cases: [{name: a, output: '1', expect: {value: seven}}]", "'expect.value' must be a number"),
    "string_grad": ("cases: [{name: a, inputs: {x: 1}, output: x, expect: {grad: {x: one}}}]",
                    "'expect.grad.x' must be a number"),
    "grad_not_reference": ("cases: [{name: a, inputs: {x: 1}, output: x, expect: {grad: references}}]",
                           "'expect.grad' must be a mapping of name: number, or 'reference'"),
    "raises_not_bool": ("cases: [{name: a, output: '1', expect: {raises: 1}}]", "'expect.raises' must be true or false"),
    "raises_with_value": ("cases: [{name: a, inputs: {x: 0}, output: log(x), expect: {raises: true, value: 1}}]",
                          "'expect.raises: true' means the engine must raise, so it cannot also expect value"),
    "two_key_step": ("cases: [{name: a, inputs: {x: 1}, steps: [{y: x, z: x}], output: x, expect: {value: 1}}]",
                     "each step must be one 'name: expression' pair"),
    "repeat_without_steps": ("cases: [{name: a, inputs: {x: 1}, steps: [{repeat: 2}], output: x, expect: {value: 1}}]",
                             "a 'repeat' step needs a non-empty 'steps' list"),
    "repeat_extra_field": ("cases: [{name: a, inputs: {x: 1}, steps: [{repeat: 2, steps: [{y: x}], times: 3}], "
                           "output: x, expect: {value: 1}}]", "unknown field 'times' in a repeat step"),
    "defaults_with_name": ("defaults: {name: x}\ncases: [{name: a, output: '1', expect: {value: 1}}]",
                           "'defaults' cannot set 'name'"),
    "list_tags_of_numbers": ("cases: [{name: a, output: '1', tags: [1], expect: {value: 1}}]", "'tags' must be a list"),
}


@pytest.mark.parametrize("name", GOOD)
def test_good_files_pass_the_schema_and_the_loader(name, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD[name])
    assert not list(VALIDATOR.iter_errors(yaml.safe_load(GOOD[name])))
    load_suite(path)


@pytest.mark.parametrize("name", BAD)
def test_bad_files_fail_the_schema_and_the_loader(name, tmp_path):
    text, message = BAD[name]
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text))), "the schema accepts it"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(CaseFileError) as e:
        load_suite(path)
    assert message in str(e.value)


def test_the_loader_takes_its_vocabulary_and_defaults_from_the_schema():
    case = SCHEMA["$defs"]["caseFields"]["properties"]
    assert set(CASE_FIELDS) == set(case) and set(EXPECT_FIELDS) == set(SCHEMA["$defs"]["expect"]["properties"])
    tol = SCHEMA["$defs"]["tolerance"]["properties"]
    assert Tolerance() == Tolerance(rel=tol["rel"]["default"], abs=tol["abs"]["default"])


def test_a_defaulted_case_gets_the_schema_defaults(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD["minimal"])
    (case,) = load_suite(path).cases
    defaults = SCHEMA["$defs"]["caseFields"]["properties"]
    assert (case.points, case.backward, case.visibility) == (
        defaults["points"]["default"], defaults["backward"]["default"], defaults["visibility"]["default"])


def test_the_docs_document_every_field():
    page = (ROOT / "docs" / "cases.md").read_text()
    table = page[page.index("## All fields"):]
    for field in CASE_FIELDS:
        assert re.search(rf"^\| `{field}` ", table, re.M), f"docs/cases.md's field table lacks {field}"
    for field in EXPECT_FIELDS:
        assert f"`expect.{field}`" in table, f"docs/cases.md's field table lacks expect.{field}"
    assert "yaml-language-server: $schema=" in page


@pytest.mark.slow
def test_grade_schema_prints_the_schema_path(grade):
    result = grade("--schema")
    assert result.code == 0
    assert Path(result.stdout.strip()) == SCHEMA_PATH
