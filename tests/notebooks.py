"""Fixture notebooks, built with nbformat: the tutorial's style and micrograd's style.

Each is a small copy of what students hand in: cells that import packages that are
not installed (graphviz, torch, matplotlib), IPython magics and ``!pip`` lines,
self-test asserts that fail, a class redefined over several cells, and a training
loop that leaves a marker file when it runs (it must not, by default).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat import v4

ROOT = Path(__file__).resolve().parent.parent
SEED_ENGINE = ROOT / "tests" / "engines" / "micrograd_full.py"
NOTEBOOK_ENGINE = ROOT / "tests" / "engines" / "notebook_full.py"

OLD_VALUE = '''class Value:
    """A first try: forward only."""

    def __init__(self, data, _children=(), _op="", label=""):
        self.data = data
        self._prev = set(_children)
        self.label = label

    def __add__(self, other):
        return Value(self.data + other.data, (self, other), "+")

    def __mul__(self, other):
        return Value(self.data * other.data, (self, other), "*")
'''

DRAWING = '''from graphviz import Digraph

def trace(root):
    nodes, edges = set(), set()
    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)
    build(root)
    return nodes, edges

def draw_dot(root):
    dot = Digraph(format="svg", graph_attr={"rankdir": "LR"})
    return dot
'''


def micrograd_cells(marker: str) -> list:
    """Karpathy's lecture notebook, abridged; ``marker`` is written by the training loop if it runs."""
    return [
        v4.new_markdown_cell("# micrograd, step by step"),
        v4.new_code_cell("import math\nimport numpy as np\nimport matplotlib.pyplot as plt\n%matplotlib inline"),
        v4.new_code_cell("def f(x):\n    return 3*x**2 - 4*x + 5\nf(3.0)\nxs = np.arange(-5, 5, 0.25)\n"
                         "ys = f(xs)\nplt.plot(xs, ys)"),
        v4.new_code_cell("!pip install graphviz\n%pip install torch"),
        v4.new_code_cell(OLD_VALUE),
        v4.new_code_cell(DRAWING),
        v4.new_code_cell("a = Value(2.0, label='a')\nb = Value(-3.0, label='b')\ne = a * b\ndraw_dot(e)"),
        v4.new_markdown_cell("## The whole Value, with backward"),
        v4.new_code_cell(SEED_ENGINE.read_text()),
        v4.new_code_cell("import torch\nx1 = torch.Tensor([2.0]).double()\nx1.requires_grad = True"),
        v4.new_code_cell("assert Value(2.0).data == 3.0, 'a self-test that fails'"),
        v4.new_code_cell("import random\n\nclass Neuron:\n    def __init__(self, nin):\n"
                         "        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]\n"
                         "        self.b = Value(0.0)\n\n    def __call__(self, x):\n"
                         "        return sum((wi * xi for wi, xi in zip(self.w, x)), self.b).tanh()\n\n"
                         "n = Neuron(3)"),
        v4.new_code_cell(f"for k in range(10000):\n    open({marker!r}, 'a').write('trained\\n')\n"
                         "    out = n([2.0, 3.0, -1.0])\n    out.backward()\n    break\n"
                         "print('done training')"),
        v4.new_code_cell("%%time\nlosses = [1.0, 0.5]"),
        v4.new_code_cell("%%bash\necho this is not Python"),
    ]


def tutorial_cells(seed_asserts: bool = True) -> list:
    """The tutorial notebook's style: Tensor, _add/_sub/_mul, a dfs cell, and its assert cells."""
    text = NOTEBOOK_ENGINE.read_text()
    body = text.split('"""', 2)[2] if text.startswith('"""') else text
    cells = [v4.new_markdown_cell("Tutorial: scalar autograd"),
             v4.new_code_cell("from typing import Optional"),
             v4.new_code_cell(body),
             v4.new_code_cell("Tensor(5)")]
    if seed_asserts:
        cells += [
            v4.new_code_cell("# Unit Test\nadd_tensor = _add(Tensor(1), Tensor(2))\nassert add_tensor.value == 3"),
            v4.new_code_cell("a = Tensor(1)\nb = Tensor(2)\nc = Tensor(3)\nL = _add(a, _mul(b, c))\n"
                             "L.backward()\nassert a.derivative.value == 1\nassert b.derivative.value == 3"),
            v4.new_code_cell("assert _mul(Tensor(2), Tensor(3)).value == 7, 'this self-test is wrong'"),
        ]
    return cells


def with_outputs(cells: list) -> list:
    """The cells as a notebook that was run: execution counts and an output on each code cell."""
    for n, cell in enumerate(cells, 1):
        if cell.cell_type == "code":
            cell.execution_count = n
            cell.outputs = [v4.new_output("stream", name="stdout", text=f"output of cell {n}\n"),
                            v4.new_output("execute_result", data={"text/plain": "Tensor(5)"}, execution_count=n)]
    return cells


def write(path: Path, cells: list) -> Path:
    """A .ipynb at ``path`` holding ``cells``."""
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                               "display_name": "Python 3"}})
    nbformat.write(nb, str(path))
    return path


def as_nbconvert_script(cells: list) -> str:
    """What ``jupyter nbconvert --to script`` makes of ``cells``: In[ ] markers, get_ipython() calls."""
    out = ["#!/usr/bin/env python", "# coding: utf-8", ""]
    for n, cell in enumerate(cells, 1):
        if cell.cell_type == "markdown":
            out += [""] + [f"# {line}" for line in cell.source.splitlines()] + [""]
            continue
        out += ["", f"# In[{n}]:", "", ""]
        for line in cell.source.splitlines():
            m = re.match(r"^(\s*)%(\w+)\s*(.*)$", line)
            s = re.match(r"^(\s*)!(.*)$", line)
            if cell.source.startswith("%%"):
                magic, _, rest = cell.source[2:].partition("\n")
                out.append(f"get_ipython().run_cell_magic({magic!r}, '', {rest!r})")
                break
            if m:
                out.append(f"{m.group(1)}get_ipython().run_line_magic({m.group(2)!r}, {m.group(3)!r})")
            elif s:
                out.append(f"{s.group(1)}get_ipython().system({s.group(2)!r})")
            else:
                out.append(line)
        out.append("")
    return "\n".join(out) + "\n"


def as_colab_script(cells: list, comment_shell: bool = False) -> str:
    """What Colab's "Download .py" makes of ``cells``: markdown as strings, magics commented, !lines as-is."""
    out = ['# -*- coding: utf-8 -*-', '"""student.ipynb', '', 'Automatically generated by Colab.', '',
           'Original file is located at', '    https://colab.research.google.com/drive/1abc', '"""', '']
    for cell in cells:
        if cell.cell_type == "markdown":
            out += ['"""' + cell.source + '"""', '']
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("%") or (comment_shell and line.lstrip().startswith("!")):
                out.append("# " + line)
            else:
                out.append(line)
        out.append("")
    return "\n".join(out) + "\n"
