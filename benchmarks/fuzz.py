"""Target 5: fuzz throughput: 1000 random expressions graded against the reference engine.

Each expression is a random tree over three inputs using every built-in op,
shaped to stay in each op's domain (log of a positive number, exp of a
bounded one, no division by zero).  Its expected value and gradients come
from the reference engine in this process; ``grade`` then runs the 1000
cases end to end (parse, engine process, judge, report).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import sys

from common import ROOT, Row, median, tool, wall

sys.path.insert(0, str(ROOT))

N = 1000
NAMES = ("a", "b", "c")


def expression(rng: random.Random, depth: int):
    """A random tree: a name, a constant, or (op, children...)."""
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(NAMES) if rng.random() < 0.8 else round(rng.uniform(0.5, 3), 3)
    kind = rng.choice(("add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "relu", "sigmoid"))
    e = lambda: expression(rng, depth - 1)  # noqa: E731
    if kind in ("add", "sub", "mul"):
        return (kind, e(), e())
    if kind == "div":  # a / (1 + b*b): the denominator is >= 1
        d = e()
        return ("div", e(), ("add", 1, ("mul", d, d)))
    if kind == "pow":  # (sigmoid(x) + 0.5) ** y: a positive base, a bounded exponent
        return ("pow", ("add", ("sigmoid", e()), 0.5), ("tanh", e()))
    if kind == "exp":
        return ("exp", ("tanh", e()))
    if kind == "log":
        return ("log", ("add", ("sigmoid", e()), 0.5))
    return (kind, e())


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}


def render(t) -> str:
    if not isinstance(t, tuple):
        return str(t)
    op, *args = t
    if op in _INFIX:
        return f"({render(args[0])} {_INFIX[op]} {render(args[1])})"
    if op == "neg":
        return f"(-{render(args[0])})"
    return f"{op}({render(args[0])})"


def evaluate(t, env: dict):
    """The tree built with reference_engine Tensors (no eval of any string)."""
    from reference_engine import tensor

    if not isinstance(t, tuple):
        return env[t] if isinstance(t, str) else t
    op, *args = t
    return getattr(tensor, f"_{op}")(*(evaluate(a, env) for a in args))


def fuzz_cases(path: Path, n: int = N, seed: int = 11) -> None:
    """Write n random cases with the reference engine's answers."""
    from reference_engine import Tensor

    rng = random.Random(seed)
    lines = ["suite: fuzz", "cases:"]
    for i in range(n):
        tree = expression(rng, rng.randint(2, 5))
        inputs = {k: round(rng.uniform(-2, 2), 4) for k in NAMES}
        env = {k: Tensor(v) for k, v in inputs.items()}
        out = evaluate(tree, env)
        if not isinstance(out, Tensor):
            out = Tensor(out)
        out.backward()
        grads = {k: (0.0 if env[k].derivative is None else env[k].derivative.value) for k in NAMES}
        lines += [f"  - name: fuzz_{i}", f"    inputs: {{{', '.join(f'{k}: {v!r}' for k, v in inputs.items())}}}",
                  f'    output: "{render(tree)}"',
                  f"    expect: {{value: {out.value!r}, grad: {{{', '.join(f'{k}: {g!r}' for k, g in grads.items())}}}}}"]
    path.write_text("\n".join(lines) + "\n")


def run(repeats: int = 5) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        cases = Path(tmp) / "fuzz.yaml"
        fuzz_cases(cases)
        cmd = [tool("grade"), "--engine", "reference", "--cases", str(cases)]
        wall(cmd, check_codes=(0,))  # warm-up; exit 0: the reference engine passes all of them
        took = median(wall(cmd, check_codes=(0,)) for _ in range(repeats))
    rate = N / took
    return [Row(f"fuzz throughput: {N} random expressions, reference engine", rate, "expr/s",
                ">= 333/s (1000 in < 3 s)", took < 3.0, f"{N} cases graded in {took:.2f} s end to end "
                f"(median of {repeats})")]


if __name__ == "__main__":
    for r in run():
        print(r)
