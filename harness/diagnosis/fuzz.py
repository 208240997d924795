"""Randomized differential testing: random expression DAGs, engine against reference, shrunk on a mismatch.

generated expression -> parsed case -> program -> engine processes -> observations -> verdicts.

Hypothesis generates the expressions (trees of ops over inputs and plain
numbers, where an operand may also reuse an op built earlier, so nodes feed
several users) and shrinks a failing one to a minimal expression: few ops,
small integers.  Every number comes from an
engine process: the reference engine gives the expectations, and its traced
run also shows whether an expression stays in safe territory (away from
relu's kink, log's and division's poles, and huge values), so that a
correct engine never gets a false alarm.  The same seed gives the same
expressions for the same installed versions of the harness and Hypothesis,
however the harness is installed (Hypothesis's draws of constants from
local source files are turned off while our searches run).

Searches of different submissions run at the same time, each in its own
thread (Hypothesis runs tests from several threads since 6.136.9): no lock is
held across an engine's round trips.  A batch's corpus comes in parts, each
from its own search (``part_sizes``, ``part_seed``), so that the job slots
waiting for it generate it together; shrinking replays the search of the part
where a failure was recorded.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace

from harness.cases.expr import Expr, render
from harness.cases.loader import Assign, Case, Expect
from harness.diagnosis import graph as graphs
from harness.judging.compare import judge
from harness.model import FuzzSummary, MinimalFailure, MismatchKind, Status, Verdict
from harness.ops import BUILTIN
from harness.reporting.common import fmt
from harness.running import program as programs
from harness.running.observation import Observation
from harness.running.reference import REFERENCE_SPEC, trusted
from harness.running.runner import Limits, Session
from harness.running.shared import ReferenceCache

MAX_OPS = 8
FUZZ_TIMEOUT = 1.0          # seconds per expression (capped by --timeout); the reference needs microseconds
#: Seconds of generating (HARNESS_FUZZ_BUDGET overrides it); past it the report says how many ran.
RUN_BUDGET = float(os.environ.get("HARNESS_FUZZ_BUDGET") or 120.0)
SHRINK_BUDGET = 30.0        # seconds of new engine runs while shrinking
MAX_VALUE, MAX_GRAD = 1e3, 1e4
KINK, POLE = 1e-3, 1e-2     # distance kept from relu's kink, and from log's, 1/x's and x**-n's poles
UNARY = tuple(spec.name for spec in BUILTIN if spec.arity == 1)    # neg exp log tanh relu sigmoid
BINARY = tuple(spec.name for spec in BUILTIN if spec.arity == 2)   # add sub mul div pow
_INPUTS = [1, 2, -1, 3, -2, 0.5, -0.5, 1.5, -1.5, 0.25, 2.5, -3, 0.75, -0.75, 1.25]
_CONSTS = [2, 1, 3, -1, 0.5, -2, 1.5]
_EXPONENTS = [2, 3, -1, 0.5, -2, 1.5]
_NAMES = "abc"
_kinds_lock = threading.Lock()  # guards _KINDS (searches run in several threads)
#: A corpus of N expressions is generated in min(MAX_PARTS, N // PART_MIN) parts (at least one), each by
#: a search of its own, so that the job slots of a batch that wait for it generate it together.  The
#: parts depend only on N and the seed, never on --jobs.
PART_MIN, MAX_PARTS = 75, 8
NO_PLUGINS = "HYPOTHESIS_NO_PLUGINS"  # Hypothesis's switch for the hooks other packages register (``preload``)


@dataclass(frozen=True)
class Form:
    """An op with the kind of each operand: "node" or "const" (a plain Python number)."""

    op: str
    kinds: tuple

    def __str__(self) -> str:
        demo = render([["name", "xy"[i]] if k == "node" else ["const", 2] for i, k in enumerate(self.kinds)]
                      + [["op", self.op, len(self.kinds)]])
        return f"{self.op} ({demo})"


ALL_FORMS = tuple([Form(op, ("node",)) for op in UNARY]
                  + [Form(op, kinds) for op in BINARY for kinds in
                     (("node", "node"), ("node", "const"), ("const", "node")) if op != "pow" or "const" in kinds])


@dataclass(frozen=True)
class Expression:
    """A random DAG: input values, then ops over ("in", i), ("op", j) (an earlier op) or ("const", x)."""

    inputs: tuple
    ops: tuple  # ((op, operands), ...); the last op is the output


@dataclass
class Outcome:
    """One expression run against both engines."""

    case: Case | None
    program: programs.Program | None
    observation: Observation | None = None
    verdict: Verdict | None = None
    valid: bool = True
    key: str = ""          # the program, without its id: equal keys are the same expression

    @property
    def shrinkable(self) -> bool:
        """A failure worth shrinking: not a timeout, where every try would cost a whole timeout."""
        return bool(self.signature) and self.signature != "timeout"

    @property
    def signature(self) -> str | None:
        """The kind of failure, or None when the engine agreed (or lacked an op)."""
        if not self.valid or self.verdict is None or self.verdict.status in (Status.PASSED, Status.UNSUPPORTED):
            return None
        if self.verdict.status == Status.FAILED:
            return "value" if any(m.kind == MismatchKind.VALUE for m in self.verdict.mismatches) else "grad"
        if self.verdict.status == Status.ERROR and self.observation is not None and self.observation.error_type:
            return f"error {self.observation.error_type}"
        return self.verdict.status


@dataclass
class FuzzRun:
    """Every generated case with its outcome, the shrunk failures, and what was fuzzed."""

    outcomes: list = field(default_factory=list)
    minimal: dict = field(default_factory=dict)   # signature -> Outcome of the shrunk expression
    summary: FuzzSummary = field(default_factory=lambda: FuzzSummary(seed=0, requested=0))


class _Mismatch(Exception):
    """Raised inside the Hypothesis test; one subclass per kind of failure."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.signature)
        self.outcome = outcome


