"""Precision and recall of high-confidence blame over a corpus of single-bug engines.

Each engine of the corpus is a correct fixture engine with one bug, written as
find/replace edits (each must apply exactly once): a wrong local derivative for
every op, "= instead of +=" in every op's own backward closure, and the habits
of backward() (no accumulation, grads reset, stale re-propagation, a recursive
sort, a walk of every path, a backward that does nothing), plus a correct
engine with a slow op, which deserves no high-confidence blame at all.

Every engine is graded with blame on each suite set (``grade --submissions``,
JSON report).  A *claim* is one distinct culprit that an engine is told with
high confidence; it is right when the culprit is one its bug accepts.

- precision = right claims / claims;
- recall = engines told a right culprit with high confidence / engines that have one.

    python benchmarks/blame_precision.py                 # the whole corpus on every suite set
    python benchmarks/blame_precision.py --quick         # a few engines, the notebook suite only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ROOT / "tests" / "engines"

#: name -> the grade arguments that select it
SUITE_SETS = {
    "built-in": [],
    "notebook": ["-k", "notebook::"],
    "ops+graphs": ["--tag", "ops", "--tag", "graphs"],
}


@dataclass(frozen=True)
class Bug:
    """One single-bug engine: a base fixture, its edits, and the culprits that name its bug."""

    base: str
    edits: tuple[tuple[str, str], ...]
    culprits: frozenset[str]   # empty: no culprit is right (every high-confidence claim is wrong)


M, C = "micrograd_full", "micrograd_closures"


def _op(find: str, replace: str, op: str) -> Bug:
    return Bug(M, ((find, replace),), frozenset({op}))


#: Wrong local derivatives, one op each (micrograd_full.py).
OP_BUGS = {
    "add_half": _op('"+", lambda: (1.0, 1.0))', '"+", lambda: (1.0, 0.5))', "add"),
    "sub_sign": _op('"-", lambda: (1.0, -1.0))', '"-", lambda: (1.0, 1.0))', "sub"),
    "mul_swapped": _op("lambda: (other.data, self.data))", "lambda: (self.data, other.data))", "mul"),
    "div_sign": _op("lambda: (1.0 / b, -a / (b * b)))", "lambda: (1.0 / b, a / (b * b)))", "div"),
    "pow_no_factor": _op("d_base = p * math.pow(x, p - 1)", "d_base = math.pow(x, p - 1)", "pow"),
    "neg_sign": _op('"neg", lambda: (-1.0,))', '"neg", lambda: (1.0,))', "neg"),
    "exp_input": _op('"exp", lambda: (e,))', '"exp", lambda: (self.data,))', "exp"),
    "log_input": _op('"log", lambda: (1.0 / x,))', '"log", lambda: (x,))', "log"),
    "tanh_one_minus_t": _op('"tanh", lambda: (1.0 - t * t,))', '"tanh", lambda: (1.0 - t,))', "tanh"),
    "relu_always_one": _op('lambda: (1.0 if x > 0 else 0.0,))', "lambda: (1.0,))", "relu"),
    "sigmoid_s": _op('"sigmoid", lambda: (s * (1.0 - s),))', '"sigmoid", lambda: (s,))', "sigmoid"),
}

#: "= instead of +=" in one op's own backward closure (micrograd_closures.py): the op, or accumulation.
ASSIGN_LINES = {
    "add": "other._pass += out._pass  # d(a + b)/db = 1",
    "sub": "self._pass += out._pass  # d(a - b)/da = 1",
    "mul": "self._pass += other.data * out._pass  # d(a * b)/da = b",
    "div": "other._pass += -a / (b * b) * out._pass  # d(a / b)/db = -a/b^2",
    "pow": "self._pass += _pow_slope(x, p, out.data) * out._pass  # d(a ** p)/da = p a^(p-1)",
    "neg": "self._pass += -out._pass  # d(-a)/da = -1",
    "exp": "self._pass += e * out._pass  # d exp(a)/da = exp(a)",
    "log": "self._pass += out._pass / x  # d log(a)/da = 1/a",
    "tanh": "self._pass += (1.0 - t * t) * out._pass  # d tanh(a)/da = 1 - tanh(a)^2",
    "relu": "self._pass += (1.0 if x > 0 else 0.0) * out._pass  # d relu(a)/da = [a > 0]",
    "sigmoid": "self._pass += s * (1.0 - s) * out._pass  # d sigmoid(a)/da = s(1 - s)",
}
ASSIGN_BUGS = {f"{op}_assigns": Bug(C, ((line, line.replace(" += ", " = ", 1)),), frozenset({op, "accumulation"}))
               for op, line in ASSIGN_LINES.items()}

_SWEEP = "            for child, local in zip(node._prev, node._local()):\n"
_TOPO = '''def _topo(root):
    """Nodes reachable from root, children before parents, without recursion."""
'''
_BACKWARD = '''        order = _topo(self)
        fresh = {self: 1.0}
        for node in reversed(order):
            g = fresh[node]
            for child, local in zip(node._prev, node._local()):
                fresh[child] = fresh.get(child, 0.0) + local * g
        for node, g in fresh.items():
            node.grad += g
'''

#: The habits of backward() (micrograd_full.py), and a correct engine with a slow op.
HABIT_BUGS = {
    "assign_grad": Bug(M, ((_SWEEP + "                fresh[child] = fresh.get(child, 0.0) + local * g\n",
                            _SWEEP + "                fresh[child] = local * g\n"),), frozenset({"accumulation"})),
    "reset_grads": Bug(M, (("            node.grad += g\n", "            node.grad = g\n"),), frozenset({"reset"})),
    "stale_grads": Bug(M, ((_BACKWARD, '''        order = _topo(self)
        self.grad += 1.0
        for node in reversed(order):
            for child, local in zip(node._prev, node._local()):
                child.grad += local * node.grad
'''),), frozenset({"stale_grads"})),
    "recursive_topo": Bug(M, ((_TOPO, '''def _topo(root):
    """Nodes reachable from root, children before parents (recursively)."""
    order, seen = [], set()

    def visit(node):
        if node not in seen:
            seen.add(node)
            for child in node._prev:
                visit(child)
            order.append(node)
    visit(root)
    return order


def _unused_iterative_topo(root):
    """Nodes reachable from root, children before parents, without recursion."""
'''),), frozenset({"recursion"})),
    "every_path": Bug(M, ((_BACKWARD, '''        def walk(node, g):
            node.grad += g
            for child, local in zip(node._prev, node._local()):
                walk(child, local * g)
        walk(self, 1.0)
'''),), frozenset({"exponential", "recursion"})),
    "noop_backward": Bug(M, ((_BACKWARD, "        return\n"),), frozenset({"backward"})),
    "slow_log": Bug(M, (('        return Value(math.log(x), (self,), "log", lambda: (1.0 / x,))\n',
                         '        __import__("time").sleep(0.01)\n'
                         '        return Value(math.log(x), (self,), "log", lambda: (1.0 / x,))\n'),), frozenset()),
}

# "backward" (the fault is in backward() itself, e.g. the output's own grad after two calls) is right
# for every habit of backward(), never for an op's formula nor for a slow op.
HABIT_BUGS = {name: Bug(bug.base, bug.edits, bug.culprits | {"backward"}) if bug.culprits else bug
              for name, bug in HABIT_BUGS.items()}

CORPUS: dict[str, Bug] = {**OP_BUGS, **ASSIGN_BUGS, **HABIT_BUGS}
QUICK = ("tanh_one_minus_t", "log_assigns", "assign_grad", "slow_log", "mul_swapped", "reset_grads")


def source(bug: Bug) -> str:
    """The single-bug engine's source: its base with every edit applied exactly once."""
    text = (ENGINES / f"{bug.base}.py").read_text()
    for find, replace in bug.edits:
        count = text.count(find)
        assert count == 1, f"{find!r} occurs {count} times in {bug.base}.py, not once"
        text = text.replace(find, replace)
    return text


