"""Run every benchmark and print each measured ratio against its target.

    python benchmarks/run.py               # everything (a few minutes)
    python benchmarks/run.py --only engine,fuzz
    python benchmarks/run.py --markdown    # the table for benchmarks/README.md

Needs the `bench` extra (pip install -e '.[bench]') for micrograd and the
scaling plot.  The exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, load_average  # noqa: E402

SUITES = {
    "turnaround": "turnaround",
    "overhead": "overhead",
    "engine": "engine_speed",
    "batches": "batches",
    "fuzz": "fuzz",
    "sandbox": "sandbox",
    "sharing": "batch_sharing",
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(SUITES)}")
    p.add_argument("--markdown", action="store_true", help="print the results as a Markdown table")
    args = p.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SUITES)
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(SUITES)}")
    print(f"Python {platform.python_version()} on {os.cpu_count()} CPUs; load average before: {load_average()}",
          flush=True)
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy; wall-time ratios (turnaround, --jobs speedup) will be noisy",
              flush=True)
    rows: list[Row] = []
    start = time.perf_counter()
    for name in chosen:
        module = __import__(SUITES[name])
        t0 = time.perf_counter()
        got = module.run()
        for row in got:
            print(f"[{'ok' if row.ok else 'MISS' if row.ok is False else '--'}] {row.name}: {row.shown()} "
                  f"(target {row.target})\n       {row.detail}", flush=True)
        print(f"       ({name}: {time.perf_counter() - t0:.0f} s; load average now {load_average()})", flush=True)
        rows.extend(got)
    print(f"load average after: {load_average()}; {time.perf_counter() - start:.0f} s in all")
    if args.markdown:
        print()
        print("| measure | result | target | met |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r.name} | {r.shown()} ({r.detail}) | {r.target} | {'yes' if r.ok else 'no'} |")
    missed = [r for r in rows if r.ok is False]
    print(f"\n{len(rows) - len(missed)}/{len(rows)} targets met" + (
        "" if not missed else ": missed " + "; ".join(r.name for r in missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
