"""Attack 5, at run time: engine names, messages and error types of megabytes.  Expected: each is cut to its
cap (docs/security.md) before it reaches the grader's memory, and every case still gets its verdict."""

from _attack_hostile_engine import AddMul

from harness import hookimpl

HUGE = "y" * (8 << 20)


class Huge(AddMul):
    name = "n" * (1 << 20)

    def apply(self, op, *operands):
        if op == "mul":
            raise type("E" * 100_000, (Exception,), {})(HUGE)
        return super().apply(op, *operands)


@hookimpl
def register_engines(register):
    register(Huge())
    for _ in range(1000):
        register(AddMul())
