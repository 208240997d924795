"""An engine that reports grade's environment through its name: the value of GRADE_SECRET_TOKEN (a CI
secret in grade's environment), and of GRADE_TEST_VISIBLE (passed on by HARNESS_ENGINE_ENV).  Expected:
the secret never reaches the engine process, in any sandbox mode."""

import os

from _attack_hostile_engine import AddMul

from harness import hookimpl


class Leaky(AddMul):
    name = (f"secret={os.environ.get('GRADE_SECRET_TOKEN', 'absent')} "
            f"visible={os.environ.get('GRADE_TEST_VISIBLE', 'absent')} home={os.environ.get('HOME') == os.getcwd()}")


@hookimpl
def register_engines(register):
    register(Leaky())