_KINDS: dict[str, type] = {}


def _mismatch_class(signature: str) -> type:
    """One class per kind of failure, the same in every thread (Hypothesis tells failures apart by type)."""
    with _kinds_lock:
        if signature not in _KINDS:
            _KINDS[signature] = type(f"Mismatch_{len(_KINDS)}", (_Mismatch,), {})
        return _KINDS[signature]


def to_case(expr: Expression, k: int) -> Case:
    """The case for an expression, without expectations: unused ops and inputs dropped, shared ops named."""
    last = len(expr.ops) - 1
    reach, stack = {last}, [last]
    uses: dict[int, int] = {}
    used_inputs: set[int] = set()
    while stack:
        for kind, x in expr.ops[stack.pop()][1]:
            if kind == "op":
                uses[x] = uses.get(x, 0) + 1
                if x not in reach:
                    reach.add(x)
                    stack.append(x)
            elif kind == "in":
                used_inputs.add(x)
    names = {i: _NAMES[n] for n, i in enumerate(sorted(used_inputs))}
    shared = {j: f"t{n + 1}" for n, j in enumerate(sorted(j for j in reach if uses.get(j, 0) > 1))}

    def code(j: int, top: bool) -> list:
        if j in shared and not top:
            return [["name", shared[j]]]
        op, operands = expr.ops[j]
        out: list = []
        for kind, x in operands:
            out += (code(x, False) if kind == "op" else [["name", names[x]]] if kind == "in"
                    else [["const", x]])
        return out + [["op", op, len(operands)]]

    def as_expr(c: list) -> Expr:
        return Expr(render(c), tuple(tuple(i) for i in c), frozenset(i[1] for i in c if i[0] == "name"),
                    frozenset(i[1] for i in c if i[0] == "op"))

    steps = tuple(Assign(name, as_expr(code(j, True))) for j, name in shared.items())
    inputs = {names[i]: expr.inputs[i] for i in sorted(used_inputs)}
    return Case(suite="fuzz", name=str(k), inputs=inputs, steps=steps, output=as_expr(code(last, True)),
                expect=Expect(grad={n: 0 for n in inputs}), backward=1, tags=("fuzz",), points=0,
                description=describe_parts(inputs, steps, code(last, True)))


