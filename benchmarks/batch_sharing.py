"""Issue 13: a whole course near the machine's limit (shared reference work, parallel fuzz, memory).

Each figure is a ratio taken in one run, next to the machine's measured parallelism at that moment
(two CPU-bound processes side by side against one after the other, ``batches.machine_parallelism``,
taken just before and just after the timed runs, and averaged):

- blame: a mixed batch of 48 with blame on, wall time against (sum of the engines' own case
  durations / parallelism); target <= 1.3;
- jobs: ``--jobs 2`` against ``--jobs 1`` on 6 and on 48 submissions, as a share of the parallelism;
  target >= 0.85 (the median of 3 rounds on 6, one round on 48);
- fuzz: ``--fuzz 300`` on 8 submissions, ``--jobs 2`` against ``--jobs 1``, as a share (median of 3 rounds);
  target >= 0.85;
- memory: the grader's peak RSS on 50, 500 and 5,000 tiny submissions (the reference engine on one
  case, no blame, no sandbox); target: within 2x from the smallest batch to the largest.  Each
  submission's results wait on disk in the spool (``harness.running.spool``) and the report is written
  an engine at a time, so only a summary per submission stays in memory.  ``--only-memory [N ...]``
  runs just this part (default sizes 50 500 5000; e.g. ``--only-memory 50 500``); ``--only blame,fuzz``
  runs some rows of the full run (blame, jobs6, jobs48, fuzz, memory).

``python benchmarks/batch_sharing.py --quick`` runs small variants (8 and 6 submissions, --fuzz 30 on 4,
memory at 10/20/40), and ``--tiny`` smaller ones still (2 submissions, --fuzz 10, memory at 2/4/8, well
under a minute): they only check that the script works; their figures mean little.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batches import grade_cmd, machine_parallelism, make_batch
from common import ROOT, Row, clean_env, tool

MIXED = ["notebook_full", "micrograd_full", "plugin_engine", "bug_mul_swapped", "bug_sub_sign", "bug_tanh",
         "bug_assign_grad", "bug_recursive_topo"]


def _grade(argv: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, cwd=ROOT)
    took = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"grade exited {proc.returncode}: {proc.stderr[-2000:]}")
    return took, json.loads(proc.stdout)


def _mixed(folder: Path, n: int) -> list[str]:
    import batches

    saved = batches.FIXTURES
    batches.FIXTURES = MIXED
    try:
        return make_batch(folder, n)
    finally:
        batches.FIXTURES = saved


def _parallelism_around(measure):
    """``measure()``'s result, and the machine's parallelism: the mean of one taken just before and one
    just after (the figure that holds while it ran, on a machine whose load changes)."""
    before = machine_parallelism()
    got = measure()
    return got, (before + machine_parallelism()) / 2


def blame_floor(n: int = 48) -> Row:
    with tempfile.TemporaryDirectory(prefix="bench-share-") as tmp:
        subs = _mixed(Path(tmp), n)
        (took, report), par = _parallelism_around(lambda: _grade(grade_cmd(subs, 2)))
    own = sum(c["duration_s"] or 0 for e in report["engines"] for c in e["cases"])
    floor = own / par
    ratio = took / floor
    return Row(f"mixed batch of {n}, blame on, --jobs 2: wall / (case durations / parallelism)", ratio, "x",
               "<= 1.3", ratio <= 1.3, f"{took:.2f} s against a floor of {floor:.2f} s ({own:.2f} s of cases, "
               f"parallelism {par:.2f})")


def jobs_share(n: int, fuzz: int = 0, rounds: int = 3) -> Row:
    """``--jobs 2`` against ``--jobs 1`` as a share of the parallelism, the median of ``rounds`` rounds: each
    round times both and measures the parallelism around them (on a shared VM the parallelism moves from
    1.4 to 2.4 from one minute to the next, so one round says little)."""
    extra = ["--fuzz", str(fuzz), "--seed", "7", "-k", "fuzz"] if fuzz else []
    taken = []
    with tempfile.TemporaryDirectory(prefix="bench-share-") as tmp:
        subs = _mixed(Path(tmp), n)
        for _ in range(rounds):
            (one, two), par = _parallelism_around(lambda: (_grade(grade_cmd(subs, 1) + extra)[0],
                                                           _grade(grade_cmd(subs, 2) + extra)[0]))
            taken.append(((one / two) / par, one, two, par))
    taken.sort()
    share = taken[len(taken) // 2][0]
    what = f"--fuzz {fuzz} on {n}" if fuzz else f"{n} submissions"
    detail = "; ".join(f"{s:.2f} (jobs 1 {one:.2f} s, jobs 2 {two:.2f} s, speedup {one / two:.2f}, parallelism "
                       f"{par:.2f})" for s, one, two, par in taken)
    return Row(f"{what}: --jobs 2 speedup as a share of the machine's parallelism, median of {rounds}", share, "",
               ">= 0.85", share >= 0.85, detail)


_PEAK = """
import resource, sys
from harness import cli
try:
    cli.main(sys.argv[1:])
