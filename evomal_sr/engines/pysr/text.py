"""Julia text in and out of the PySR engine: equations and the hall of fame.

SymbolicRegression.jl prints candidate trees as Julia text (``string_tree``,
which prints constants with ``string``): Float32 constants as ``string(::Float32)``
writes them (``1.5``, ``-0.25``, ``1.0f-7``, ``Inf``, ``NaN``), the registry's
Julia operator names (``plog``, ``psqrt``, ``aq``), and ``x1``/``x2`` when no
variable names were given. :func:`normalize_equation` turns such text into the
package's infix syntax with a small, strict token translation (nothing is
evaluated), and :func:`to_pysr_equation` goes the other way for PySR's
``guesses``. :func:`read_hall_of_fame_csv` and :func:`front_entries` bring PySR's
hall of fame back as front entries carrying the evaluator's learned weights.

This module imports neither PySR, juliacall nor torch (front entries are built
by a function-level import).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import to_text
from evomal_sr.grammar.operators import JULIA_ALIASES, OPERATORS, VARIABLES

_TOKEN = re.compile(
    r"(?P<space>[ \t]+)"
    r"|(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eEf][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*[\u2080-\u2089]*)"
    r"|(?P<punct>[(),+\-*])"
)
_SUBSCRIPTS = str.maketrans("\u2080\u2081\u2082\u2083\u2084\u2085\u2086\u2087\u2088\u2089", "0123456789")
#: Names SymbolicRegression uses for unnamed features, in :data:`VARIABLES` order.
_FEATURE_NAMES = {f"x{i + 1}": name for i, name in enumerate(VARIABLES)}
_KNOWN_NAMES = frozenset(VARIABLES) | frozenset(OPERATORS) | frozenset(JULIA_ALIASES)


def normalize_equation(text: str) -> str:
    """Translate an equation printed by SymbolicRegression.jl into this package's syntax.

    Julia's Float32 exponent form (``1.0f-7``) becomes a Python float
    (``1.0e-7``), ``x1``/``x2`` (or ``x₁``/``x₂``) become ``y``/``fx``;
    Julia operator aliases such as ``plog`` are kept (the parser accepts them).
    Anything else unexpected (an ``Inf`` or ``NaN`` constant, ``/``, ``^``,
    braces, unknown names) is refused.

    Raises
    ------
    ExpressionError
        Naming the offending character or name.

    Examples
    --------
    >>> normalize_equation("-1.0 * (y * plog(fx)) + 1.0f-7")
    '-1.0 * (y * plog(fx)) + 1.0e-7'
    >>> normalize_equation("aq(x1 - x₂, 2.5)")
    'aq(y - fx, 2.5)'
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected equation text (str), got {type(text).__name__}")
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} in equation {text!r}")
        pos = match.end()
        kind, token = match.lastgroup, match.group()
        if kind == "number":
            token = token.replace("f", "e")
        elif kind == "name":
            token = _normalize_name(token, text)
        out.append(token)
    return "".join(out)


def _normalize_name(token: str, text: str) -> str:
    plain = token.translate(_SUBSCRIPTS)
    if plain in _FEATURE_NAMES:
        return _FEATURE_NAMES[plain]
    if token not in _KNOWN_NAMES:
        raise ExpressionError(f"unknown name {token!r} in equation {text!r}")
    return token


def canonical_expression(text: str | Expression) -> Expression:
    """Parse PySR-printed (or canonical) text into an :class:`Expression`.

    Examples
    --------
    >>> str(canonical_expression("square(fx - y) + 1.0f-7"))
    '(square((fx - y)) + 1e-07)'
    """
    if isinstance(text, Expression):
        return text
    return Expression.parse(normalize_equation(text))


def to_pysr_equation(expression: str | Expression) -> str:
    """The expression in the syntax SymbolicRegression.jl parses (for ``guesses``).

    Operators take their Julia names and unary minus becomes ``(-1.0 * a)``,
    since the search has no negation operator.

    Examples
    --------
    >>> to_pysr_equation("-(y * log(fx))")
    '(-1.0 * (y * plog(fx)))'
    """

    return to_text(Expression.parse(expression).root, julia=True)


# -- PySR's hall of fame -------------------------------------------------------------------
@dataclass(frozen=True)
class HallOfFameRow:
    """One line of PySR's ``hall_of_fame.csv`` (``Complexity,Loss,Equation``)."""

    complexity: int
    loss: float
    equation: str


#: ``string`` of a non-finite float, lower-cased (``Inf32``/``NaN32`` are only ``repr``'s, accepted too).
_JULIA_SPECIAL = {
    "inf": math.inf,
    "inf32": math.inf,
    "inf16": math.inf,
    "nan": math.nan,
    "nan32": math.nan,
    "nan16": math.nan,
}


def julia_float(text: str) -> float:
    """A number as Julia's ``string`` writes it (``0.25``, ``1.0f-7``, ``Inf``, ``-Inf``, ``NaN``).

    Examples
    --------
    >>> julia_float("1.0f-7"), julia_float("0.25"), julia_float("-Inf")
    (1e-07, 0.25, -inf)
    """
    text = text.strip()
    special = _JULIA_SPECIAL.get(text.lstrip("+-").lower())
    if special is not None:
        return -special if text.startswith("-") else special
    return float(text.replace("f", "e"))


def read_hall_of_fame_csv(path) -> list[HallOfFameRow]:
    """Rows of a ``hall_of_fame.csv`` written by SymbolicRegression.jl.

    Losses written the way Julia prints them (``0.25``, ``1.0f-7``, ``Inf``,
    ``NaN``) are accepted.

    Raises
    ------
    ValueError
        If the file lacks the ``Complexity,Loss,Equation`` columns or holds an
        unreadable number.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"Complexity", "Loss", "Equation"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a PySR hall of fame (missing {', '.join(sorted(missing))})")
        return [
            HallOfFameRow(int(row["Complexity"]), julia_float(row["Loss"]), row["Equation"].strip()) for row in reader
        ]


def front_entry(result):
    """A :class:`~evomal_sr.results.front.FrontEntry` for a trained ``FitnessResult``, else ``None``."""
    if result is None or not result.trained:
        return None
    from evomal_sr.results.front import FrontEntry  # imports torch: only once there is a result

    return FrontEntry.from_result(result)


def front_entries(rows: Iterable[HallOfFameRow], lookup: Callable[[str], object]) -> list:
    """Hall-of-fame rows as front entries carrying the evaluator's learned weights.

    ``lookup(text)`` gives the evaluator's ``FitnessResult`` for an expression
    (e.g. :meth:`~evomal_sr.engines.pysr.bridge.LossCallback.result_for`). A row
    whose fitness was shared from a gradient-equivalent expression is
    represented by that expression, whose weights were trained; unparseable,
    rejected or unknown rows are skipped.

    Examples
    --------
    >>> front_entries([HallOfFameRow(5, 0.3, "y * plog(fx)")], lambda text: None)
    []
    """
    entries = []
    for row in rows:
        try:
            result = lookup(str(canonical_expression(row.equation)))
        except ExpressionError:
            continue
        if result is not None and result.status == "equivalent" and result.reused_from:
            result = lookup(result.reused_from)
        entry = front_entry(result)
        if entry is not None:
            entries.append(entry)
    return entries
