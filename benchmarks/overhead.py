"""Target 2: the cost of each extra tiny case, over a run of the notebook suite (reference engine)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from common import Row, median, side_by_side, tool

TINY = 600
NOTEBOOK = 12  # cases in the notebook suite


def tiny_cases(path: Path, n: int = TINY, seed: int = 7) -> None:
    """A suite of n small cases: L = a + b * c at random small integers."""
    rng = random.Random(seed)
    lines = ["suite: tiny", "cases:"]
    for i in range(n):
        a, b, c = (rng.randint(-9, 9) for _ in range(3))
        lines += [f"  - name: tiny_{i}", f"    inputs: {{a: {a}, b: {b}, c: {c}}}", "    output: a + b * c",
                  f"    expect: {{value: {a + b * c}, grad: {{a: 1, b: {c}, c: {b}}}}}"]
    path.write_text("\n".join(lines) + "\n")


def run(repeats: int = 11) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        cases = Path(tmp) / "tiny.yaml"
        tiny_cases(cases)
        commands = {
            "tiny": [tool("grade"), "--engine", "reference", "--cases", str(cases)],
            "notebook": [tool("grade"), "--engine", "reference", "-k", "notebook::"],
        }
        times = side_by_side(commands, repeats, cwd=tmp)
    per_case = median(t - n for t, n in zip(times["tiny"], times["notebook"])) / (TINY - NOTEBOOK)
    return [
        Row(f"per-case overhead ({TINY} tiny cases vs the notebook suite)", per_case * 1000, "ms", "<= 1 ms",
            per_case <= 0.001,
            f"{TINY} cases {median(times['tiny']) * 1000:.0f} ms, notebook suite "
            f"{median(times['notebook']) * 1000:.0f} ms (medians of {repeats}, interleaved)"),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
