"""Target 4: a batch of submissions: --jobs 2 against --jobs 1, and time against batch size.

Each submission is a folder with an engine.py, as a course collects them; the
engines are the test suite's fixtures (correct ones and seeded bugs that fail
fast), copied round-robin.  Every batch is graded on the built-in suites.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Row, median, median_ratio, tool, wall

sys.path.insert(0, str(ROOT / "tests"))
from engines.mutants import MUTANTS, source  # noqa: E402  (the seeded bugs are edits of a correct engine)

FIXTURES = ["notebook_full", "micrograd_full", "plugin_engine", "bug_mul_swapped", "bug_sub_sign", "bug_tanh"]
SIZES = (1, 10, 50, 200)
PLOT = Path(__file__).with_name("scaling.png")


def make_batch(folder: Path, n: int) -> list[str]:
    """n submission folders under ``folder``; returns their paths."""
    paths = []
    for i in range(n):
        sub = folder / f"student-{i:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        fixture = FIXTURES[i % len(FIXTURES)]
        if fixture in MUTANTS:
            (sub / "engine.py").write_text(source(fixture))
        else:
            shutil.copy(ROOT / "tests" / "engines" / f"{fixture}.py", sub / "engine.py")
        paths.append(str(sub))
    return paths


def grade_cmd(subs: list[str], jobs: int) -> list[str]:
    return [tool("grade"), "--jobs", str(jobs), "--format", "json", *(a for s in subs for a in ("--engine", s))]


_BURN = [sys.executable, "-c", "x = 0\nfor i in range(4_000_000):\n    x += i"]


def machine_parallelism() -> float:
    """How much faster two CPU-bound processes finish side by side than one after the other, right now.

    2.0 on an idle 2-core machine; less when other work holds a core.  Shown next to the --jobs
    speedup, which cannot beat it.
    """
    start = time.perf_counter()
    for _ in range(2):
        subprocess.run(_BURN, check=True)
    one_by_one = time.perf_counter() - start
    start = time.perf_counter()
    for p in [subprocess.Popen(_BURN) for _ in range(2)]:
        p.wait()
    return one_by_one / (time.perf_counter() - start)


def speedup(repeats: int = 7) -> Row:
    times: dict = {"jobs1": [], "jobs2": []}
    capacity = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        subs = make_batch(Path(tmp), 6)
        commands = {"jobs1": grade_cmd(subs, 1), "jobs2": grade_cmd(subs, 2)}
        for name, argv in commands.items():  # warm-up
            wall(argv)
        for _ in range(repeats):
            for name, argv in commands.items():
                times[name].append(wall(argv))
            capacity.append(machine_parallelism())
    ratio = median_ratio(times["jobs1"], times["jobs2"])
    return Row("batch of 6 submissions: --jobs 2 speedup over --jobs 1", ratio, "x", ">= 1.6", ratio >= 1.6,
               f"jobs 1 {median(times['jobs1']):.2f} s, jobs 2 {median(times['jobs2']):.2f} s (medians of "
               f"{repeats}, interleaved); meanwhile two CPU-bound processes ran {median(capacity):.2f}x faster "
               "side by side than one after the other")


def scaling(sizes=SIZES, repeats: int = 3) -> tuple[Row, dict]:
    """Wall time of grading 1, 10, 50 and 200 submissions with --jobs 2; a least-squares line through them."""
    measured = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        subs = make_batch(Path(tmp), max(sizes))
        wall(grade_cmd(subs[:1], 2))  # warm-up
        for n in sizes:
            measured[n] = median(wall(grade_cmd(subs[:n], 2)) for _ in range(repeats if n < 50 else 1))
    fit = line(measured)
    slope, intercept, r2 = fit["slope"], fit["intercept"], fit["r2"]
    points = ", ".join(f"{n}: {t:.2f} s" for n, t in measured.items())
    return Row("batch scaling (--jobs 2): linear fit R^2", r2, "", ">= 0.99 (linear)", r2 >= 0.99,
               f"{points}; {slope * 1000:.0f} ms per submission {intercept:+.2f} s"), fit


def line(measured: dict) -> dict:
    """The least-squares line through {batch size: seconds}, with its R²."""
    xs, ys = list(measured), list(measured.values())
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return {"sizes": measured, "slope": slope, "intercept": intercept, "r2": 1 - ss_res / ss_tot}


def plot(fit: dict, path: Path = PLOT) -> Path | None:
    """The scaling curve as PNG (needs matplotlib: pip install -e '.[bench]')."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = list(fit["sizes"]), list(fit["sizes"].values())
    fig, (ax, per) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    ax.plot(xs, ys, "o", label="measured (grade --jobs 2)")
    ends = [0, max(xs)]
    ax.plot(ends, [fit["intercept"] + fit["slope"] * x for x in ends], "-",
            label=f"{fit['slope'] * 1000:.0f} ms/submission {fit['intercept']:+.2f} s (R² {fit['r2']:.4f})")
    ax.set_xlabel("submissions in the batch")
    ax.set_ylabel("wall time (s)")
    ax.set_title("Grading time against batch size")
    ax.grid(alpha=0.3)
    ax.legend()
    per.plot(xs, [1000 * y / x for x, y in zip(xs, ys)], "o-")
    per.set_xscale("log")
    per.set_xticks(xs, [str(x) for x in xs])
    per.set_ylim(bottom=0)
    per.set_xlabel("submissions in the batch (log scale)")
    per.set_ylabel("wall time per submission (ms)")
    per.set_title("Wall time per submission")
    per.grid(alpha=0.3)
    fig.suptitle("grade on the built-in suites, 2 cores")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def run() -> list[Row]:
    row, fit = scaling()
    saved = plot(fit)
    if saved:
        row.detail += f"; plot: benchmarks/{saved.name}"
    return [speedup(), row]


if __name__ == "__main__":
    start = time.perf_counter()
    for r in run():
        print(r)
    print(f"{time.perf_counter() - start:.1f} s")
