"""A correct engine whose import lasts as long as the attack next to it looks: a classmate whose engine
process is alive while the attacks look (tests/attacks/_peers.py's handshake with the test)."""

from _peers import stay_until_the_attacker_is_done
from _value import Value  # noqa: F401

stay_until_the_attacker_is_done()
