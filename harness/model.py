"""Graded results: what every reporter renders (verdicts -> report)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.judging.compare import STATUSES


@dataclass
class CaseResult:
    """One case's verdict for one engine."""

    id: str
    status: str
    score: float
    max_score: float
    message: str = ""
    duration_s: float = 0.0
    suite: str = ""
    name: str = ""
    description: str = ""
    tags: tuple = ()
    visibility: str = "visible"
    mismatches: list = field(default_factory=list)
    diagnosis: list = field(default_factory=list)   # likely culprits: kind, culprit, message, confidence, evidence
    graph: dict | None = None                       # a failing case's graph, for drawing
    shrunk: dict | None = None                      # fuzz cases: the minimal expression failing the same way


@dataclass
class EngineResult:
    """Every case's verdict for one engine."""

    engine: str
    source: str
    cases: list
    load_error: str = ""
    submission: str = ""    # the submission id: a --submissions child's name, else the engine's name
    fuzz: dict | None = None   # with --fuzz: seed, forms fuzzed, forms left out, minimal failures
    origin: str = ""        # where the graded engine was defined, e.g. "student.ipynb, cell 7: class Value"
    load_notes: list = field(default_factory=list)  # what loading skipped (cells, IPython syntax) or chose

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cases)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cases)

    @property
    def counts(self) -> dict:
        """Number of cases per status, every status present."""
        counts = dict.fromkeys(STATUSES, 0)
        for c in self.cases:
            counts[c.status] += 1
        return counts

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 100.0


@dataclass
class RunResult:
    """One grading run: every engine's results."""

    engines: list
    duration_s: float = 0.0
    shard: tuple | None = None  # (K, N) for a ``--shard K/N`` run

    @property
    def all_passed(self) -> bool:
        return all(c.status == "passed" for e in self.engines for c in e.cases)

    def labels(self) -> list[str]:
        """A short name per engine for reports: its submission id, plus the engine's name when
        one submission registered several engines."""
        subs = [e.submission or e.engine for e in self.engines]
        return [f"{s}/{e.engine}" if subs.count(s) > 1 else s for s, e in zip(subs, self.engines)]


@dataclass(frozen=True)
class ReportContext:
    """How a report is being shown."""

    color: bool = False
