"""Bad case files through the `grade` CLI: one clear message naming file, line and case; exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

CASE = "cases:\n  - name: {name}\n    inputs: {{a: 1, b: 2}}\n    output: {output}\n    expect: {{value: 3}}\n"


def case_with(output: str, name: str = "broken") -> str:
    """A one-case file whose output (line 4) is ``output``."""
    return CASE.format(name=name, output=output)


GOOD = case_with("a + b", name="good")

# (id, file content, line, case or None, what the message must say)
BAD_FILES = [
    ("yaml_syntax", "cases:\n  - name: broken\n    inputs: {a: 1\n    output: a\n", 4, "broken",
     "YAML syntax error: while parsing a flow mapping (line 3) expected ',' or '}'"),
    ("yaml_bad_indent", GOOD + "  - name: broken\n    inputs: {a: 1}\n   output: a\n", 8, "broken",
     "YAML syntax error"),
    ("empty", "", 1, None, "the file is empty; a case file needs a 'cases:' list"),
    ("only_comments", "# nothing here\n", 1, None, "the file holds no YAML document"),
    ("not_utf8", "cases:\n  - name: caf\xe9\n".encode("latin-1"), 2, None, "not valid UTF-8"),
    ("no_cases", "suite: lonely\ndescription: no cases\n", 1, None, "missing 'cases:'"),
    ("cases_not_a_list", "cases: 3\n", 1, None, "'cases' must be a non-empty list"),
    ("no_output", "cases:\n  - name: broken\n    inputs: {a: 1}\n    expect: {value: 1}\n", 2, "broken",
     "missing 'output'"),
    ("no_inputs", "cases:\n  - name: broken\n    output: a + 1\n    expect: {value: 1}\n", 3, "broken",
     "undefined name 'a' in output 'a + 1': the case has no 'inputs'"),
    ("no_expect", "cases:\n  - name: broken\n    inputs: {a: 1}\n    output: a\n", 2, "broken", "missing 'expect'"),
    ("typo_expcet", "cases:\n  - name: broken\n    inputs: {a: 1}\n    output: a\n    expcet: {value: 1}\n",
     5, "broken", "unknown field 'expcet' in the case (did you mean 'expect'?)"),
    ("typo_in_expect", "cases:\n  - name: broken\n    inputs: {a: 1}\n    output: a\n    expect:\n      vaule: 1\n",
     6, "broken", "unknown field 'vaule' in 'expect' (did you mean 'value'?)"),
    ("typo_top_level", "case:\n  - name: broken\n", 1, None, "unknown field 'case' in the suite (did you mean 'cases'?)"),
    ("duplicate_name", GOOD + GOOD.replace("cases:\n", ""), 6, "good",
     "duplicate case name 'good' (first on line 2)"),
    ("non_numeric_input", "cases:\n  - name: broken\n    inputs: {a: one}\n    output: a\n    expect: {value: 1}\n",
     3, "broken", "input 'a' must be a number, got 'one'"),
    ("boolean_input", "cases:\n  - name: broken\n    inputs: {a: true}\n    output: a\n    expect: {value: 1}\n",
     3, "broken", "input 'a' must be a number, got True"),
    ("grad_of_unknown_name", GOOD.replace("{value: 3}", "{value: 3, grad: {c: 1}}"), 5, "good",
     "expect.grad names 'c', which is not an input or step; known: a, b"),
    ("negative_tolerance", GOOD.replace("    expect", "    tolerance: {rel: -1.0e-6}\n    expect"), 5, "good",
     "'tolerance.rel' must be >= 0, got -1e-06"),
    ("negative_points", GOOD.replace("    expect", "    points: -2\n    expect"), 5, "good",
     "'points' must be >= 0, got -2"),
    ("expression_syntax", case_with("a +* b"), 4, "broken", "in output 'a +* b': invalid expression syntax"),
    ("unknown_function", case_with("sqrt(a)"), 4, "broken",
     "unknown function 'sqrt'; known ops: exp, log, relu, sigmoid, tanh"),
    ("misspelled_function", case_with("tahn(a)"), 4, "broken", "unknown function 'tahn' (did you mean 'tanh'?)"),
    ("undefined_name", case_with("a + c"), 4, "broken", "undefined name 'c' in output 'a + c'; defined so far: a, b"),
    ("attribute", case_with("a.real"), 4, "broken", "attribute access ('.') is not allowed"),
    ("dunder_escape", case_with("a.__class__.__mro__"), 4, "broken", "attribute access ('.') is not allowed"),
    ("subscript", case_with("a[0]"), 4, "broken", "subscripts ('[...]') are not allowed"),
    ("lambda", case_with("'(lambda: a)()'"), 4, "broken", "only calls of ops such as exp(x) are allowed"),
    ("bare_lambda", case_with("'lambda: a'"), 4, "broken", "lambdas are not allowed"),
    ("comprehension", case_with("'[x for x in a]'"), 4, "broken", "comprehensions are not allowed"),
    ("string_constant", case_with("\"'a' + a\""), 4, "broken", "string constants are not allowed"),
    ("import_call", case_with("\"__import__('os').system('true')\""), 4, "broken",
     "only calls of ops such as exp(x) are allowed"),
    ("python_tag", case_with("!!python/object/apply:os.system ['true']"), 4, "broken",
     "the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
    ("python_name_tag", GOOD.replace("{value: 3}", "{value: !!python/name:os.system }"), 5, "good",
     "the YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed"),
]


# Every entry's message is checked in process (tests/unit/test_loader.py); through the CLI, one of each kind:
# YAML, encoding, file structure, a case field, an expression, a YAML tag.
THROUGH_THE_CLI = ("yaml_syntax", "not_utf8", "no_cases", "typo_in_expect", "misspelled_function", "python_tag")


@pytest.mark.parametrize("content, line, case, needle", [b[1:] for b in BAD_FILES if b[0] in THROUGH_THE_CLI],
                         ids=[b[0] for b in BAD_FILES if b[0] in THROUGH_THE_CLI])
def test_a_bad_case_file_is_one_clear_error(grade, tmp_path, content, line, case, needle):
    path = tmp_path / "suite.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = grade("--cases", path, "--engine", "reference")
    assert result.code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    in_case = f" case {case!r}:" if case else ""
    assert result.stderr.startswith(f"grade: error: {path}:{line}:{in_case} "), result.stderr
    assert needle in result.stderr


def test_nothing_in_a_case_file_is_executed(grade, tmp_path):
    marker = tmp_path / "executed"
    for i, output in enumerate((f"!!python/object/apply:os.system ['touch {marker}']",
                                f"\"__import__('os').system('touch {marker}')\"",
                                f"\"exec('open(\\\"{marker}\\\", \\\"w\\\")')\"")):
        path = tmp_path / f"attack{i}.yaml"
        path.write_text(case_with(output))
        result = grade("--cases", path, "--engine", "reference")
        assert result.code == 2 and "Traceback" not in result.stderr
    assert not marker.exists()


def test_an_alias_bomb_is_rejected_in_bounded_memory(tmp_path):
    # ten levels of ten aliases each: 10**10 nodes once expanded
    lines = ["l0: &l0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 11)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ncases: *l10\n")

    def cap_memory():  # a loader that expanded the aliases would die of MemoryError under this cap
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run([sys.executable, "-m", "harness.cli", "--cases", str(path), "--engine", "reference"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, preexec_fn=cap_memory)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"grade: error: {path}:")
    assert "expands to more than 1,000,000 nodes through YAML aliases" in proc.stderr


def test_a_self_referencing_alias_is_rejected(grade, tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("cases: &c\n  - *c\n")
    result = grade("--cases", path, "--engine", "reference")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_the_first_bad_file_of_a_folder_is_named(grade, tmp_path):
    (tmp_path / "a_good.yaml").write_text(GOOD)
    (tmp_path / "b_bad.yaml").write_text(case_with("a +"))
    result = grade("--cases", tmp_path, "--engine", "reference")
    assert result.code == 2
    assert f"{tmp_path / 'b_bad.yaml'}:4: case 'broken':" in result.stderr
