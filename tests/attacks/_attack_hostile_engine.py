"""A correct engine for ``add`` and ``mul`` only (other ops are ``Unsupported``), shared by the attack_hostile_
fixtures in this folder: each attack changes how it is registered, never what it computes."""

from harness import Unsupported


class Node:
    def __init__(self, value, parents=()):
        self.value, self.parents, self.grad = float(value), parents, 0.0


class AddMul:
    """Plain reverse mode; a second backward() adds the same gradients again."""

    name = "addmul"

    def leaf(self, value):
        return Node(value)

    def apply(self, op, *operands):
        if op not in ("add", "mul"):
            raise Unsupported(f"this engine has no {op}")
        a, b = (x if isinstance(x, Node) else Node(x) for x in operands)
        if op == "add":
            return Node(a.value + b.value, ((a, 1.0), (b, 1.0)))
        return Node(a.value * b.value, ((a, b.value), (b, a.value)))

    def backward(self, node):
        order, seen, stack = [], set(), [(node, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
            elif id(n) not in seen:
                seen.add(id(n))
                stack.append((n, True))
                stack.extend((p, False) for p, _ in n.parents)
        fresh = {id(node): 1.0}
        for n in reversed(order):
            for p, local in n.parents:
                fresh[id(p)] = fresh.get(id(p), 0.0) + local * fresh.get(id(n), 0.0)
        for n in order:
            n.grad += fresh.get(id(n), 0.0)

    def value(self, node):
        return node.value

    def grad(self, node):
        return node.grad