def describe_parts(inputs: dict, steps, output_code) -> str:
    """'t1 = a * b; t1 + tanh(t1) at a=1, b=2'."""
    parts = [f"{s.name} = {s.expr.source}" for s in steps] + [render(output_code)]
    at = ", ".join(f"{n}={fmt(v)}" for n, v in inputs.items())
    return "; ".join(parts) + (f" at {at}" if at else "")


def op_count(case: Case) -> int:
    """How many ops the case applies."""
    return sum(1 for s in case.steps for i in s.expr.code if i[0] == "op") + sum(
        1 for i in case.output.code if i[0] == "op")


def safe(g: graphs.Graph, trace: dict) -> bool:
    """The reference's values stay away from kinks, poles and overflow (so rounding cannot decide a verdict)."""
    values, grads = trace["values"], trace["grads"]
    if len(values) != len(g.nodes):
        return False
    for v, cap in [(v, MAX_VALUE) for v in values] + [(d, MAX_GRAD) for d in grads]:
        if v is None or not math.isfinite(v) or abs(v) > cap:
            return False
    for node in g.nodes:
        if node.op == "leaf":
            continue
        xs = [values[x] if kind == "node" else x for kind, x in node.operands]
        if node.op == "relu" and abs(xs[0]) < KINK:
            return False
        if node.op == "log" and xs[0] < POLE:
            return False
        if node.op == "div" and abs(xs[1]) < POLE:
            return False
        if node.op == "pow":
            base, exponent = xs
            if (exponent != int(exponent) and base < POLE) or (exponent < 0 and abs(base) < POLE):
                return False
    return True


@dataclass(frozen=True)
class Corpus:
    """The expressions of one seed with the reference's answers: the same for every submission
    that supports the same forms (generating them is steered by the reference alone)."""

    outcomes: tuple             # valid Outcomes with expectations, no engine observation, in order
    invalid: tuple              # Outcomes of the expressions the reference left out (unsafe territory)
    rejected: int
    out_of_time: bool
    load_error: str = ""
    searches: tuple = ()        # (Hypothesis seed, size) of each part's search, in order
    part_of: tuple = ()         # the part each outcome comes from (its search replays it when shrinking)


class Fuzzer:
    """Runs expressions in the engine and the reference, each in a long-lived process
    (``engine`` None: the reference only, to make a corpus)."""

    def __init__(self, engine: Session | None, reference: Session, timeout: float):
        self.engine, self.reference, self.timeout = engine, reference, timeout
        self.cache: dict[str, Outcome] = {}
        self.live_runs = 0
        self.rejected = 0
        self.out_of_time = False
        self.shrink_cut = False

    def outcome(self, expr: Expression, k: int) -> Outcome:
        """Run one expression (or recall it): invalid when the reference leaves safe territory."""
        case = to_case(expr, k)
        prog = programs.build(case)
        key = json.dumps({**prog.to_wire(), "id": ""}, sort_keys=True)
        if key in self.cache:
            cached = self.cache[key]
            assert cached.case is not None and cached.program is not None
            return Outcome(replace(cached.case, name=str(k)), replace(cached.program, id=f"fuzz::{k}"),
                           cached.observation, cached.verdict, cached.valid, key)
        self.live_runs += 1
        ref = self.reference.run([replace(prog, trace=graphs.SHAPE_CAP)], [self.timeout])[0]
        if ref.status != "ok" or ref.trace is None or not safe(graphs.build(prog), ref.trace):
            result = Outcome(case, prog, valid=False, key=key)
        else:
            case = replace(case, expect=Expect(value=ref.value, grad={n: ref.grads[n] for n in case.inputs}))
            if self.engine is None:
                result = Outcome(case, prog, key=key)
            else:
                obs = self.engine.run([prog], [self.timeout])[0]
                result = Outcome(case, prog, obs, judge(case, obs), key=key)
        self.cache[key] = result
        return result

    @property
    def stopped(self) -> bool:
        """An engine failed to load (e.g. grading was interrupted)."""
        return bool((self.engine is not None and self.engine.load_error) or self.reference.load_error)


