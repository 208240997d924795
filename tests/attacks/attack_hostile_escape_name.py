"""Attack 11: an engine whose name is terminal escapes (set the window title, clear the screen), with more
in the messages of its errors.  Expected: no report, in any format, carries an escape or control character
raw."""

from _attack_hostile_engine import AddMul

from harness import hookimpl

ESCAPES = "\x1b]0;pwned\x07\x1b[2J"


class Escaping(AddMul):
    name = ESCAPES

    def apply(self, op, *operands):
        if op == "mul" and any(getattr(x, "value", x) == 3 for x in operands):
            raise ValueError(f"{ESCAPES}\x1b[31mred\r\x08\x00")
        return super().apply(op, *operands)


@hookimpl
def register_engines(register):
    register(Escaping())