def write_corpus(names, folder: Path) -> None:
    """One ``<name>.py`` per engine of the corpus in ``folder``."""
    for name in names:
        (folder / f"{name}.py").write_text(source(CORPUS[name]))


def high_claims(report: dict) -> dict[str, set[str]]:
    """submission -> the culprits it is told with high confidence."""
    out: dict[str, set[str]] = {}
    for engine in report["engines"]:
        claims = out.setdefault(engine.get("submission") or engine["engine"], set())
        for case in engine["cases"]:
            for d in case.get("diagnosis") or []:
                if d.get("confidence") == "high" and d.get("culprit") != "case":
                    claims.add(d["culprit"])
    return out


@dataclass
class Score:
    claims: int = 0
    right: int = 0
    engines: int = 0
    found: int = 0
    wrong: tuple = ()

    @property
    def precision(self) -> float:
        return self.right / self.claims if self.claims else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.engines if self.engines else 1.0


def score(claims: dict[str, set[str]]) -> Score:
    """Precision and recall of ``claims`` against the corpus's culprits."""
    s = Score()
    wrong = []
    for name, told in claims.items():
        accepted = CORPUS[name].culprits
        s.claims += len(told)
        s.right += len(told & accepted)
        wrong += [f"{name}: {c}" for c in sorted(told - accepted)]
        if accepted:
            s.engines += 1
            s.found += bool(told & accepted)
    s.wrong = tuple(wrong)
    return s


def grade(names, selection: list[str], jobs: int) -> dict[str, set[str]]:
    """Grade the named engines of the corpus on ``selection`` with blame; their high-confidence claims."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        write_corpus(names, folder)
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "--submissions", str(folder), *selection,
                               "--format", "json", "--jobs", str(jobs)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"grade failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return high_claims(json.loads(proc.stdout))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, on the notebook suite")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    names = QUICK if args.quick else tuple(CORPUS)
    sets = {"notebook": SUITE_SETS["notebook"]} if args.quick else SUITE_SETS
    print(f"{len(names)} single-bug engines; high-confidence blame:")
    print("| suites | claims | precision | recall | time |")
    print("|---|---|---|---|---|")
    worst = 1.0
    for label, selection in sets.items():
        start = time.perf_counter()
        s = score(grade(names, selection, args.jobs))
        worst = min(worst, s.precision)
        print(f"| {label} | {s.claims} | {s.precision:.0%} ({s.right}/{s.claims}) | "
              f"{s.recall:.0%} ({s.found}/{s.engines}) | {time.perf_counter() - start:.0f} s |")
        for w in s.wrong:
            print(f"|   wrong: {w} | | | | |")
    return 0 if worst == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
