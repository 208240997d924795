"""A course plugin for the tests: a `softplus` op and a `count` report format."""

import math

from harness import hookimpl
from harness import OpSpec


@hookimpl
def register_ops(register):
    register(OpSpec("softplus", 1, forward=lambda x: math.log1p(math.exp(x)),
                    derivatives=lambda x: (1 / (1 + math.exp(-x)),)))


@hookimpl
def register_reporters(register):
    register("count", lambda run, context: f"{sum(len(e.cases) for e in run.engines)} cases\n")
