"""Symbolic loss expressions over the target ``y`` and the prediction ``fx``.

:class:`Expression` is an immutable tree with one canonical text form (PySR's
infix syntax), parsed safely (see :mod:`evomal_sr.grammar.parser`), and exported to
SymPy, LaTeX and JSON-ready dictionaries. This layer does not import torch.
"""

from __future__ import annotations

import random
import reprlib
from typing import Any

import numpy as np

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.nodes import CONST, OP, VAR, Node, replace_at, to_text
from evomal_sr.grammar.operators import OPERATORS, VARIABLES
from evomal_sr.grammar.parser import MAX_DEPTH, parse_tree
from evomal_sr.grammar.simplify import simplify_node

#: Operators used to splice ``op(y, fx)`` into a tree that lacks a variable.
REPAIR_OPERATORS = ("+", "-", "*", "aq")
#: Largest tree :meth:`Expression.from_dict` accepts.
MAX_NODES = 10_000


class Expression:
    """An immutable symbolic loss ``L(y, fx)``.

    Parameters
    ----------
    root : Node
        The tree; build it with :meth:`parse`, :meth:`from_dict` or the
        :class:`~evomal_sr.grammar.nodes.Node` constructors.

    Examples
    --------
    >>> from evomal_sr import Expression
    >>> e = Expression.parse("-(y * log(fx))")
    >>> str(e)
    '-(y * log(fx))'
    >>> e.complexity, e.depth, sorted(e.variables)
    (5, 4, ['fx', 'y'])
    >>> Expression.parse(str(e)) == e
    True
    """

    __slots__ = ("root", "_text")
    root: Node
    _text: str

    def __init__(self, root: Node):
        if not isinstance(root, Node):
            raise ExpressionError(f"Expression needs a Node, got {type(root).__name__}")
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "_text", to_text(root))

    def __setattr__(self, name, value):
        raise AttributeError("Expression is immutable")

    def __reduce__(self):  # copy and pickle through the canonical text, which round-trips exactly
        return (Expression.parse, (self._text,))

    # -- construction ------------------------------------------------------------
    @classmethod
    def parse(cls, text: str | Expression) -> Expression:
        """Parse PySR-style text such as ``"aq(fx, y)"`` or ``"(y * log(fx))"``.

        Raises
        ------
        ExpressionError
            Naming the offending token for anything outside the grammar.
        """
        if isinstance(text, Expression):
            return text
        return cls(parse_tree(text))

    @classmethod
    def from_dict(cls, data: Any) -> Expression:
        """Rebuild an expression from :meth:`to_dict` output (strictly validated)."""
        counter = [0]
        return cls(_node_from_dict(data, 0, counter))

    def to_dict(self) -> dict:
        """A JSON-ready nested dictionary of the tree."""
        return _node_to_dict(self.root)

    # -- identity ------------------------------------------------------------------
    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Expression.parse({self._text!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Expression) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self._text)

    # -- measures ----------------------------------------------------------------
    @property
    def complexity(self) -> int:
        """Node count, each operator weighted by its registry complexity."""
        return sum(OPERATORS[n.name].complexity if n.kind == OP else 1 for n in self.root.iter_preorder())

    @property
    def size(self) -> int:
        """Number of nodes (one more than the number of edges)."""
        return sum(1 for _ in self.root.iter_preorder())

    @property
    def depth(self) -> int:
        """Number of nodes on the longest root-to-leaf path (a leaf has depth 1)."""
        return _depth(self.root)

    @property
    def variables(self) -> frozenset[str]:
        """The variables the expression uses."""
        return frozenset(n.name for n in self.root.iter_preorder() if n.kind == VAR)

    def nodes(self) -> list[Node]:
        """All nodes in preorder (the order edge weights follow)."""
        return list(self.root.iter_preorder())

    # -- evaluation ----------------------------------------------------------------
    def evaluate_numpy(self, y, fx) -> np.ndarray:
        """Evaluate elementwise on NumPy arrays (no reduction)."""
        env = {"y": np.asarray(y, dtype=float), "fx": np.asarray(fx, dtype=float)}

        def walk(node: Node):
            if node.kind == VAR:
                return env[node.name]
            if node.kind == CONST:
                return np.float64(node.number)
            return OPERATORS[node.name].numpy(*(walk(c) for c in node.children))

        with np.errstate(all="ignore"):
            return np.broadcast_to(walk(self.root), np.broadcast(env["y"], env["fx"]).shape)

    # -- repair ----------------------------------------------------------------------
    def is_complete(self) -> bool:
        """Whether both ``y`` and ``fx`` appear (a loss must depend on both)."""
        return self.variables == frozenset(VARIABLES)

    def repair(self, rng: random.Random) -> Expression:
        """Return a tree using both variables (``self`` when it already does).

        A random leaf is replaced by ``op(y, fx)`` with ``op`` drawn from
        ``+ - * aq``, as in EvoMAL.

        Examples
        --------
        >>> import random
        >>> Expression.parse("log(fx)").repair(random.Random(0)).is_complete()
        True
        """
        if self.is_complete():
            return self
        leaves = [i for i, n in enumerate(self.root.iter_preorder()) if n.is_leaf]
        op = rng.choice(REPAIR_OPERATORS)
        splice = Node.apply(op, (Node.variable("y"), Node.variable("fx")))
        return Expression(replace_at(self.root, rng.choice(leaves), splice))

    # -- readable forms ----------------------------------------------------------------
    def simplified(self) -> Expression:
        """The same function with constant subtrees folded and redundant operators dropped.

        For display only: the simplified tree has other edges, so learned weights
        do not carry over. See :mod:`evomal_sr.grammar.simplify`.

        Examples
        --------
        >>> str(Expression.parse("tanh(-1.0) * abs(abs(y - fx))").simplified())
        '(-0.7615941559557649 * abs((y - fx)))'
        """
        return Expression(simplify_node(self.root))

    def format(self, digits: int | None = 4) -> str:
        """The text with constants shown to ``digits`` significant digits (``None``: exact).

        Examples
        --------
        >>> Expression.parse("(0.98765 * log(fx)) * y").format()
        '((0.9877 * log(fx)) * y)'
        """
        return to_text(self.root, digits=digits)

    # -- exports ---------------------------------------------------------------------
    def to_sympy(self, *, simplify: bool = False):
        """The SymPy form (protected ``log``/``sqrt`` shown without their 1e-7 guard)."""
        import sympy as sp

        symbols = {name: sp.Symbol(name, real=True) for name in VARIABLES}

        def walk(node: Node):
            if node.kind == VAR:
                return symbols[node.name]
            if node.kind == CONST:
                value = node.number
                return sp.Integer(int(value)) if value.is_integer() else sp.Float(value)
            return OPERATORS[node.name].sympy(sp, *(walk(c) for c in node.children))

        expr = walk(self.root)
        if simplify and self.size <= 60:  # simplify is slow on big trees
            expr = sp.simplify(expr)
        return expr

    def to_latex(self, *, simplify: bool = True) -> str:
        """LaTeX of the (simplified) SymPy form, with ``fx`` written ``f(x)``."""
        import sympy as sp

        expr = self.to_sympy(simplify=simplify)
        names = {s: ("f(x)" if s.name == "fx" else s.name) for s in expr.free_symbols}
        return sp.latex(expr, symbol_names=names)


