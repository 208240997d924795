"""Attack 10, from inside: read every program this engine process was sent (the worker's batch, found by
walking up the stack) and every leaf it built, and put their numbers in the error message of each sum, where a
visible case shows them to the student.  Expected: the visible cases' messages hold only visible cases' numbers,
because hidden cases run after them, in another engine process."""

import sys

from _attack_hostile_engine import AddMul

from harness import hookimpl

SEEN = []


def _batches():
    frame = sys._getframe(1)
    while frame is not None:
        batch = frame.f_locals.get("batch")
        if isinstance(batch, list):
            yield from batch
        frame = frame.f_back


class Exfiltrate(AddMul):
    name = "exfiltrate"

    def leaf(self, value):
        SEEN.append(value)
        return super().leaf(value)

    def apply(self, op, *operands):
        if op == "add":
            sent = [v for program in _batches() if isinstance(program, dict)
                    for _, v in program.get("inputs", [])]
            raise ValueError(f"seen {SEEN} sent {sent}")
        return super().apply(op, *operands)


@hookimpl
def register_engines(register):
    register(Exfiltrate())
