"""Readable forms of expressions: constant subtrees folded, redundant operators dropped.

Used for what people read (``pareto.csv``'s Equation column, the ``front``
table, SymPy and LaTeX exports), never for what is trained or saved: a
simplified tree computes the same function, but its edges (and so its learned
weights) differ from the original's. Constants are folded in float64 with the
operators' NumPy forms, the protected ones included.
"""

from __future__ import annotations

import math

import numpy as np

from evomal_sr.grammar.nodes import CONST, OP, Node
from evomal_sr.grammar.operators import OPERATORS

#: ``f(f(x)) == f(x)``.
_IDEMPOTENT = frozenset({"abs"})
#: ``f(neg(x)) == f(x)``.
_EVEN = frozenset({"abs", "square"})


def simplify_node(node: Node) -> Node:
    """``node`` with constant subtrees folded and ``abs(abs(x))``, ``abs(-x)``, ``--x`` reduced.

    Examples
    --------
    >>> from evomal_sr.grammar.parser import parse_tree
    >>> str(simplify_node(parse_tree("sqrt((1.0 + 1.0)) * abs(abs(fx - y))")))
    '(1.4142135623730951 * abs((fx - y)))'
    """
    if node.kind != OP:
        return node
    children = tuple(simplify_node(c) for c in node.children)
    if all(c.kind == CONST for c in children):
        with np.errstate(all="ignore"):
            value = float(OPERATORS[node.name].numpy(*(np.float64(c.number) for c in children)))
        if math.isfinite(value):
            return Node.constant(value)
    name, first = node.name, children[0]
    if name in _IDEMPOTENT and first.kind == OP and first.value == name:
        return first
    if name in _EVEN and first.kind == OP and first.value == "neg":
        return simplify_node(Node.apply(name, first.children))
    if name == "neg" and first.kind == OP and first.value == "neg":
        return first.children[0]
    if name == "neg" and _split_factor(first)[0] != 1.0:  # -(c * a) -> (-c * a)
        return _merge_factors((Node.constant(-1.0), first))
    if name == "*":
        return _merge_factors(children)
    return Node.apply(name, children)


def _split_factor(node: Node) -> tuple[float, Node | None]:
    """``node`` as ``coefficient * rest`` (``rest`` is ``None`` for a constant)."""
    if node.kind == CONST:
        return node.number, None
    if node.kind == OP and node.value == "*":
        a, b = node.children
        if a.kind == CONST:
            return a.number, b
        if b.kind == CONST:
            return b.number, a
    return 1.0, node


def _merge_factors(children: tuple[Node, ...]) -> Node:
    """The product of the two ``children``: ``(c1 * a) * (c2 * b)`` -> ``(c1*c2) * (a * b)``; ``1 * a`` -> ``a``."""
    (ca, ra), (cb, rb) = _split_factor(children[0]), _split_factor(children[1])
    coefficient = ca * cb
    if not math.isfinite(coefficient):
        return Node.apply("*", children)
    rest = ra if rb is None else rb if ra is None else Node.apply("*", (ra, rb))
    if rest is None:
        return Node.constant(coefficient)
    return rest if coefficient == 1.0 else Node.apply("*", (Node.constant(coefficient), rest))
