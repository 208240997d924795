"""High-confidence blame is never wrong, on a subset of benchmarks/blame_precision.py's corpus."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

import harness

sys.path.insert(0, str(ROOT / "benchmarks"))
import blame_precision as bench  # noqa: E402

pytestmark = pytest.mark.slow

#: The engines of the two known false positives (a tanh bug told "not accumulated", a slow log told
#: "follows every path") and the true culprits next to them.
ENGINES = ("tanh_one_minus_t", "slow_log", "assign_grad", "log_assigns", "every_path", "mul_swapped")
#: The graphs suite (reuse, diamonds, 2^50 paths, the long chain of every op) and the tanh cases.
SELECTION = ["--tag", "graphs", "--tag", "tanh"]


def test_every_corpus_edit_applies_once_and_compiles():
    for name, bug in bench.CORPUS.items():
        compile(bench.source(bug), name, "exec")
    every_op = set(harness.OPS)
    assert {c for bug in bench.OP_BUGS.values() for c in bug.culprits} == every_op == set(bench.ASSIGN_LINES)


@pytest.mark.timeout(900)  # six engines graded with blame: a few minutes on a busy 2-core machine
def test_high_confidence_blame_is_never_wrong_on_a_subset():
    claims = bench.grade(ENGINES, SELECTION, jobs=2)
    s = bench.score(claims)
    assert s.wrong == () and s.precision == 1.0, s.wrong
    assert claims["slow_log"] == set()
    assert "accumulation" not in claims["tanh_one_minus_t"] and "tanh" in claims["tanh_one_minus_t"]
    assert {"accumulation"} <= claims["assign_grad"] and claims["every_path"] & {"exponential", "recursion"}
    assert s.recall >= 0.8
