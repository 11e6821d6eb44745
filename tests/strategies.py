"""Hypothesis strategies for random loss-expression trees, built from the registry.

Reusable by any test module::

    from strategies import expressions

    @given(expressions(max_depth=5))
    def test_something(expr): ...

Trees are built with the validating :class:`~evomal_sr.grammar.nodes.Node` constructors,
so every drawn tree is canonical (``neg`` applied to a constant folds into a
negative constant). ``max_depth`` bounds the number of nodes on the longest
root-to-leaf path (a leaf has depth 1).
"""

from __future__ import annotations

import random
import sys

from hypothesis import strategies as st

from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import Node
from evomal_sr.grammar.operators import OPERATORS, VARIABLES

#: Every operator name in the registry, ``neg`` included.
ALL_OPERATORS: tuple[str, ...] = tuple(OPERATORS)
#: Constants worth hitting often: the search terminals, zero, and awkward magnitudes.
SPECIAL_CONSTANTS: tuple[float, ...] = (
    1.0,
    -1.0,
    0.0,
    0.5,
    -0.5,
    2.0,
    1e-7,
    -1e-7,
    1e-300,
    -1e-300,
    5e-324,
    1e300,
    -1e300,
    sys.float_info.max,
    -sys.float_info.max,
)


def constants(max_magnitude: float | None = None) -> st.SearchStrategy[float]:
    """Finite floats, negatives included.

    ``max_magnitude=None`` allows every finite double (subnormals up to
    ``±1.8e308``); a bound keeps numeric tests well conditioned.
    """
    if max_magnitude is None:
        special = SPECIAL_CONSTANTS
        floats = st.floats(allow_nan=False, allow_infinity=False)
    else:
        special = tuple(c for c in SPECIAL_CONSTANTS if abs(c) <= max_magnitude)
        floats = st.floats(min_value=-max_magnitude, max_value=max_magnitude, allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(special), floats)


def variables() -> st.SearchStrategy[Node]:
    """A variable leaf: ``y`` or ``fx``."""
    return st.sampled_from(VARIABLES).map(Node.variable)


def leaves(max_magnitude: float | None = None) -> st.SearchStrategy[Node]:
    """A variable or a constant leaf (variables drawn twice as often)."""
    return st.one_of(variables(), variables(), constants(max_magnitude).map(Node.constant))


def trees(
    max_depth: int = 4, *, operators=ALL_OPERATORS, max_magnitude: float | None = None
) -> st.SearchStrategy[Node]:
    """Random :class:`Node` trees of depth at most ``max_depth`` over ``operators``."""
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    ops = [OPERATORS[name] for name in operators]
    leaf = leaves(max_magnitude)

    def build(depth: int) -> st.SearchStrategy[Node]:
        if depth <= 1 or not ops:
            return leaf
        sub = build(depth - 1)
        inner = st.sampled_from(ops).flatmap(
            lambda op: st.tuples(*([sub] * op.arity)).map(lambda children, name=op.name: Node.apply(name, children))
        )
        # Operators twice as likely as leaves, so trees are not mostly single leaves.
        return st.one_of(leaf, inner, inner)

    return build(max_depth)


def expressions(
    max_depth: int = 4, *, operators=ALL_OPERATORS, max_magnitude: float | None = None, complete: bool = False
) -> st.SearchStrategy[Expression]:
    """Random :class:`Expression` objects.

    With ``complete=True`` every expression uses both ``y`` and ``fx`` (trees that
    lack one are repaired with a drawn seed, which may add one level of depth).
    """
    base = trees(max_depth, operators=operators, max_magnitude=max_magnitude).map(Expression)
    if not complete:
        return base
    return st.tuples(base, st.integers(0, 2**32 - 1)).map(lambda pair: pair[0].repair(random.Random(pair[1])))


def searchable_expressions(max_depth: int = 4, **kwargs) -> st.SearchStrategy[Expression]:
    """Expressions over the operators the genetic search may use (no ``neg``)."""
    names = tuple(n for n, op in OPERATORS.items() if op.searchable)
    return expressions(max_depth, operators=names, **kwargs)
