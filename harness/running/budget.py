"""What one submission may cost the grader: a wall-clock budget for running its cases, and a cap on restarts.

Each case has its timeout, and a case that times out or kills its engine
process costs only itself: a fresh process carries on.  Without a cap, a
submission whose process dies on every case would cost every case's timeout
plus a restart (a fresh import) per case.  ``Budget`` caps the whole: once a
submission has spent ``--submission-timeout`` seconds running its cases (all of
its graded engines, its hidden cases included), or its engine processes were
restarted ``--max-restarts`` times, its remaining cases are not run: each is a
``timeout`` that says why, and the batch goes on with the next submission.  A
case (or an import) running when the budget ends is cut short at that moment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: The default budget: the submission's import plus every case's timeout, but never more than this.
DEFAULT_CAP_S = 600.0
#: Engine-process restarts (after a crash or a timeout) per submission, by default.
DEFAULT_RESTARTS = 50


def default_seconds(load_timeout: float, timeouts: Sequence[float], engines: int = 1) -> float:
    """The budget when ``--submission-timeout`` is not given: what every case may take, capped."""
    return min(DEFAULT_CAP_S, max(1, engines) * (load_timeout + sum(timeouts)))


@dataclass
class Budget:
    """The time and restarts one submission has left (``seconds`` or ``restarts`` None: no cap)."""

    seconds: float | None
    restarts: int | None = DEFAULT_RESTARTS
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    restarted: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        """Seconds left (inf without a cap; never below 0)."""
        if self.seconds is None:
            return math.inf
        return max(0.0, self.seconds - (self.clock() - self.started))

    def cap(self, timeout: float) -> float:
        """``timeout``, shortened so that it ends with the budget."""
        return min(timeout, self.remaining())

    def restart(self) -> None:
        """An engine process died (a crash or a timeout) and a fresh one is needed."""
        self.restarted += 1

    def exhausted(self) -> str:
        """Why no more of the submission's cases may run, or '' while they may."""
        if self.seconds is not None and self.remaining() <= 0:
            return (f"the submission used up its time budget of {self.seconds:g} s for running its cases "
                    "(--submission-timeout)")
        if self.restarts is not None and self.restarted > self.restarts:
            return (f"its engine process was restarted {self.restarts} times, after crashes or timeouts "
                    "(--max-restarts)")
        return ""
