"""The typed result model: what judging, diagnosis and fuzzing produce and what every reporter renders.

This module sits at the bottom of the import graph: it imports only the
standard library, so a reporter (a third-party one included) never pulls in
the process supervisor.  Records hold facts (statuses, numbers, names); the
reporters compose them into text once (``harness.reporting.common``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EngineStatus(StrEnum):
    """What an engine process reported for one program (an observation's status)."""

    OK = "ok"
    ERROR = "error"               # the engine raised
    UNSUPPORTED = "unsupported"   # the engine lacks an op
    TIMEOUT = "timeout"           # no answer in time: the process was killed
    CRASHED = "crashed"           # the process died, broke the protocol or failed to load


class Status(StrEnum):
    """A case's verdict (the ``status`` of the JSON report)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"


#: Every verdict status, in report order.
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
#: The fixed leading columns of the CSV gradebook (the case ids follow).
CSV_COLUMNS: tuple[str, ...] = ("submission", "engine", "source", "score", "max_score", "percent", *STATUSES,
                                "load_error")


class MismatchKind(StrEnum):
    """Which quantity of a case differs from its expectation."""

    VALUE = "value"
    GRAD = "grad"
    ARGS = "args"
    LOCAL_DERIVATIVES = "local_derivatives"


@dataclass(frozen=True)
class Mismatch:
    """One quantity that is not within tolerance.

    ``name`` is the input or step whose gradient differs (kind GRAD); ``index`` is the operand
    position (kinds ARGS and LOCAL_DERIVATIVES), or None when the number of operands differs.
    ``got`` None means the engine gave no number (no gradient).
    """

    kind: MismatchKind
    expected: float
    got: float | None
    name: str = ""
    index: int | None = None

    @property
    def quantity(self) -> str:
        """The quantity's name as reports show it: ``value``, ``grad of b``, ``args[0]``, ``number of args``."""
        if self.kind == MismatchKind.GRAD:
            return f"grad of {self.name}"
        if self.kind == MismatchKind.VALUE:
            return "value"
        return f"number of {self.kind}" if self.index is None else f"{self.kind}[{self.index}]"


@dataclass(frozen=True)
class Verdict:
    """The judge's outcome of one case for one engine.

    ``message`` is the judge's own words when mismatches do not say it all (an error, a
    timeout, a note); ``hint`` its quick guess at the cause; ``show_case`` whether the case's
    inputs and expression help to read it.
    """

    status: Status
    message: str = ""
    mismatches: tuple[Mismatch, ...] = ()
    hint: str = ""
    show_case: bool = False


class Confidence(StrEnum):
    """How sure a diagnosis is."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: Strongest first.
CONFIDENCE_RANK = {Confidence.HIGH: 0, Confidence.MEDIUM: 1, Confidence.LOW: 2}


class DiagnosisKind(StrEnum):
    """How a diagnosis was found."""

    OP = "op"                   # an op run alone (a probe) disagrees with the reference
    DIVERGENCE = "divergence"   # node by node, the first value or grad that differs
    PATTERN = "pattern"         # across the run's cases
    CASE = "case"               # the case's own expectations disagree with the reference (a suspect case)


@dataclass(frozen=True)
class Where:
    """A place in the submission's source."""

    file: str
    line: int


@dataclass(frozen=True)
class Diagnosis:
    """A likely culprit, in words, with how sure the harness is and why.

    ``culprit`` is an op name, or accumulation | recursion | exponential | stale_grads | reset |
    backward | forward.  ``from_shrunk``: found on the case's shrunk expression (fuzz cases).
    """

    kind: DiagnosisKind
    culprit: str
    message: str
    confidence: Confidence
    evidence: tuple[str, ...] = ()
    where: Where | None = None
    from_shrunk: bool = False


@dataclass(frozen=True)
class PictureNode:
    """One box of a failing case's graph: an input, an op or a constant (op ``const``)."""

    id: str
    op: str
    label: str
    value: float | None = None
    expected_grad: float | None = None
    got_grad: float | None = None
    divergent: bool = False


@dataclass(frozen=True)
class PictureEdge:
    """Operand ``source`` feeds operand slot ``position`` (from 0) of ``target``."""

    source: str
    target: str
    position: int


@dataclass(frozen=True)
class GraphPicture:
    """A failing case's graph, for drawing; ``drawn`` False (with ``why``) when it is not drawn."""

    drawn: bool
    why: str = ""
    nodes: tuple[PictureNode, ...] = ()
    edges: tuple[PictureEdge, ...] = ()
    output: str = ""
    first_divergent: str | None = None   # the first node, from the output down, whose grad is wrong
    culprit: str | None = None           # the op node that handed it the wrong grad (the highlight)
    traced: bool = False                 # node by node from traced runs (else only the named grads)


@dataclass(frozen=True)
class Shrunk:
    """A fuzz case's minimal expression that fails the same way, with its verdict and blame."""

    expression: str
    ops: int
    status: Status
    message: str = ""
    mismatches: tuple[Mismatch, ...] = ()
    diagnosis: tuple[Diagnosis, ...] = ()


@dataclass(frozen=True)
class MinimalFailure:
    """One kind of fuzz failure (``value``, ``grad``, ``error ValueError``, ...) shrunk to an expression."""

    failure: str
    expression: str
    ops: int


@dataclass
class FuzzSummary:
    """What ``--fuzz`` did for one engine."""

    seed: int
    requested: int
    forms: tuple[str, ...] = ()          # the op forms fuzzed, e.g. "sub (x - y)"
    skipped: tuple[str, ...] = ()        # the forms left out, with why
    generated: int = 0
    rejected: int = 0                    # expressions outside safe territory
    stopped: str = ""                    # why generating or shrinking stopped early
    minimal: tuple[MinimalFailure, ...] = ()


@dataclass(frozen=True)
class CaseContext:
    """What a case asked, for reading its verdict: inputs, output expression, backward() calls, tolerance."""

    inputs: dict[str, float]
    output: str
    backward: int
    tolerance_abs: float
    tolerance_rel: float


@dataclass
class CaseResult:
    """One case's verdict for one engine, with what diagnosis found."""

    id: str
    status: Status
    score: float
    max_score: float
    message: str = ""                   # the verdict's own words (see Verdict)
    duration_s: float = 0.0
    suite: str = ""
    name: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    visibility: str = "visible"
    mismatches: list[Mismatch] = field(default_factory=list)
    hint: str = ""                      # the judge's quick guess; blame replaces it
    context: CaseContext | None = None  # shown under the message when set
    diagnosis: list[Diagnosis] = field(default_factory=list)
    graph: GraphPicture | None = None
    shrunk: Shrunk | None = None


@dataclass
class EngineResult:
    """Every case's verdict for one engine."""

    engine: str
    source: str
    cases: list[CaseResult]
    load_error: str = ""
    submission: str = ""    # the submission id: a --submissions child's name, else the engine's name
    fuzz: FuzzSummary | None = None
    ignored_engines: tuple[str, ...] = ()  # engines the submission registers that were not graded (--engine-name)
    origin: str = ""        # where the graded engine was defined, e.g. "student.ipynb, cell 7: class Value"
    load_notes: list[str] = field(default_factory=list)  # what loading skipped (cells, IPython syntax) or chose
    duration_s: float = 0.0  # seconds spent grading this engine: loading, cases, blame and fuzz (--timings reads it)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cases)

    @property
    def score(self) -> float:
        """The points of the passed cases, never more than ``max_score`` nor less than 0."""
        return min(max(0.0, sum(c.score for c in self.cases)), self.max_score)

    @property
    def counts(self) -> dict[str, int]:
        """Number of cases per status, every status present."""
        counts = dict.fromkeys(STATUSES, 0)
        for c in self.cases:
            counts[c.status] += 1
        return counts

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 100.0


@dataclass(frozen=True, slots=True)
class EngineSummary:
    """What a batch keeps in memory of one graded engine while its whole result waits on disk
    (``LazyEngines``): its names, points and counts, and its case ids (a tuple shared by the engines
    that have the same ones).  ``tally`` holds the number of cases per status in ``STATUSES`` order."""

    engine: str
    source: str
    submission: str
    score: float
    max_score: float
    tally: tuple[int, ...]
    case_ids: tuple[str, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Number of cases per status, every status present (as ``EngineResult.counts``)."""
        return dict(zip(STATUSES, self.tally))

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 100.0

    @classmethod
    def of(cls, e: EngineResult, case_ids: tuple[str, ...] | None = None) -> EngineSummary:
        """``e``'s summary (``case_ids``: its case ids, when the caller shares one tuple among engines)."""
        return cls(e.engine, e.source, e.submission, e.score, e.max_score, tuple(e.counts.values()),
                   case_ids if case_ids is not None else tuple(c.id for c in e.cases))


class LazyEngines:
    """A batch's engine results, in order, each loaded only when it is read (iterating loads one at a
    time); only their summaries stay in memory.  ``grade`` hands reporters one as ``RunResult.engines``,
    so that a batch of any size never holds every case message at once.  A subclass gives ``summaries``
    and ``load``; ``harness.running.spool`` has the one ``grade`` uses."""

    @property
    def summaries(self) -> list[EngineSummary]:
        """Every engine's summary, in order."""
        raise NotImplementedError

    def load(self, index: int) -> EngineResult:
        """The ``index``-th engine's whole result (0 <= index < len), a fresh copy at each call."""
        raise NotImplementedError

    def piece(self, index: int, kind: str) -> str | None:
        """The ``index``-th engine's piece of a report of ``kind`` (e.g. "json"), when one was made as it
        was graded and its result is unchanged since; None: the reporter makes it."""
        return None

    def __len__(self) -> int:
        return len(self.summaries)

    def __getitem__(self, index: int) -> EngineResult:
        n = len(self)
        if not -n <= index < n:
            raise IndexError("engine index out of range")
        return self.load(index % n)

    def __iter__(self) -> _Reading:
        return _Reading(self)


class _Reading:
    """An iterator over a ``LazyEngines`` that loads each engine when it is reached."""

    def __init__(self, engines: LazyEngines):
        self.engines, self.next = engines, 0

    def __iter__(self) -> _Reading:
        return self

    def __next__(self) -> EngineResult:
        if self.next >= len(self.engines):
            raise StopIteration
        self.next += 1
        return self.engines.load(self.next - 1)


@dataclass
class RunResult:
    """One grading run: every engine's results, and what they were graded with.

    ``engines`` is a list, or in a graded batch a ``LazyEngines`` that loads each engine when it is read.
    """

    engines: list[EngineResult] | LazyEngines
    duration_s: float = 0.0
    shard: tuple[int, int] | None = None  # (K, N) for a ``--shard K/N`` run
    shard_weights: str = ""               # a --shard run split by --timings: the weights' fingerprint
    harness_version: str = ""
    cases_fingerprint: str = ""           # sha256 of the graded case set (harness.cases.fingerprint)
    sandbox: str = "none"                 # the sandbox the engine processes ran in: bwrap | uid | none
    sandbox_warning: str = ""             # why they were not sandboxed, when --sandbox auto fell back to none
    cgroup: str = ""                      # the cgroup limits engine processes got, e.g. "v2: pids.max=64, ..."
                                          # or "none (rlimits only: why)"; "" when not recorded
    audience: str = "instructor"          # who the run is shown to: instructor | student (audience.redact)

    def summaries(self) -> list[EngineSummary]:
        """Every engine's summary, in order, without loading a ``LazyEngines``' results."""
        if isinstance(self.engines, LazyEngines):
            return self.engines.summaries
        return [EngineSummary.of(e) for e in self.engines]

    @property
    def all_passed(self) -> bool:
        return all(e.counts[Status.PASSED] == len(e.case_ids) for e in self.summaries())

    @property
    def score(self) -> float:
        """The run's total: per submission, its engines' points capped at one engine's maximum."""
        per: dict[tuple[str, str], list[EngineSummary]] = {}
        for e in self.summaries():
            per.setdefault((e.submission or e.engine, e.source), []).append(e)
        return sum(min(sum(e.score for e in es), max(e.max_score for e in es)) for es in per.values())

    def labels(self) -> list[str]:
        """A short name per engine for reports: its submission id, plus the engine's name when
        one submission registered several engines."""
        light = self.summaries()
        subs = [e.submission or e.engine for e in light]
        seen: set[str] = set()
        several: set[str] = set()
        for s in subs:
            (several if s in seen else seen).add(s)
        return [f"{s}/{e.engine}" if s in several else s for s, e in zip(subs, light, strict=True)]


@dataclass(frozen=True)
class ReportContext:
    """How a report is being shown."""

    color: bool = False