def supported_forms(engine: Session, timeout: float) -> tuple[list[Form], list[str]]:
    """The op forms the engine handles (tried once each), and why the others are left out."""
    probes = []
    for form in ALL_FORMS:
        values = iter((1.5, 0.75))
        operands = tuple(("in", n) if kind == "node" else ("const", 2) for n, kind in enumerate(form.kinds))
        inputs = tuple(next(values) for _ in form.kinds)
        probes.append(Expression(inputs, ((form.op, operands),)))
    forms, skipped = [], []
    for form, expr in zip(ALL_FORMS, probes):
        case = to_case(expr, 0)
        obs = engine.run([programs.build(case)], [timeout])[0]
        if obs.status == "ok":
            forms.append(form)
        elif obs.status == "unsupported":
            skipped.append(f"{form}: unsupported")
        else:
            skipped.append(f"{form}: {obs.error_type or obs.status}")
    return forms, skipped


def strategy(forms: list[Form]):
    """Hypothesis strategy for expressions over ``forms``: trees whose nodes may reuse earlier ops.

    Every op feeds the output (no dead code), and choice 0 is always the
    simplest (an input, the first form, the smallest number), so a failing
    expression shrinks to few ops and small integers.
    """
    from hypothesis import strategies as st

    @st.composite
    def expressions(draw):
        n_inputs = draw(st.integers(2, len(_NAMES)))
        values: dict[int, float] = {}
        ops: list = []
        started = [0]  # ops begun, so nested ones cannot pass MAX_OPS

        def operand(depth: int, pos: int):
            kind = draw(st.integers(0, 3))  # 0: an input, 1: reuse an earlier op, 2 or 3: a new op
            if kind >= 2 and started[0] < MAX_OPS:
                return new_op(depth + 1)
            if kind == 1 and ops:
                return ("op", len(ops) - 1 - draw(st.integers(0, len(ops) - 1)))
            i = (draw(st.integers(0, n_inputs - 1)) + pos) % n_inputs
            if i not in values:
                values[i] = draw(st.sampled_from(_INPUTS))
            return ("in", i)

        def new_op(depth: int):
            started[0] += 1
            form = draw(st.sampled_from(forms))
            operands = []
            for pos, kind in enumerate(form.kinds):
                if kind == "const":
                    operands.append(("const", draw(st.sampled_from(_EXPONENTS if form.op == "pow" else _CONSTS))))
                else:
                    operands.append(operand(depth, pos))
            ops.append((form.op, tuple(operands)))
            return ("op", len(ops) - 1)

        new_op(0)
        return Expression(tuple(values.get(i, 0) for i in range(n_inputs)), tuple(ops))

    return expressions()


