"""Shared helpers: run commands side by side, interleaved, and take medians of ratios."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console script of this environment (grade, pytest), else the one on PATH."""
    here = BIN / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def clean_env(**extra) -> dict:
    """The environment a user has: bytecode caching on, so start-up is measured warm."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")}
    env.update(extra)
    return env


def wall(argv: list, cwd=None, env=None, check_codes=(0, 1)) -> float:
    """Seconds one command takes, start to exit."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env or clean_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - start
    if proc.returncode not in check_codes:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return took


def side_by_side(commands: dict, repeats: int, warmup: int = 1, **kw) -> dict:
    """name -> list of wall times, the commands run in turn, round after round."""
    for _ in range(warmup):
        for argv in commands.values():
            wall(argv, **kw)
    times: dict = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            times[name].append(wall(argv, **kw))
    return times


def median_ratio(num: list, den: list) -> float:
    """Median of the round-by-round ratios: robust to a machine that speeds up or slows down."""
    return statistics.median(a / b for a, b in zip(num, den))


def median(xs) -> float:
    return statistics.median(xs)


@dataclass
class Row:
    """One measured quantity against its target."""

    name: str
    value: float
    unit: str
    target: str
    ok: bool | None   # None: reported, no target
    detail: str = ""

    def shown(self) -> str:
        v = f"{self.value:.3g}" if abs(self.value) < 1000 else f"{self.value:,.0f}"
        return f"{v} {self.unit}".strip()


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
