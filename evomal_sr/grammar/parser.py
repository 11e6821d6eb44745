"""Safe parser for PySR-style infix loss expressions.

Text is parsed with Python's :mod:`ast` and then walked under a whitelist:
numeric literals, the variables ``y``/``fx``, ``+ - *`` and unary minus, and
calls of registry operators by name. Nothing is ever evaluated; every other
node type is refused with :class:`~evomal_sr.errors.ExpressionError` naming the
offending text.

Only ASCII text is accepted. Python's parser would NFKC-normalise lookalike
identifiers (fullwidth ``ｙ``, math-italic ``𝑓𝑥``, ``ⅼog`` with a small-roman
numeral), so a loss could be written in characters that merely look like the
grammar's; such text is refused, naming the first non-ASCII character.
"""

from __future__ import annotations

import ast
import math

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.nodes import Node
from evomal_sr.grammar.operators import INFIX, JULIA_ALIASES, OPERATOR_SETS, OPERATORS, VARIABLES

#: Longest text accepted by :func:`parse_tree`.
MAX_TEXT_LENGTH = 200_000
#: Deepest nesting accepted (GP trees are at most 17 deep; this is generous).
MAX_DEPTH = 100

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
_HINTS = {
    ast.Div: "'/' is not an operator here; use the protected quotient aq(a, b)",
    ast.Pow: "'**' is not supported; use square(x)",
    ast.BitXor: "'^' is not supported; use square(x)",
}


def _describe(node: ast.AST, text: str) -> str:
    segment = ast.get_source_segment(text, node)
    return repr(segment) if segment else type(node).__name__


def parse_tree(text: str):
    """Parse ``text`` into a :class:`~evomal_sr.grammar.expression.Node` tree.

    Raises
    ------
    ExpressionError
        On anything that is not a well-formed loss expression.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected expression text (str), got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ExpressionError("empty expression; write e.g. '-(y * log(fx))'")
    if len(stripped) > MAX_TEXT_LENGTH:
        raise ExpressionError(
            f"expression text is {len(stripped)} characters long; at most {MAX_TEXT_LENGTH} are accepted"
        )
    if "\n" in stripped or "\r" in stripped:
        raise ExpressionError("expression must be on a single line")
    if not stripped.isascii():
        column, char = next((i, c) for i, c in enumerate(stripped, 1) if not c.isascii())
        raise ExpressionError(
            f"non-ASCII character {char!r} (U+{ord(char):04X}) at column {column}; "
            "write y, fx, numbers and operator names in plain ASCII"
        )
    try:
        module = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        shown = stripped if len(stripped) <= 80 else stripped[:77] + "..."
        raise ExpressionError(f"not a valid expression{where}: {shown!r}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression is nested too deeply or is malformed") from None
    return _Walker(stripped).visit(module.body, 0)


class _Walker:
    """Turns a whitelisted Python AST into expression nodes."""

    def __init__(self, text: str):
        self.text = text

    def visit(self, node: ast.AST, depth: int):

        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return Node.constant(self._number(node))
        if isinstance(node, ast.Name):
            if node.id not in VARIABLES:
                raise ExpressionError(
                    f"unknown variable {node.id!r}; a loss may use only {' and '.join(VARIABLES)} and numbers"
                )
            return Node.variable(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.visit(node.operand, depth + 1)
            if isinstance(node.op, ast.USub):
                return Node.apply("neg", (self.visit(node.operand, depth + 1),))
        elif isinstance(node, ast.BinOp):
            symbol = _BINOPS.get(type(node.op))
            if symbol is None:
                hint = _HINTS.get(type(node.op), "unsupported operator")
                raise ExpressionError(f"{hint}: {_describe(node, self.text)}")
            args = (self.visit(node.left, depth + 1), self.visit(node.right, depth + 1))
            return Node.apply(INFIX[symbol], args)
        elif isinstance(node, ast.Call):
            return self._call(node, depth)
        raise ExpressionError(
            f"unsupported syntax ({type(node).__name__}) in {_describe(node, self.text)}; "
            "only numbers, y, fx, + - * and operator calls are allowed"
        )

    def _number(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"unsupported literal {_describe(node, self.text)}; use a number")
        try:
            value = float(value)
        except OverflowError:  # an integer literal too large for a float
            value = math.inf
        if not math.isfinite(value):
            raise ExpressionError(f"constant {_describe(node, self.text)} is not finite")
        return value

    def _call(self, node: ast.Call, depth: int):

        if not isinstance(node.func, ast.Name):
            raise ExpressionError(
                f"unsupported call {_describe(node.func, self.text)}; "
                "only operator names such as aq(...) or log(...) may be called"
            )
        name = JULIA_ALIASES.get(node.func.id, node.func.id)
        op = OPERATORS.get(name)
        if op is None or op.infix is not None:
            raise ExpressionError(f"unknown operator {node.func.id!r}; {_known_operators()}")
        bad = node.keywords + [a for a in node.args if isinstance(a, ast.Starred)]
        if bad:
            raise ExpressionError(
                f"{name}(...) takes plain positional arguments only, got {_describe(bad[0], self.text)}"
            )
        if len(node.args) != op.arity:
            raise ExpressionError(
                f"{name} takes {op.arity} argument{'s' * (op.arity > 1)}, "
                f"got {len(node.args)} in {_describe(node, self.text)}"
            )
        return Node.apply(name, tuple(self.visit(a, depth + 1) for a in node.args))


def _known_operators() -> str:
    """The function-form operators, by operator set: the default (paper) grammar's, then what each set adds.

    Examples
    --------
    >>> _known_operators()  # doctest: +ELLIPSIS
    'the default (paper) grammar has abs, aq, log, ...; the extended set adds exp; the robust set adds huber, pow'
    """
    parts: list[str] = []
    seen: set[str] = set()
    for name, groups in OPERATOR_SETS.items():
        names = sorted(
            n
            for n, op in OPERATORS.items()
            if op.infix is None and op.searchable and op.group in groups and n not in seen
        )
        seen.update(names)
        if names:
            what = "the default (paper) grammar has" if not parts else f"the {name} set adds"
            parts.append(f"{what} {', '.join(names)}")
    return "; ".join(parts)