def run(spec: str, select: str | None, count: int, seed: int, limits: Limits,
        reference: str = REFERENCE_SPEC, shared: ReferenceCache | None = None) -> FuzzRun:
    """Generate ``count`` expressions from ``seed``, run them in both engines, shrink the failures.

    The expressions and the reference's answers (the corpus) come from ``shared``, the batch's
    reference work: generated once per seed and set of supported forms, by the reference alone.
    The engine runs them all in one go; only shrinking, which the engine's own answers steer,
    searches again.  Nothing here holds a lock across engine runs, so submissions fuzz and shrink in
    parallel (with ``--jobs N``, N at a time).
    """
    shared = shared if shared is not None else ReferenceCache(enabled=False)
    timeout = min(limits.timeout, FUZZ_TIMEOUT)
    out = FuzzRun(summary=FuzzSummary(seed=seed, requested=count))
    summary = out.summary
    # the reference's process: one the batch keeps (given back at the end), else one of its own
    ref_session = (shared.kept.borrow(reference, trusted(limits)) if shared.kept is not None
                   else Session(reference, trusted(limits)))
    with Session(spec, limits, select) as eng, ref_session as ref:
        ref.spawn()  # the reference process (unless the batch's is loaded already) loads during the probes
        forms, skipped = supported_forms(eng, timeout)
        summary.forms, summary.skipped = tuple(str(f) for f in forms), tuple(skipped)
        if eng.load_error or not forms:
            summary.generated = 0
            summary.stopped = "the engine failed to load" if eng.load_error else "the engine supports none of the ops"
            return out
        corpus = _shared_corpus(("fuzz", reference, tuple(forms), count, seed, timeout),
                                lambda size, seeded: _corpus(ref, forms, size, seeded, timeout, shared,
                                                             RUN_BUDGET * size / count),
                                count, seed, shared)
        if corpus.load_error:
            summary.generated = 0
            summary.stopped = f"the reference engine failed to load: {corpus.load_error}"
            return out
        observations = eng.run([o.program for o in corpus.outcomes], [timeout] * len(corpus.outcomes))
        fuzzer = Fuzzer(eng, ref, timeout)
        outcomes = [replace(o, observation=obs, verdict=judge(o.case, obs))
                     for o, obs in zip(corpus.outcomes, observations)]
        fuzzer.cache.update({o.key: o for o in outcomes})
        fuzzer.cache.update({o.key: o for o in corpus.invalid})
        out.outcomes = outcomes
        summary.generated = len(outcomes)
        summary.rejected = corpus.rejected
        if corpus.out_of_time:
            summary.stopped = f"generating stopped after {RUN_BUDGET:g} s"
        if any(o.shrinkable for o in outcomes) and not eng.load_error:
            with _home():
                for part, (part_seed, size) in enumerate(corpus.searches):  # the parts with a new kind of failure
                    kinds = {o.signature for o, p in zip(outcomes, corpus.part_of) if p == part and o.shrinkable}
                    if kinds - set(out.minimal):
                        for sig, found in _search(strategy(forms), size, part_seed, fuzzer, record=None).items():
                            out.minimal.setdefault(sig, found)
            if fuzzer.shrink_cut:
                cut = f"shrinking stopped after {SHRINK_BUDGET:g} s (the expressions may not be minimal)"
                summary.stopped = "; ".join(filter(None, [summary.stopped, cut]))
        summary.minimal = tuple(MinimalFailure(sig, o.case.description, op_count(o.case))
                                for sig, o in out.minimal.items())
    return out


_import_lock = threading.Lock()
_imported = False


def preload() -> None:
    """Import Hypothesis now, once per process (job processes forked after this, ``harness.running.jobs``,
    share the import instead of each paying for it), without its third-party plugins.

    Hypothesis runs, when first imported, every function registered for its "hypothesis" entry point,
    unless $HYPOTHESIS_NO_PLUGINS is set: other packages' hooks for their users' tests (trio's imports
    trio and pytest, about half of the import's 0.6 s of CPU).  Our searches use none of them, so the
    first import here sets it meanwhile.  Every search of ours imports Hypothesis through this.
    """
    global _imported
    if _imported:
        return
    with _import_lock:
        if not _imported:
            had = os.environ.get(NO_PLUGINS)
            os.environ[NO_PLUGINS] = "1"
            try:
                import hypothesis.strategies  # noqa: F401
            finally:
                if had is None:
                    os.environ.pop(NO_PLUGINS, None)
                else:
                    os.environ[NO_PLUGINS] = had
            _imported = True


