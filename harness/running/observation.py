"""What came back from an engine process for one program: an observation, validated.

No process code here: the judge reads observations without importing the process supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import wire as protocol
from harness.model import EngineStatus

if TYPE_CHECKING:
    from harness.running.program import Program

@dataclass
class Observation:
    """What came back for one program: the engine's results, or how it failed."""

    id: str
    status: EngineStatus
    value: float | None = None
    grads: dict[str, float | None] = field(default_factory=dict)
    structure: dict[str, list[float]] | None = None   # "args", "local_derivatives" of the output
    trace: dict[str, Any] | None = None  # traced programs: "values", "grads", "locals" per node, "created"
    message: str = ""
    error_type: str = ""
    phase: str = ""
    where: str = ""
    duration_s: float = 0.0
    located: tuple[str, int] | None = None   # programs with ``locate``: where the engine implements the op
    not_run: bool = False                     # a TIMEOUT that never ran: the submission's budget was used up

    @classmethod
    def from_wire(cls, reply: object, program: Program) -> Observation:
        """Validate an untrusted reply; anything malformed becomes an error."""
        try:
            if not isinstance(reply, dict) or reply.get("id") != program.id:
                raise ValueError("reply for the wrong case")
            status = reply["status"]
            if status not in (EngineStatus.OK, EngineStatus.ERROR, EngineStatus.UNSUPPORTED):
                raise ValueError(f"unknown status {status!r:.50}")
            status = EngineStatus(status)
            obs = cls(id=program.id, status=status, duration_s=_num(reply.get("duration_s", 0.0)))
            for key in ("message", "error_type", "phase", "where"):
                setattr(obs, key, _text(reply.get(key, ""), protocol.MAX_TEXT))
            if program.locate:
                obs.located = _located(reply.get("located"))
            if status == EngineStatus.OK:
                obs.value = _num(reply["value"])
                grads = reply["grads"]
                obs.grads = {n: (None if grads[n] is None else _num(grads[n])) for n in program.grads}
                if program.structure:
                    s = reply.get("structure")
                    obs.structure = None if s is None else {
                        k: [_num(x) for x in s[k][:protocol.MAX_OPERANDS]] for k in ("args", "local_derivatives")}
                if program.trace:
                    obs.trace = _trace(reply.get("trace"), program.trace)
            return obs
        except (KeyError, TypeError, ValueError) as e:
            return cls(id=program.id, status=EngineStatus.CRASHED,
                       message=f"the engine process sent a malformed reply ({e})")


def _trace(t: Any, cap: int) -> dict[str, Any]:
    """A validated trace: lists of at most ``cap`` numbers (None where the engine had none)."""
    if not isinstance(t, dict) or type(t.get("created")) is not int:
        raise ValueError("malformed trace")
    n = len(t["values"])
    if n > cap or any(len(t[k]) != n for k in ("grads", "locals")):
        raise ValueError("malformed trace")

    def opt(x: object) -> float | None:
        return None if x is None else _num(x)

    return {"created": t["created"], "values": [opt(x) for x in t["values"]],
            "grads": [opt(x) for x in t["grads"]],
            "locals": [None if d is None else [_num(x) for x in d[:protocol.MAX_LOCALS]] for d in t["locals"]]}


def _located(x: object) -> tuple[str, int] | None:
    """A validated place in the submission's source: (file name, line), or None."""
    if x is None:
        return None
    if not isinstance(x, dict) or type(x.get("line")) is not int or not 0 < x["line"] < 10_000_000:
        raise ValueError("malformed location")
    file = _text(x.get("file"), 200)
    return (file, x["line"]) if file else None


def _text(x: object, limit: int) -> str:
    """An untrusted text field: a string (anything else is malformed), cut to ``limit`` characters."""
    if not isinstance(x, str):
        raise ValueError(f"not a text: {type(x).__name__}")
    return protocol.clip(x, limit)


def _num(x: object) -> float:
    if type(x) not in (int, float):
        raise ValueError(f"not a number: {x!r:.50}")
    return float(x)  # type: ignore[arg-type]
