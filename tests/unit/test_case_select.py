"""-k expressions (pytest's grammar, substrings of case ids), --tag and --exclude-tag."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.cases.select import Expression, ExpressionError, select

IDS = ["ops::sigmoid_at_0", "ops::tanh_at_2", "semantics::backward_twice_add", "notebook::a_plus_b_times_c",
       "graphs::x_plus_x"]


def chosen(text: str) -> list[str]:
    expression = Expression.compile(text)
    return [i for i in IDS if expression.matches(i)]


@pytest.mark.parametrize("text, expected", [
    ("sigmoid", ["ops::sigmoid_at_0"]),
    ("ops::", ["ops::sigmoid_at_0", "ops::tanh_at_2"]),
    ("not semantics", [i for i in IDS if not i.startswith("semantics")]),
    ("ops and not sigmoid", ["ops::tanh_at_2"]),
    ("tanh or twice", ["ops::tanh_at_2", "semantics::backward_twice_add"]),
    ("not ops and not graphs", ["semantics::backward_twice_add", "notebook::a_plus_b_times_c"]),
    ("(ops or graphs) and not (sigmoid or tanh)", ["graphs::x_plus_x"]),
    # 'and' binds tighter than 'or', and 'not' tighter than both
    ("semantics or ops and tanh", ["ops::tanh_at_2", "semantics::backward_twice_add"]),
    ("not not sigmoid", ["ops::sigmoid_at_0"]),
    ("plus", ["notebook::a_plus_b_times_c", "graphs::x_plus_x"]),
    ("OPS", []),  # ids are matched as written
    ("", IDS),
    ("   ", IDS),
    ("a_plus_b_times_c", ["notebook::a_plus_b_times_c"]),
    ("x_plus-x or ops::tanh_at_2", ["ops::tanh_at_2"]),
])
def test_expressions_select_by_substrings_of_the_id(text, expected):
    assert chosen(text) == expected


def test_names_may_hold_the_characters_of_ids_and_pytest_names():
    for name in ("notebook::a_plus", "a-b", "x.y", "x[1]", "a/b", "a+b", r"a\b"):
        assert Expression.compile(name).matches(f"s::{name}_tail")


def test_keywords_are_keywords_only_as_whole_words():
    assert Expression.compile("notebook").matches("notebook::x")
    assert Expression.compile("android or oracle").matches("s::oracle")


@pytest.mark.parametrize("text, problem", [
    ("not", "at column 4: expected a name, 'not' or '('; got the end of the expression"),
    ("ops and", "at column 8: expected a name, 'not' or '('; got the end of the expression"),
    ("ops tanh", "at column 5: expected 'and', 'or' or the end; got 'tanh'"),
    ("(ops", "at column 5: expected ')'; got the end of the expression"),
    ("ops)", "at column 4: expected 'and', 'or' or the end; got ')'"),
    ("or ops", "at column 1: expected a name, 'not' or '('; got 'or'"),
    ("ops $ x", "at column 5: unexpected character '$'"),
    ("()", "at column 2: expected a name, 'not' or '('; got ')'"),
])
def test_a_bad_expression_names_the_column_and_what_was_expected(text, problem):
    with pytest.raises(ExpressionError) as e:
        Expression.compile(text)
    assert str(e.value) == problem


def test_nesting_is_bounded_instead_of_exhausting_the_stack():
    with pytest.raises(ExpressionError, match="nested more than 100 deep"):
        Expression.compile("not " * 5000 + "x")
    with pytest.raises(ExpressionError, match="nested more than 100 deep"):
        Expression.compile("(" * 5000 + "x" + ")" * 5000)
    assert Expression.compile("(" * 50 + "x" + ")" * 50).matches("x")


@dataclass
class Case:
    id: str
    tags: tuple[str, ...] = ()


CASES = [Case("ops::sigmoid_at_0", ("ops", "sigmoid")), Case("ops::tanh_at_2", ("ops", "tanh")),
         Case("semantics::backward_twice_add", ("semantics", "accumulation", "add")),
         Case("notebook::a_plus_b", ("notebook", "add"))]


def ids(cases) -> list[str]:
    return [c.id for c in cases]


def test_select_keeps_the_order_and_applies_each_filter_only_when_given():
    assert select(CASES) == CASES
    assert ids(select(CASES, [Expression.compile("not ops")])) == ["semantics::backward_twice_add",
                                                                   "notebook::a_plus_b"]


def test_repeated_expressions_select_the_cases_matching_any_of_them():
    keywords = [Expression.compile("sigmoid"), Expression.compile("notebook")]
    assert ids(select(CASES, keywords)) == ["ops::sigmoid_at_0", "notebook::a_plus_b"]


def test_tags_select_any_and_excluded_tags_win():
    assert ids(select(CASES, tags=["add"])) == ["semantics::backward_twice_add", "notebook::a_plus_b"]
    assert ids(select(CASES, tags=["add"], exclude_tags=["semantics"])) == ["notebook::a_plus_b"]
    assert ids(select(CASES, exclude_tags=["sigmoid", "tanh"])) == ["semantics::backward_twice_add",
                                                                    "notebook::a_plus_b"]
    assert ids(select(CASES, [Expression.compile("ops")], exclude_tags=["tanh"])) == ["ops::sigmoid_at_0"]
