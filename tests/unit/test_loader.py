"""The case-file parser, in process: good files become Case records; each bad one is one CaseFileError."""

from __future__ import annotations

import math
import textwrap

import pytest
from test_bad_input import BAD_FILES, GOOD, case_with

from harness.cases.loader import (
    REFERENCE,
    Assign,
    Case,
    Repeat,
    Tolerance,
    builtin_cases_dir,
    case_files,
    load_suite,
    load_suites,
)
from harness.errors import CaseFileError, HarnessError


def write(tmp_path, text, name="suite.yaml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text))
    return path


def code(expr) -> list:
    return [list(i) for i in expr.code]


# --- good files -------------------------------------------------------------------------------

def test_a_minimal_case_gets_every_default(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.name == "suite" and suite.description == "" and len(suite.cases) == 1
    case = suite.cases[0]
    assert isinstance(case, Case)
    assert case.id == "suite::good" and case.line == 2 and case.path == str(tmp_path / "suite.yaml")
    assert case.inputs == {"a": 1, "b": 2} and case.steps == ()
    assert code(case.output) == [["name", "a"], ["name", "b"], ["op", "add", 2]]
    assert (case.expect.value, case.expect.grad, case.expect.raises) == (3, None, False)
    assert (case.backward, case.points, case.visibility, case.timeout, case.tags) == (1, 1.0, "visible", None, ())
    assert case.tolerance == Tolerance()


def test_every_field_is_read(tmp_path):
    case = load_suite(write(tmp_path, """\
        suite: full
        description: every field
        cases:
          - name: all-fields_1
            description: " spaced "
            tags: [backprop, reuse]
            inputs: {a: 2, b: -0.5}
            steps:
              - c: a * b
            output: tanh(c) + a
            backward: 2
            points: 2.5
            visibility: hidden
            timeout: 3
            tolerance: {rel: 1.0e-3, abs: 0}
            expect:
              value: 1.5
              grad: {a: .inf, b: .nan, c: -1}
        """)).cases[0]
    assert case.id == "full::all-fields_1" and case.description == "spaced" and case.tags == ("backprop", "reuse")
    assert case.steps == (Assign("c", case.steps[0].expr, 9),)
    assert code(case.steps[0].expr) == [["name", "a"], ["name", "b"], ["op", "mul", 2]]
    assert (case.backward, case.points, case.visibility, case.timeout) == (2, 2.5, "hidden", 3)
    assert case.tolerance == Tolerance(rel=1e-3, abs=0.0)
    assert case.expect.grad["a"] == math.inf and math.isnan(case.expect.grad["b"]) and case.expect.grad["c"] == -1
    assert case.bound_names == ("a", "b", "c")


def test_repeat_steps_nest_and_bind_names(tmp_path):
    case = load_suite(write(tmp_path, """\
        cases:
          - name: horner
            inputs: {x: 0.5, a: 2}
            steps:
              - p: a
              - repeat: 3
                steps:
                  - q: p * x
                  - p: q + a
            output: p
            expect: {value: 1}
        """)).cases[0]
    first, loop = case.steps
    assert first.name == "p" and isinstance(loop, Repeat) and loop.count == 3 and loop.line == 6
    assert [s.name for s in loop.steps] == ["q", "p"]
    assert case.bound_names == ("x", "a", "p", "q")


def test_defaults_apply_to_every_case_and_tags_merge(tmp_path):
    suite = load_suite(write(tmp_path, """\
        suite: d
        defaults:
          inputs: {a: 1}
          tags: [base]
          points: 3
          tolerance: {abs: 0.5}
        cases:
          - {name: one, output: a, expect: {value: 1}}
          - {name: two, output: a * 2, tags: [extra, base], points: 1, expect: {value: 2}}
        """))
    one, two = suite.cases
    assert one.inputs == two.inputs == {"a": 1}
    assert (one.tags, two.tags) == (("base",), ("base", "extra"))
    assert (one.points, two.points) == (3, 1)
    assert one.tolerance.abs == 0.5


def test_structure_raises_and_reference_expectations(tmp_path):
    suite = load_suite(write(tmp_path, """\
        cases:
          - name: structure
            inputs: {a: 1, b: 2}
            output: a * b
            expect: {args: [1, 2], local_derivatives: [2, 1]}
          - name: domain
            inputs: {a: 0}
            output: log(a)
            expect: {raises: true}
          - name: ask_the_reference
            inputs: {a: 0.5}
            output: tanh(a)
            expect: {value: reference, grad: reference}
        """))
    structure, domain, reference = suite.cases
    assert structure.expect.args == (1, 2) and structure.expect.local_derivatives == (2, 1)
    assert domain.expect.raises and domain.expect.value is None
    assert reference.expect.value == reference.expect.grad == REFERENCE


def test_a_case_may_use_a_plugins_op_when_told_about_it(tmp_path):
    path = write(tmp_path, case_with("softplus(a) + b", name="custom"))
    with pytest.raises(CaseFileError, match="unknown function 'softplus'"):
        load_suite(path)
    case = load_suite(path, {"softplus": 1}).cases[0]
    assert code(case.output)[1] == ["op", "softplus", 1]


def test_the_builtin_suites_load(tmp_path):
    suites = load_suites()
    assert {s.name for s in suites} >= {"graphs", "models", "notebook", "numerics", "ops", "semantics"}
    assert all(s.cases for s in suites)
    assert len({c.id for s in suites for c in s.cases}) == sum(len(s.cases) for s in suites)
    assert case_files([builtin_cases_dir()]) == sorted(builtin_cases_dir().rglob("*.yaml"))


def test_a_folder_is_searched_recursively_in_name_order(tmp_path):
    write(tmp_path, GOOD, "b.yaml")
    (tmp_path / "sub").mkdir()
    write(tmp_path, GOOD.replace("good", "other"), "sub/a.yml")
    write(tmp_path, "not yaml", "notes.txt")
    assert case_files([tmp_path]) == [tmp_path / "b.yaml", tmp_path / "sub" / "a.yml"]


# --- bad files: each is one CaseFileError naming file, line, case and the fix -------------------

@pytest.mark.parametrize("content, line, case, needle", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_a_bad_case_file_is_one_clear_error(tmp_path, content, line, case, needle):
    path = write(tmp_path, content)
    with pytest.raises(CaseFileError) as caught:
        load_suite(path)
    error = caught.value
    assert isinstance(error, HarnessError)
    assert (error.path, error.line, error.case) == (str(path), line, case)
    in_case = f" case {case!r}:" if case else ""
    assert str(error).startswith(f"{path}:{line}:{in_case} ") and needle in str(error)
    assert "\n" not in str(error)


MORE_BAD = [
    ("top_level_list", "- a\n- b\n", 1, "the top level must be a mapping with a 'cases:' list"),
    ("bad_suite_name", "suite: 'has space'\n" + GOOD, 1, "'suite' must be a name made of letters, digits"),
    ("defaults_not_mapping", "defaults: 3\n" + GOOD, 1, "'defaults' must be a mapping of case fields"),
    ("defaults_name", "defaults: {name: x}\n" + GOOD, 1, "'defaults' cannot set 'name': every case needs its own"),
    ("defaults_typo", "defaults: {pionts: 1}\n" + GOOD, 1, "unknown field 'pionts' in 'defaults' (did you mean"),
    ("case_not_mapping", "cases:\n  - 3\n", 2, "case #1 must be a mapping with 'name', 'inputs', 'output'"),
    ("case_bad_name", "cases:\n  - name: 'a b'\n", 2, "case #1 needs a 'name' of letters, digits, '_' and '-'"),
    ("backward_negative", GOOD.replace("    expect", "    backward: -1\n    expect"), 5,
     "'backward' must be a whole number >= 0, got -1"),
    ("backward_float", GOOD.replace("    expect", "    backward: 1.5\n    expect"), 5,
     "'backward' must be a whole number >= 0, got 1.5"),
    ("tags_not_words", GOOD.replace("    expect", "    tags: [1, 2]\n    expect"), 5,
     "'tags' must be a list of words"),
    ("visibility_typo", GOOD.replace("    expect", "    visibility: hiden\n    expect"), 5,
     "'visibility' must be one of visible, hidden, after_due_date, got 'hiden' "
     "(did you mean 'hidden'?)"),
    ("input_named_like_an_op", "cases:\n  - name: c\n    inputs: {exp: 1}\n    output: exp\n    expect: {value: 1}\n",
     3, "input 'exp' is the name of an op; pick another name"),
    ("input_keyword", "cases:\n  - name: c\n    inputs: {lambda: 1}\n    output: a\n    expect: {value: 1}\n",
     3, "is not a valid name"),
    ("output_not_text", case_with("[1, 2]"), 4, "output must be an expression such as 'a + b * c', got [1, 2]"),
    ("expect_empty", GOOD.replace("{value: 3}", "{}"), 5, "'value', 'grad', 'args'"),
    ("expect_value_text", GOOD.replace("{value: 3}", "{value: three}"), 5,
     "'expect.value' must be a number (or .nan, .inf, -.inf), got 'three'"),
    ("expect_args_not_list", GOOD.replace("{value: 3}", "{args: 3}"), 5, "'expect.args' must be a list of numbers"),
    ("raises_not_bool", GOOD.replace("{value: 3}", "{raises: yes please}"), 5,
     "'expect.raises' must be true or false, got 'yes please'"),
    ("raises_and_value", GOOD.replace("{value: 3}", "{value: 3, raises: true}"), 5,
     "'expect.raises: true' means the engine must raise, so it cannot also expect value; split it into two cases"),
    ("repeat_negative", "cases:\n  - name: c\n    inputs: {a: 1}\n    steps:\n      - repeat: -1\n        steps: []\n"
     "    output: a\n    expect: {value: 1}\n", 5, "'repeat' must be a whole number >= 0, got -1"),
    ("step_uses_later_name", "cases:\n  - name: c\n    inputs: {a: 1}\n    steps:\n      - b: c + a\n      - c: a\n"
     "    output: b\n    expect: {value: 1}\n", 5, "undefined name 'c' in step 'b' 'c + a'; defined so far: a"),
    ("timeout_zero", GOOD.replace("    expect", "    timeout: 0\n    expect"), 5, "'timeout'"),
    ("infinite_points", GOOD.replace("    expect", "    points: .inf\n    expect"), 5,
     "'points' must be a finite number, got inf"),
    ("huge_integer", GOOD.replace("{value: 3}", "{value: " + "9" * 400 + "}"), 5,
     "'expect.value' is a 400-digit number, too large for a float"),
    ("duplicate_suite_across_files", None, None, None),
]


@pytest.mark.parametrize("content, line, needle", [b[1:] for b in MORE_BAD[:-1]], ids=[b[0] for b in MORE_BAD[:-1]])
def test_more_bad_case_files_name_the_line_and_the_fix(tmp_path, content, line, needle):
    path = write(tmp_path, content)
    with pytest.raises(CaseFileError) as caught:
        load_suite(path)
    assert caught.value.line == line, str(caught.value)
    assert needle in caught.value.problem


def test_two_files_may_not_share_a_suite_name(tmp_path):
    a = write(tmp_path, "suite: same\n" + GOOD, "a.yaml")
    write(tmp_path, "suite: same\n" + GOOD, "b.yaml")
    with pytest.raises(CaseFileError) as caught:
        load_suites([tmp_path])
    assert str(caught.value) == (f"{tmp_path / 'b.yaml'}: suite name 'same' is also used by {a}; "
                                 "set a different 'suite:'")


def test_a_missing_path_is_named_with_what_cases_takes(tmp_path):
    with pytest.raises(CaseFileError, match="no such file or folder; --cases takes a YAML file or a folder of them"):
        case_files([tmp_path / "missing.yaml"])


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ["l0: &l0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 11)]
    path = write(tmp_path, "\n".join(lines) + "\ncases: *l10\n")
    with pytest.raises(CaseFileError, match="expands to more than 1,000,000 nodes through YAML aliases"):
        load_suite(path)


def test_a_self_referencing_alias_is_refused(tmp_path):
    with pytest.raises(CaseFileError, match="a YAML alias refers to itself"):
        load_suite(write(tmp_path, "cases: &c\n  - *c\n"))


def test_a_file_loaded_again_is_parsed_once_and_a_changed_one_again(tmp_path, monkeypatch):
    from harness.cases import loader

    path = tmp_path / "s.yaml"
    path.write_text("suite: s\ncases:\n  - name: a\n    inputs: {x: 1.0}\n    output: x\n    expect: {value: 1.0}\n")
    parsed = []
    real = loader._SuiteParser.suite
    monkeypatch.setattr(loader._SuiteParser, "suite", lambda self, data: parsed.append(1) or real(self, data))
    first = loader.load_suite(path)
    assert loader.load_suite(path) is first and len(parsed) == 1
    path.write_text(path.read_text().replace("1.0}", "2.0}"))
    changed = loader.load_suite(path)
    assert len(parsed) == 2 and changed.cases[0].expect.value == 2.0
    assert loader.load_suite(path, {"exp": 1}) is not changed and len(parsed) == 3  # other call ops
