"""Immutable expression-tree nodes and their canonical text form.

A :class:`Node` is a variable (``y``/``fx``), a finite float constant, or an
operator from the registry applied to child nodes. Nodes compare and hash by
structure, so equal trees are equal objects for caching.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.operators import OPERATORS, VARIABLES, get_operator

VAR, CONST, OP = "var", "const", "op"


@dataclass(frozen=True, slots=True)
class Node:
    """One node of a loss expression tree.

    Build nodes with :meth:`variable`, :meth:`constant` and :meth:`apply`, which
    validate their arguments; ``apply("neg", (constant,))`` folds into a negative
    constant so that every tree has one canonical text form.
    """

    kind: str
    value: str | float  # a variable's or operator's name (str), or a constant (float)
    children: tuple[Node, ...] = ()

    @property
    def name(self) -> str:
        """The variable's or operator's name; a constant has none (``TypeError``)."""
        if isinstance(self.value, str):
            return self.value
        raise TypeError(f"a constant node ({self.value!r}) has no name")

    @property
    def number(self) -> float:
        """The constant's value; a variable or an operator has none (``TypeError``)."""
        if isinstance(self.value, float):
            return self.value
        raise TypeError(f"the {self.kind} node {self.value!r} is not a constant")

    @staticmethod
    def variable(name: str) -> Node:
        if name not in VARIABLES:
            raise ExpressionError(f"unknown variable {name!r}; use one of {', '.join(VARIABLES)}")
        return Node(VAR, name)

    @staticmethod
    def constant(value: float) -> Node:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"constant must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise ExpressionError(f"constant must be finite, got {value!r}")
        return Node(CONST, value + 0.0)  # +0.0 turns -0.0 into 0.0

    @staticmethod
    def apply(name: str, children: tuple[Node, ...]) -> Node:
        op = get_operator(name)
        children = tuple(children)
        if len(children) != op.arity:
            raise ExpressionError(f"{op.name} takes {op.arity} argument(s), got {len(children)}")
        if not all(isinstance(c, Node) for c in children):
            raise ExpressionError(f"arguments of {op.name} must be expression nodes")
        if op.name == "neg" and children[0].kind == CONST:
            return Node.constant(-children[0].number)
        return Node(OP, op.name, children)

    # -- structure -----------------------------------------------------------------
    def iter_preorder(self) -> Iterator[Node]:
        """Yield this node and its descendants, parents before children."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    @property
    def is_leaf(self) -> bool:
        return self.kind != OP

    def __str__(self) -> str:
        return to_text(self)


def format_constant(value: float, digits: int | None = None) -> str:
    """``repr(value)``, or ``value`` to ``digits`` significant digits, always readable as a float.

    Examples
    --------
    >>> format_constant(0.123456789, 4), format_constant(2.0, 4), format_constant(1.5e-7, 4)
    ('0.1235', '2.0', '1.5e-07')
    """
    if digits is None:
        return repr(value)
    text = f"{value:.{digits}g}"
    return text if any(c in text for c in ".en") else text + ".0"


def to_text(node: Node, *, julia: bool = False, digits: int | None = None) -> str:
    """Canonical PySR-style text: binary infix fully parenthesised, calls by name.

    With ``julia=True``, the text SymbolicRegression.jl parses: operators take
    their Julia names and unary minus becomes ``(-1.0 * a)`` (Julia's search has
    no negation operator). ``digits`` rounds constants for display (the text
    then no longer round-trips exactly).
    """
    if node.kind == VAR:
        return node.name
    if node.kind == CONST:
        return format_constant(node.number, digits)
    op = OPERATORS[node.name]
    args = [to_text(c, julia=julia, digits=digits) for c in node.children]
    if op.infix:
        return f"({args[0]} {op.infix} {args[1]})"
    if op.name == "neg":
        return f"(-1.0 * {args[0]})" if julia else f"-{args[0]}"
    return f"{op.julia_name if julia else op.name}({', '.join(args)})"


def replace_at(node: Node, index: int, new: Node) -> Node:
    """Return a copy of ``node`` with its ``index``-th preorder node replaced by ``new``."""
    if index == 0:
        return new
    offset = 1
    for position, child in enumerate(node.children):
        size = sum(1 for _ in child.iter_preorder())
        if index < offset + size:
            children = list(node.children)
            children[position] = replace_at(child, index - offset, new)
            return Node.apply(node.name, tuple(children))
        offset += size
    raise IndexError(f"node index {index} out of range")