def part_sizes(count: int) -> list[int]:
    """How many expressions each part of a corpus of ``count`` records."""
    parts = max(1, min(MAX_PARTS, count // PART_MIN))
    return [count // parts + (i < count % parts) for i in range(parts)]


def part_seed(seed: int, part: int) -> int | str:
    """The Hypothesis seed of a part's search: ``seed`` itself for the first (a str seeds Hypothesis's
    Random through SHA-512, the same in every process)."""
    return seed if part == 0 else f"{seed}/{part}"


def recorded_sizes(count: int) -> list[int]:
    """How many expressions each part of a corpus of ``count`` records: its share (``part_sizes``) and, for
    every part but the first, spares, since some of its expressions repeat earlier parts' (the simple ones
    every search tries): part p records (p + 4) / 40 more, a little more than repeat (5 to 7 of 75 in
    part 1 at --fuzz 150, 14 to 22 in parts 1 to 3 at --fuzz 300, about 130 of 1,000 in parts 1 to 7
    at --fuzz 1000).  Without spares nearly every corpus needed a further, topping-up part, which one
    job slot generated while the others waited for it."""
    return [size + (p > 0) * -(-size * (p + 4) // 40) for p, size in enumerate(part_sizes(count))]


def _shared_corpus(key: tuple, generate, count: int, seed: int, shared: ReferenceCache) -> Corpus:
    """The corpus of ``count`` expressions: its parts from ``shared`` (each generated once per batch, by
    whichever job slots ask for it first), joined in order without repeats, topped up by further parts
    when repeats still left it short.  ``generate(size, seed)`` records one part."""
    sizes = recorded_sizes(count)
    # The largest parts (the last ones: they have the most spares) are claimed first, so that the slot that
    # asks first, having started first, takes them, and the slots finish their parts about together.
    parts = shared.values([key + (p,) for p in reversed(range(len(sizes)))],
                          lambda k: generate(sizes[k[-1]], part_seed(seed, k[-1])))[::-1]
    searches = [(part_seed(seed, p), size) for p, size in enumerate(sizes)]
    outcomes: list[Outcome] = []
    part_of: list[int] = []
    seen: set[str] = set()

    def join(part: Corpus, p: int) -> int:
        before = len(outcomes)
        for o in part.outcomes:
            if o.key not in seen and len(outcomes) < count:
                seen.add(o.key)
                k = len(outcomes) + 1
                assert o.case is not None and o.program is not None
                outcomes.append(replace(o, case=replace(o.case, name=str(k)),
                                        program=replace(o.program, id=f"fuzz::{k}")))
                part_of.append(p)
        return len(outcomes) - before

    for p, part in enumerate(parts):
        join(part, p)
    while len(outcomes) < count and not any(part.out_of_time or part.load_error for part in parts):
        p, size = len(parts), count - len(outcomes) + 10  # repeats across parts: one more part for the rest
        more = shared.value(key + (p,), functools.partial(generate, size, part_seed(seed, p)))
        assert isinstance(more, Corpus)
        parts.append(more)
        searches.append((part_seed(seed, p), size))
        if not join(more, p):
            break
    return Corpus(tuple(outcomes), tuple(o for part in parts for o in part.invalid),
                  sum(part.rejected for part in parts), any(part.out_of_time for part in parts),
                  next((part.load_error for part in parts if part.load_error), ""), tuple(searches), tuple(part_of))


def _corpus(ref: Session, forms: list[Form], count: int, seed: int | str, timeout: float,
            shared: ReferenceCache, budget: float) -> Corpus:
    """The recording search of ``seed`` over ``forms``, against the reference engine alone (``ref``),
    for at most ``budget`` seconds (a part gets its share of RUN_BUDGET)."""
    with _home():
        fuzzer = Fuzzer(None, ref, timeout)
        recorded: list[Outcome] = []
        _search(strategy(forms), count, seed, fuzzer, record=recorded, budget=budget)
        invalid = tuple(o for o in fuzzer.cache.values() if not o.valid)
        shared.count(fuzzer.live_runs)
        return Corpus(tuple(recorded), invalid, fuzzer.rejected, fuzzer.out_of_time, ref.load_error,
                      ((seed, count),), (0,) * len(recorded))


def _search(strat, count: int, seed: int | str, fuzzer: Fuzzer, record: list | None,
            budget: float = RUN_BUDGET) -> dict:
    """One Hypothesis search from ``seed``.

    Recording: collect ``count`` different valid expressions and never fail.
    Otherwise: fail on each kind of mismatch and shrink it.  Both runs see the
    same outcomes until the first mismatch, so Hypothesis generates the same
    expressions up to there and the second run finds what the first recorded.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, reporting, settings
    from hypothesis import seed as seeded
    from hypothesis.errors import HypothesisException

    shrinking_since: list[float | None] = [None]
    seen: set[str] = set()
    started = time.monotonic()

    @settings(max_examples=2 * count + 20, database=None, deadline=None, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=True,
              phases=[Phase.generate] if record is not None else [Phase.generate, Phase.shrink])
    @seeded(seed)
    @given(strat)
    def check(expr):
        if fuzzer.stopped:  # e.g. grading was interrupted
            if record is not None:
                raise _Enough
            return
        if record is not None and (len(record) >= count or fuzzer.out_of_time):
            raise _Enough  # also on Hypothesis's replay of the example that stopped the search
        if record is not None and time.monotonic() - started > budget:
            fuzzer.out_of_time = True
            raise _Enough
        if record is None and shrinking_since[0] and time.monotonic() - shrinking_since[0] > SHRINK_BUDGET:
            if not _known(fuzzer, expr):
                fuzzer.shrink_cut = True
                return  # out of shrinking time: unseen expressions count as agreeing
        outcome = fuzzer.outcome(expr, len(record) + 1 if record is not None else 0)
        if not outcome.valid:
            if record is not None:
                fuzzer.rejected += 1
            reject()
        if record is not None:
            if outcome.key not in seen:  # the same expression again is not recorded twice
                seen.add(outcome.key)
                record.append(outcome)
                if len(record) >= count:
                    raise _Enough
        elif outcome.shrinkable and outcome.signature is not None:
            if shrinking_since[0] is None:
                shrinking_since[0] = time.monotonic()
            raise _mismatch_class(outcome.signature)(outcome)

    found: dict = {}
    try:
        with reporting.with_reporter(lambda *_: None):
            check()
    except _Enough:
        pass
    except _Mismatch as e:
        found[e.outcome.signature] = e.outcome
    except BaseExceptionGroup as group:
        for leaf in _leaves(group):
            if isinstance(leaf, _Mismatch):
                found.setdefault(leaf.outcome.signature, leaf.outcome)
    except HypothesisException:
        pass  # e.g. no valid expression could be generated; the report shows what ran
    return found


class _Enough(Exception):
    """Stops the recording search once it has its expressions."""


def _known(fuzzer: Fuzzer, expr: Expression) -> bool:
    prog = programs.build(to_case(expr, 0))
    return json.dumps({**prog.to_wire(), "id": ""}, sort_keys=True) in fuzzer.cache


def _leaves(group: BaseExceptionGroup):
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        else:
            yield e


class _home:
    """Hypothesis's global state while searches run: its storage in a temporary folder, not in the user's
    working directory, and no constants collected from local source files (``_swap_local_constants``).

    Both are global: the first search to enter sets them, the last to leave restores them (searches of
    several submissions overlap).
    """

    _lock = threading.Lock()
    _users = 0
    _tmp: str | None = None
    _constants = None  # Hypothesis's own function, while ours stands in for it

    def __enter__(self):
        preload()  # (without its plugins, when it is first imported here)
        from hypothesis.configuration import set_hypothesis_home_dir

        with _home._lock:
            if _home._users == 0 and not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
                _home._tmp = tempfile.mkdtemp(prefix="grade-hypothesis-")
                set_hypothesis_home_dir(_home._tmp)
            if _home._users == 0:
                _home._constants = _swap_local_constants(None)
            _home._users += 1
        return self

    def __exit__(self, *exc):
        from hypothesis.configuration import set_hypothesis_home_dir

        with _home._lock:
            _home._users -= 1
            if _home._users == 0 and _home._constants is not None:
                _swap_local_constants(_home._constants)
                _home._constants = None
            if _home._users == 0 and _home._tmp:
                set_hypothesis_home_dir(None)
                shutil.rmtree(_home._tmp, ignore_errors=True)
                _home._tmp = None


def _swap_local_constants(replacement):
    """Put ``replacement`` (None: a function giving no constants) in place of Hypothesis's collector of
    constants from local source files, and return what was there (None if this Hypothesis has none).

    Since 6.131 Hypothesis mixes into its draws, now and then, the numbers written in the source of every
    "local" module loaded (not in site-packages): for ``grade`` that is the harness itself when it is
    installed from a checkout.  A seed's expressions would then depend on how the harness is installed
    and on its source text, and the scan costs every process about a second of CPU.  Ours gives none.
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        return None
    current = getattr(providers, "_get_local_constants", None)
    if current is None:
        return None
    if replacement is None:
        empty = Constants()
        replacement = lambda: empty  # noqa: E731
    providers._get_local_constants = replacement
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if cache is not None and hasattr(cache, "cache"):
        cache.cache.clear()  # choices computed with the other function's constants
    return current