except SystemExit:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_kb(n: int) -> int:
    """The grader's own peak RSS in KB (ru_maxrss of the grade process; its engine processes, children,
    are not counted) grading ``n`` tiny submissions: the reference engine on one case, no blame, no
    sandbox, so that the batch is cheap and the grader's own memory is what grows, if anything does.
    The report goes to a file (written piece by piece, as a batch's always is)."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        argv = [sys.executable, "-c", _PEAK, "--jobs", "2", "--format", "json", "--no-blame", "--sandbox", "none",
                "-k", "notebook::a_plus_b_times_c", "--output", str(Path(tmp) / "report.json"),
                *(a for _ in range(n) for a in ("--engine", "reference"))]
        proc = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, cwd=ROOT)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"grade exited {proc.returncode}: {proc.stderr[-2000:]}")
        engines = len(json.loads((Path(tmp) / "report.json").read_text())["engines"])
    if engines != n:
        raise RuntimeError(f"the report holds {engines} engines, not {n}")
    return int(proc.stderr.strip().splitlines()[-1])


def memory(sizes=(50, 500, 5000)) -> Row:
    peaks = {n: peak_kb(n) for n in sizes}
    ratio = peaks[sizes[-1]] / peaks[sizes[0]]
    slope = (peaks[sizes[-1]] - peaks[sizes[0]]) / (sizes[-1] - sizes[0])  # KB per extra submission
    return Row(f"grader peak memory, {sizes[-1]} against {sizes[0]} tiny submissions", ratio, "x", "<= 2",
               ratio <= 2, ", ".join(f"{n}: {kb / 1024:.1f} MB" for n, kb in peaks.items())
               + f"; {slope:.2f} KB per extra submission")


def run(quick: bool = False, tiny: bool = False) -> list[Row]:
    if tiny:
        return [blame_floor(2), jobs_share(2, rounds=1), jobs_share(2, fuzz=10, rounds=1), memory((2, 4, 8))]
    if quick:
        return [blame_floor(8), jobs_share(6), jobs_share(4, fuzz=30), memory((10, 20, 40))]
    return [blame_floor(48), jobs_share(6), jobs_share(48, rounds=1), jobs_share(8, fuzz=300), memory()]


#: The rows of the full run by name, for --only.
ROWS = {"blame": lambda: blame_floor(48), "jobs6": lambda: jobs_share(6), "jobs48": lambda: jobs_share(48, rounds=1),
        "fuzz": lambda: jobs_share(8, fuzz=300), "memory": memory}


if __name__ == "__main__":
    assert tool("grade")
    start = time.perf_counter()
    if "--only-memory" in sys.argv:
        sizes = tuple(int(a) for a in sys.argv[sys.argv.index("--only-memory") + 1:]) or (50, 500, 5000)
        rows = [memory(sizes)]
    elif "--only" in sys.argv:  # e.g. --only blame,fuzz: some rows of the full run
        rows = [ROWS[name]() for name in sys.argv[sys.argv.index("--only") + 1].split(",")]
    else:
        rows = run(quick="--quick" in sys.argv, tiny="--tiny" in sys.argv)
    for r in rows:
        print(f"[{'ok' if r.ok else 'MISS'}] {r.name}: {r.shown()} (target {r.target})\n       {r.detail}")
    print(f"{time.perf_counter() - start:.1f} s")
