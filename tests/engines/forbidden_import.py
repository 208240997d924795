"""Hostile: "submits" the reference engine by importing it and re-exporting its names.

The whole module is ``from reference_engine import *`` (which brings
``Tensor``, ``_add``, ..., ``_sigmoid`` through ``reference_engine.__all__``),
so it looks like a perfect notebook-style engine.
Expected verdict: every case ``error`` with a message that a submission may
not import the reference engine.  If any case passes, the harness let the
submission use the reference engine.
"""

from reference_engine import *  # noqa: F401,F403
from reference_engine import __all__  # noqa: F401
