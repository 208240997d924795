"""Target 3: the reference engine against Karpathy's micrograd, side by side in one process.

Both engines build the same scalar MLP (micrograd.nn's structure: each neuron
is sum(w_i * x_i) + b, then relu; the same weights and inputs) and run forward
and backward on it.  Time per graph node, median over interleaved rounds.
The 10**6-node chain runs in a fresh process per engine for a clean peak memory.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import subprocess
import sys
import time

from common import ROOT, Row, clean_env

sys.path.insert(0, str(ROOT))

LAYERS = [8, 16, 16, 1]   # inputs, hidden, hidden, output
BATCH = 16                # input vectors per forward pass (one graph over all of them)


def mlp_params(seed: int = 3) -> list:
    """Weights and biases per layer: [[(w..., b) per neuron] per layer]."""
    rng = random.Random(seed)
    return [[([rng.uniform(-1, 1) for _ in range(n_in)], rng.uniform(-1, 1)) for _ in range(n_out)]
            for n_in, n_out in zip(LAYERS, LAYERS[1:])]


def inputs(seed: int = 4) -> list:
    rng = random.Random(seed)
    return [[rng.uniform(-2, 2) for _ in range(LAYERS[0])] for _ in range(BATCH)]


def forward(node, params, xs):
    """Sum over the batch of the MLP's output, built from ``node`` (the engine's leaf class)."""
    layers = [[([node(w) for w in ws], node(b)) for ws, b in layer] for layer in params]
    total = node(0.0)
    for x in xs:
        act = [node(v) for v in x]
        for i, layer in enumerate(layers):
            out = []
            for ws, b in layer:
                s = sum((wi * xi for wi, xi in zip(ws, act)), b)
                out.append(s.relu() if i < len(layers) - 1 else s)
            act = out
        total = total + act[0]
    return total


def count_nodes(root, children) -> int:
    seen, stack = {id(root)}, [root]
    while stack:
        for c in children(stack.pop()):
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return len(seen)


def engines():
    from micrograd.engine import Value

    from reference_engine import Tensor
    return {"reference": (Tensor, lambda n: n.args), "micrograd": (Value, lambda n: n._prev)}


def time_mlp(rounds: int = 31, collector: bool = False) -> dict:
    """engine -> {'forward': [s per node], 'backward': [...], 'total': [...]}, rounds interleaved.

    CPU time of this process (what other processes on a shared machine do barely shows).  By
    default the cyclic garbage collector is off during the timed part: it would charge micrograd,
    whose nodes form reference cycles, for collections that have nothing to do with autograd.
    ``collector=True`` measures with it on, as a program normally runs.
    """
    params, xs = mlp_params(), inputs()
    found = engines()
    nodes = {name: count_nodes(forward(cls, params, xs), kids) for name, (cls, kids) in found.items()}
    assert len(set(nodes.values())) == 1, f"the two graphs differ: {nodes}"
    result = {name: {"forward": [], "backward": [], "total": []} for name in found}
    try:
        for _ in range(rounds):
            for name, (cls, _) in found.items():
                gc.collect()
                if not collector:
                    gc.disable()
                t0 = time.process_time()
                out = forward(cls, params, xs)
                t1 = time.process_time()
                out.backward()
                t2 = time.process_time()
                gc.enable()
                n = nodes[name]
                result[name]["forward"].append((t1 - t0) / n)
                result[name]["backward"].append((t2 - t1) / n)
                result[name]["total"].append((t2 - t0) / n)
                del out
    finally:
        gc.enable()
    result["nodes"] = nodes["reference"]
    return result


def speedups(t: dict) -> dict:
    """micrograd's time over the reference engine's, per phase: medians of the per-round ratios."""
    return {phase: statistics.median(m / r for m, r in zip(t["micrograd"][phase], t["reference"][phase]))
            for phase in ("forward", "backward", "total")}


CHAIN = 10**6
_CHAIN_SCRIPT = """
import gc, json, resource, sys, time
sys.path.insert(0, {root!r})
n = {n}
if not {gc_on}:
    gc.disable()
if {engine!r} == "reference":
    from reference_engine import Tensor as Node
else:
    from micrograd.engine import Value as Node
t0 = time.perf_counter()
x = Node(1.0)
y = x
for _ in range(n):
    y = y * 1.0
t1 = time.perf_counter()
try:
    y.backward()
    error = ""
except RecursionError as e:
    error = "RecursionError"
t2 = time.perf_counter()
grad = getattr(x, "grad", None)
if grad is None and getattr(x, "derivative", None) is not None:
    grad = x.derivative.value
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"forward": t1 - t0, "backward": t2 - t1, "peak_mb": peak, "error": error, "grad": grad}}))
"""


def chain(engine: str, n: int = CHAIN, gc_on: bool = True) -> dict:
    """Forward and backward through an n-op chain y = y * 1.0, in a fresh process."""
    script = _CHAIN_SCRIPT.format(root=str(ROOT), n=n, engine=engine, gc_on=gc_on)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=clean_env())
    if proc.returncode:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout)


def run(rounds: int = 31) -> list[Row]:
    t = time_mlp(rounds)
    x = speedups(t)
    with_gc = speedups(time_mlp(max(5, rounds // 3), collector=True))
    ns = {name: statistics.median(t[name]["total"]) * 1e9 for name in ("reference", "micrograd")}
    rows = [Row(f"reference engine vs micrograd: forward+backward per node (MLP {LAYERS}, {t['nodes']:,} nodes)",
                x["total"], "x faster", ">= 1.5x", x["total"] >= 1.5,
                f"{ns['reference']:.0f} ns/node vs {ns['micrograd']:.0f} ns/node; forward {x['forward']:.2f}x, "
                f"backward {x['backward']:.2f}x (medians of {rounds} interleaved rounds, cyclic GC off); "
                f"{with_gc['total']:.1f}x with the GC on")]
    ref, ref_nogc, mg = chain("reference"), chain("reference", gc_on=False), chain("micrograd")
    ok = not ref.get("error") and ref.get("grad") == 1.0 and ref_nogc.get("grad") == 1.0
    total = ref.get("forward", 0) + ref.get("backward", 0)
    rows.append(Row("reference engine: 10^6-op chain (y = y * 1.0) forward+backward", total, "s", "runs", ok,
                    f"peak RSS {ref.get('peak_mb', 0):.0f} MB; forward {ref.get('forward', 0):.2f} s, backward "
                    f"{ref.get('backward', 0):.2f} s ({ref_nogc.get('forward', 0) + ref_nogc.get('backward', 0):.2f} s "
                    "with the cyclic GC off); micrograd: "
                    + (f"fails with {mg['error']}" if mg.get("error") else
                       f"{mg['forward'] + mg['backward']:.2f} s, peak RSS {mg['peak_mb']:.0f} MB")))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
