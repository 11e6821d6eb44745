"""The operator registry: every primitive a loss expression may use.

One :class:`Operator` entry holds everything the package needs to know about a
primitive: its arity and complexity, how it prints, and its torch, NumPy, SymPy
and Julia definitions. Adding an operator is adding one entry to
:data:`OPERATORS`; the parser, the meta-loss compiler, the GP primitive set and
the PySR engine all read from here.

The protected operators are total on the reals (EvoMAL's convention):

* ``aq(a, b) = a / sqrt(1 + b^2)``, the analytic quotient;
* ``log(a) = log(max(|a|, 1e-7))``;
* ``sqrt(a) = sqrt(max(|a|, 1e-7))``;
* ``exp(a) = exp(min(a, 20))`` (``extended`` and ``robust`` sets);
* ``pow(a, b) = exp(min(clip(b, -4, 4) * log(max(|a|, 1e-7)), 20))``, i.e.
  ``|a|^b`` with the exponent clipped to ``[-4, 4]``, ``log``'s guard and
  ``exp``'s cap (``robust`` set);
* ``huber(a) = min(|a|, 1)^2 / 2 + max(|a| - 1, 0)``, the Huber function with
  threshold 1 (``robust`` set; total without protection).

Operator sets (:data:`OPERATOR_SETS`, the ``operators`` setting of a search):
``paper`` is EvoMAL's grammar; ``extended`` adds ``exp``, with which the
search can write a power with a learnable exponent, ``exp(w * log(fx)) =
fx^w`` (generalised cross-entropy needs one), or a softmax-free margin;
``robust`` adds ``exp``, ``pow`` and ``huber`` so that the known robust losses
are one or two nodes deep: generalised cross-entropy ``y * (1 - pow(fx, q)) / q``,
Huber ``huber(fx - y)`` (threshold ``d``: ``d^2 * huber((fx - y) / d)``, which
the edge weights reach), ``|r|^p`` residual powers (symmetric cross-entropy is
cross-entropy plus a multiple of ``abs(fx - y)``, in every set). Every operator
parses whatever the set; the set only limits what the search may place in a tree.

Torch definitions use tensor methods only, so this module (and the expression
layer above it) never imports torch. ``|a|`` is written ``a * a.sign()``: the
same values and gradient as ``abs``, but its second derivative (needed by the
unrolled local search) avoids a slow decomposition of ``abs``'s double backward.

Examples
--------
>>> from evomal_sr.grammar.operators import get_operator
>>> op = get_operator("aq")
>>> op.arity, op.infix
(2, None)
>>> float(op.numpy(3.0, 0.0))
3.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evomal_sr.errors import ExpressionError

#: Lower bound on ``|x|`` inside the protected ``log`` and ``sqrt``.
PROTECTION_EPS = 1e-7
#: Upper bound on the argument of the protected ``exp`` (``exp(20)`` is about 4.9e8).
EXP_CAP = 20.0
#: Bound on ``|b|``, the exponent of the protected ``pow(a, b)``.
POW_CAP = 4.0
#: Operator set name -> the groups of operators it holds (:attr:`Operator.group`).
OPERATOR_SETS: dict[str, tuple[str, ...]] = {
    "paper": ("paper",),
    "extended": ("paper", "extended"),
    "robust": ("paper", "extended", "robust"),
}


@dataclass(frozen=True)
class Operator:
    """One primitive of the loss grammar.

    Parameters
    ----------
    name : str
        Canonical name, as printed in function form (``aq(a, b)``) and used by GP.
    arity : int
        Number of arguments (1 or 2).
    torch : callable
        Definition on tensors (tensor methods only).
    numpy : callable
        Definition on NumPy arrays.
    sympy : callable
        ``sympy(sp, *args)`` building the SymPy form from the ``sympy`` module.
    julia : str
        Julia definition (empty for operators Julia already has).
    julia_name : str
        The name SymbolicRegression.jl prints for this operator.
    infix : str or None
        Infix symbol for binary operators printed as ``(a + b)``.
    complexity : int
        Cost of one node of this operator in an expression's complexity.
    searchable : bool
        Whether the genetic search may use it (``neg`` exists only for parsing).
    torch_source : str
        The torch definition as Python source over arguments ``a`` (and ``b``),
        written into exported loss modules; it must compute exactly what
        ``torch`` computes (a test checks this).
    group : str
        ``"paper"`` (EvoMAL's grammar), ``"extended"`` or ``"robust"``; see :data:`OPERATOR_SETS`.
    """

    name: str
    arity: int
    torch: Callable
    numpy: Callable
    sympy: Callable
    julia: str
    julia_name: str
    infix: str | None = None
    complexity: int = 1
    searchable: bool = True
    torch_source: str = ""
    group: str = "paper"


def _np_protect(a):
    return np.maximum(np.abs(a), PROTECTION_EPS)


def _np_pow(a, b):
    return np.exp(np.minimum(np.log(_np_protect(a)) * np.clip(b, -POW_CAP, POW_CAP), EXP_CAP))


def _np_huber(a):
    return 0.5 * np.square(np.minimum(np.abs(a), 1.0)) + np.maximum(np.abs(a) - 1.0, 0.0)


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("+", 2, lambda a, b: a + b, np.add, lambda sp, a, b: a + b, "", "+", infix="+", torch_source="a + b"),
        Operator(
            "-", 2, lambda a, b: a - b, np.subtract, lambda sp, a, b: a - b, "", "-", infix="-", torch_source="a - b"
        ),
        Operator(
            "*", 2, lambda a, b: a * b, np.multiply, lambda sp, a, b: a * b, "", "*", infix="*", torch_source="a * b"
        ),
        Operator(
            "aq",
            2,
            lambda a, b: a / (1.0 + b * b).sqrt(),
            lambda a, b: np.divide(a, np.sqrt(1.0 + np.square(b))),
            lambda sp, a, b: a / sp.sqrt(1 + b**2),
            "aq(a, b) = a / sqrt(one(b) + b * b)",
            "aq",
            torch_source="a / (1.0 + b * b).sqrt()",
        ),
        Operator(
            "min",
            2,
            lambda a, b: a.minimum(b),
            np.minimum,
            lambda sp, a, b: sp.Min(a, b),
            "",
            "min",
            torch_source="a.minimum(b)",
        ),
        Operator(
            "max",
            2,
            lambda a, b: a.maximum(b),
            np.maximum,
            lambda sp, a, b: sp.Max(a, b),
            "",
            "max",
            torch_source="a.maximum(b)",
        ),
        Operator(
            "abs", 1, lambda a: a * a.sign(), np.abs, lambda sp, a: sp.Abs(a), "", "abs", torch_source="(a * a.sign())"
        ),
        Operator(
            "square",
            1,
            lambda a: a * a,
            np.square,
            lambda sp, a: a**2,
            "square(x) = x * x",
            "square",
            torch_source="a * a",
        ),
        Operator("tanh", 1, lambda a: a.tanh(), np.tanh, lambda sp, a: sp.tanh(a), "", "tanh", torch_source="a.tanh()"),
        Operator("sign", 1, lambda a: a.sign(), np.sign, lambda sp, a: sp.sign(a), "", "sign", torch_source="a.sign()"),
        Operator(
            # SymPy form drops the 1e-7 guard so displays stay readable.
            "log",
            1,
            lambda a: (a * a.sign()).clamp_min(PROTECTION_EPS).log(),
            lambda a: np.log(_np_protect(a)),
            lambda sp, a: sp.log(sp.Abs(a)),
            "plog(x) = log(max(abs(x), oftype(x, 1e-7)))",
            "plog",
            torch_source="(a * a.sign()).clamp_min(PROTECTION_EPS).log()",
        ),
        Operator(
            "sqrt",
            1,
            lambda a: (a * a.sign()).clamp_min(PROTECTION_EPS).sqrt(),
            lambda a: np.sqrt(_np_protect(a)),
            lambda sp, a: sp.sqrt(sp.Abs(a)),
            "psqrt(x) = sqrt(max(abs(x), oftype(x, 1e-7)))",
            "psqrt",
            torch_source="(a * a.sign()).clamp_min(PROTECTION_EPS).sqrt()",
        ),
        Operator(
            # SymPy form drops the cap so displays stay readable.
            "exp",
            1,
            lambda a: a.clamp_max(EXP_CAP).exp(),
            lambda a: np.exp(np.minimum(a, EXP_CAP)),
            lambda sp, a: sp.exp(a),
            "pexp(x) = exp(min(x, oftype(x, 20)))",
            "pexp",
            torch_source="a.clamp_max(EXP_CAP).exp()",
            group="extended",
        ),
        Operator(
            # |a|^b: log's guard, the exponent clipped, exp's cap; SymPy drops the guard and cap.
            "pow",
            2,
            lambda a, b: (
                ((a * a.sign()).clamp_min(PROTECTION_EPS).log() * b.clamp(-POW_CAP, POW_CAP)).clamp_max(EXP_CAP).exp()
            ),
            _np_pow,
            lambda sp, a, b: sp.Abs(a) ** sp.Max(-POW_CAP, sp.Min(b, POW_CAP)),
            f"ppow(a, b) = exp(min(clamp(b, oftype(b, {-POW_CAP}), oftype(b, {POW_CAP})) * "
            f"log(max(abs(a), oftype(a, 1e-7))), oftype(a, {EXP_CAP})))",
            "ppow",
            torch_source=f"((a * a.sign()).clamp_min(PROTECTION_EPS).log() * b.clamp({-POW_CAP!r}, {POW_CAP!r}))"
            ".clamp_max(EXP_CAP).exp()",
            group="robust",
        ),
        Operator(
            "huber",
            1,
            lambda a: 0.5 * (a * a.sign()).clamp_max(1.0).square() + ((a * a.sign()) - 1.0).clamp_min(0.0),
            _np_huber,
            lambda sp, a: sp.Rational(1, 2) * sp.Min(sp.Abs(a), 1) ** 2 + sp.Max(sp.Abs(a) - 1, 0),
            "huber(x) = oftype(x, 0.5) * min(abs(x), one(x))^2 + max(abs(x) - one(x), zero(x))",
            "huber",
            torch_source="0.5 * (a * a.sign()).clamp_max(1.0).square() + ((a * a.sign()) - 1.0).clamp_min(0.0)",
            group="robust",
        ),
        Operator(
            # Unary minus: lets `-(y * log(fx))` parse; not part of EvoMAL's grammar.
            "neg",
            1,
            lambda a: -a,
            np.negative,
            lambda sp, a: -a,
            "",
            "-",
            searchable=False,
            torch_source="-a",
        ),
    )
}

#: Names SymbolicRegression.jl prints that differ from the canonical ones.
JULIA_ALIASES: dict[str, str] = {
    op.julia_name: op.name for op in OPERATORS.values() if op.infix is None and op.julia_name not in (op.name, "-")
}

#: Infix symbol -> operator name.
INFIX: dict[str, str] = {op.infix: op.name for op in OPERATORS.values() if op.infix}

#: The terminals every loss is built from.
VARIABLES: tuple[str, ...] = ("y", "fx")

#: Constant terminals available to the genetic search.
SEARCH_CONSTANTS: tuple[float, ...] = (1.0, -1.0)


def get_operator(name: str) -> Operator:
    """Return the operator called ``name`` (canonical or Julia name).

    Raises
    ------
    ExpressionError
        If no operator has that name; the message lists the known ones.
    """
    canonical = JULIA_ALIASES.get(name, name)
    try:
        return OPERATORS[canonical]
    except KeyError:
        known = ", ".join(sorted(OPERATORS))
        raise ExpressionError(f"unknown operator {name!r}; known operators: {known}") from None


def searchable_operators(operator_set: str = "paper") -> list[Operator]:
    """Operators the genetic search may place in a tree, in registry order.

    Examples
    --------
    >>> [op.name for op in searchable_operators("extended")][-1]
    'exp'
    """
    groups = check_operator_set(operator_set)
    return [op for op in OPERATORS.values() if op.searchable and op.group in groups]


def check_operator_set(operator_set: str) -> tuple[str, ...]:
    """The groups of ``operator_set``, or :class:`ExpressionError` naming the valid sets."""
    try:
        return OPERATOR_SETS[operator_set]
    except (KeyError, TypeError):
        raise ExpressionError(
            f"unknown operator set {operator_set!r}; choose one of {', '.join(OPERATOR_SETS)}"
        ) from None
