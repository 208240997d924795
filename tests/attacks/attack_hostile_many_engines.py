"""Attack 1: one correct engine registered 50 times (named copy0 ... copy49), to be graded 50 times and
score 50 x the maximum.  Expected: only copy0 is graded (or the engines named with --engine-name), the report
says the others were ignored, and no score exceeds its maximum."""

from _attack_hostile_engine import AddMul

from harness import hookimpl


@hookimpl
def register_engines(register):
    for i in range(50):
        engine = AddMul()
        engine.name = f"copy{i}"
        register(engine)