def _depth(node: Node) -> int:
    return 1 + max((_depth(c) for c in node.children), default=0)


def _node_to_dict(node: Node) -> dict:
    if node.kind == VAR:
        return {"var": node.value}
    if node.kind == CONST:
        return {"const": node.value}
    return {"op": node.value, "args": [_node_to_dict(c) for c in node.children]}


def _node_from_dict(data: Any, depth: int, counter: list[int]) -> Node:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression tree is nested deeper than {MAX_DEPTH} levels")
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise ExpressionError(f"expression tree has more than {MAX_NODES} nodes")
    if not isinstance(data, dict) or len(data) not in (1, 2):
        raise ExpressionError(
            f"bad expression node {reprlib.repr(data)[:80]}: expected "
            "{'var': ...}, {'const': ...} or {'op': ..., 'args': [...]}"
        )
    if set(data) == {"var"}:
        return Node.variable(data["var"])
    if set(data) == {"const"}:
        return Node.constant(data["const"])
    if set(data) == {"op", "args"} and isinstance(data["args"], list) and isinstance(data["op"], str):
        children = tuple(_node_from_dict(a, depth + 1, counter) for a in data["args"])
        return Node.apply(data["op"], children)
    raise ExpressionError(f"bad expression node with keys {sorted(map(str, data))}")
