"""Target 5: fuzz throughput: ``grade --fuzz 1000`` against the reference engine, end to end.

Hypothesis generates each random expression in the grader; the graded engine
and the reference engine (each in its own process) compute it, and the judge
compares them.  The rate is expressions per second of wall time, start-up
included.
"""

from __future__ import annotations

from common import Row, median, tool, wall

N = 1000


def run(repeats: int = 3) -> list[Row]:
    cmd = [tool("grade"), "--engine", "reference", "--fuzz", str(N), "-k", "fuzz", "--format", "json"]
    wall(cmd, check_codes=(0,))  # warm-up; exit 0: the reference engine agrees with itself
    took = median(wall(cmd, check_codes=(0,)) for _ in range(repeats))
    return [Row(f"fuzz throughput: grade --fuzz {N}, reference engine", N / took, "expr/s",
                f"{N} in a few s (<= 5 s)", took <= 5.0,
                f"{N} expressions generated, run in both engines and judged in {took:.2f} s end to end "
                f"(median of {repeats})")]


if __name__ == "__main__":
    for r in run():
        print(r)
