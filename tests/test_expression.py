"""Expression: parsing, canonical text, measures, repair, exports and safe loading."""

from __future__ import annotations

import builtins
import json
import math
import os
import random
import subprocess

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import constants, expressions, trees

from evomal_sr import Expression, ExpressionError
from evomal_sr.grammar.expression import MAX_NODES, REPAIR_OPERATORS
from evomal_sr.grammar.nodes import CONST, OP, VAR, Node
from evomal_sr.grammar.parser import MAX_DEPTH, MAX_TEXT_LENGTH

FX, Y = Node.variable("fx"), Node.variable("y")


def c(value):
    return Node.constant(value)


def op(name, *children):
    return Node.apply(name, children)


# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree", "canonical"),
    [
        ("(y * log(fx))", op("*", Y, op("log", FX)), "(y * log(fx))"),
        ("y*log(fx)", op("*", Y, op("log", FX)), "(y * log(fx))"),
        ("aq(fx, y)", op("aq", FX, Y), "aq(fx, y)"),
        ("-1.0", c(-1.0), "-1.0"),
        ("1.5e-3", c(0.0015), "0.0015"),
        ("2", c(2.0), "2.0"),
        ("-0.0", c(0.0), "0.0"),
        ("-fx", op("neg", FX), "-fx"),
        ("--fx", op("neg", op("neg", FX)), "--fx"),
        ("-(-1.0)", c(1.0), "1.0"),
        ("+fx", FX, "fx"),
        ("-(y * log(fx))", op("neg", op("*", Y, op("log", FX))), "-(y * log(fx))"),
        ("plog(fx)", op("log", FX), "log(fx)"),
        ("psqrt(y)", op("sqrt", Y), "sqrt(y)"),
        ("  square(fx - y)\t", op("square", op("-", FX, Y)), "square((fx - y))"),
        ("fx - y - 1", op("-", op("-", FX, Y), c(1.0)), "((fx - y) - 1.0)"),
        ("y + fx * 2", op("+", Y, op("*", FX, c(2.0))), "(y + (fx * 2.0))"),
        ("min(max(fx, y), 0.5)", op("min", op("max", FX, Y), c(0.5)), "min(max(fx, y), 0.5)"),
        ("tanh(sign(abs(fx)))", op("tanh", op("sign", op("abs", FX))), "tanh(sign(abs(fx)))"),
        ("aq(fx, -1e+300)", op("aq", FX, c(-1e300)), "aq(fx, -1e+300)"),
        ("5e-324", c(5e-324), "5e-324"),
    ],
)
def test_parse_examples(text, tree, canonical):
    expr = Expression.parse(text)
    assert expr.root == tree
    assert str(expr) == canonical
    assert Expression.parse(canonical) == expr
    assert Expression.parse(expr) is expr


def test_parse_accepts_the_design_examples():
    assert Expression.parse("plog(fx)") == Expression.parse("log(fx)")
    assert str(Expression.parse("-(y * log(fx))")) == "-(y * log(fx))"
    assert repr(Expression.parse("aq(fx, y)")) == "Expression.parse('aq(fx, y)')"


def test_expression_is_immutable_and_hashable():
    e = Expression.parse("(y * log(fx))")
    with pytest.raises(AttributeError):
        e.root = FX
    assert len({e, Expression.parse("y * plog(fx)"), Expression.parse("y*log(fx)")}) == 1
    assert e != "(y * log(fx))"
    with pytest.raises(ExpressionError):
        Expression("fx")


# -- hostile and malformed text ----------------------------------------------------------

HOSTILE = [
    # (text, a fragment the message must contain: the offending token)
    ("__import__('os').system('x')", "__import__"),
    ("__import__('os')", "__import__"),
    ("fx.__class__", "fx.__class__"),
    ("y.__class__.__bases__[0].__subclasses__()", "__subclasses__"),
    ("(1).__class__", "__class__"),
    ("lambda: 1", "lambda"),
    ("cosh(fx)", "cosh"),
    ("open('x')", "open"),
    ("eval('1')", "eval"),
    ("exec('1')", "exec"),
    ("getattr(fx, 'x')", "getattr"),
    ("globals()", "globals"),
    ("log(z)", "z"),
    ("x", "x"),
    ("__builtins__", "__builtins__"),
    ("aq(fx)", "aq"),
    ("log(fx, y)", "log"),
    ("square()", "square"),
    ("aq(fx, y=1)", "y=1"),
    ("aq(fx, **y)", "**y"),
    ("aq(*fx, y)", "*fx"),
    ("'fx'", "'fx'"),
    ('"abc"', "abc"),
    ("b'x'", "b'x'"),
    ("True", "True"),
    ("False", "False"),
    ("None", "None"),
    ("...", "..."),
    ("1j", "1j"),
    ("(1+2j)", "2j"),
    ("1e999", "1e999"),
    ("-1e999", "1e999"),
    ("1" + "0" * 400, "0000"),
    ("fx[0]", "fx[0]"),
    ("[x for x in fx]", "[x for x in fx]"),
    ("{x for x in fx}", "{x for x in fx}"),
    ("(x for x in fx)", "x for x in fx"),
    ("{k: 1 for k in fx}", "{k: 1 for k in fx}"),
    ("(fx := 1)", "fx := 1"),
    ("f'{fx}'", "f'{fx}'"),
    ("[fx]", "[fx]"),
    ("(fx, y)", "fx, y"),
    ("{fx: 1}", "{fx: 1}"),
    ("fx / y", "fx / y"),
    ("fx ** 2", "fx ** 2"),
    ("fx ^ y", "fx ^ y"),
    ("fx @ y", "fx @ y"),
    ("fx % y", "fx % y"),
    ("fx // y", "fx // y"),
    ("~fx", "~fx"),
    ("not fx", "not fx"),
    ("fx < y", "fx < y"),
    ("fx and y", "fx and y"),
    ("y if fx else 1", "y if fx else 1"),
    ("await fx", "await fx"),
    ("import os", "import os"),
    ("fx; y", "fx; y"),
    ("fx\n+ y", "single line"),
    ("fx\x00", "not a valid expression"),
    ("", "empty"),
    ("   \t ", "empty"),
    ("log(" * (MAX_DEPTH + 5) + "fx" + ")" * (MAX_DEPTH + 5), str(MAX_DEPTH)),
    ("-" * (MAX_DEPTH + 5) + "fx", str(MAX_DEPTH)),
    ("-" * 9000 + "fx", "nested"),
    ("(" * 1000 + "fx" + ")" * 1000, "not a valid expression"),
    ("fx + " * (MAX_TEXT_LENGTH // 5 + 1) + "fx", str(MAX_TEXT_LENGTH)),
]


@pytest.mark.parametrize(("text", "token"), HOSTILE, ids=[repr(t[:24]) for t, _ in HOSTILE])
def test_hostile_text_rejected_naming_the_token(text, token):
    with pytest.raises(ExpressionError) as info:
        Expression.parse(text)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert token in message
    assert "\n" not in message


@pytest.mark.parametrize("value", [None, 1.0, b"fx", ["fx"], {"var": "fx"}])
def test_parse_rejects_non_text(value):
    with pytest.raises(ExpressionError, match="str"):
        Expression.parse(value)


def test_hostile_text_has_no_side_effect(tmp_path, monkeypatch):
    sentinel = tmp_path / "pwned"
    attacks = [
        f"__import__('os').system('touch {sentinel}')",
        f"open('{sentinel}', 'w')",
        f"exec(\"open('{sentinel}', 'w')\")",
        f"eval(\"open('{sentinel}', 'w')\")",
        f"[open('{sentinel}', 'w') for _ in fx]",
        f"(__import__('pathlib').Path('{sentinel}').touch())",
        f"aq(fx, __import__('os').system('touch {sentinel}'))",
        f"log(fx) + __import__('subprocess').call(['touch', '{sentinel}'])",
        f"fx if __import__('os').system('touch {sentinel}') else y",
        f'f\'{{__import__("os").system("touch {sentinel}")}}\'',
    ]
    calls = []

    def spy(name):
        def record(*args, **kwargs):
            calls.append((name, args))
            raise AssertionError(f"{name} called")

        return record

    real_import = builtins.__import__

    def import_spy(name, *args, **kwargs):
        calls.append(("import", name))
        return real_import(name, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "system", spy("os.system"))
        patch.setattr(subprocess, "Popen", spy("Popen"))
        patch.setattr(builtins, "open", spy("open"))
        patch.setattr(builtins, "eval", spy("eval"))
        patch.setattr(builtins, "exec", spy("exec"))
        patch.setattr(builtins, "__import__", import_spy)
        errors = []
        for text in attacks:
            try:
                Expression.parse(text)
            except ExpressionError as exc:
                errors.append(exc)
    assert len(errors) == len(attacks)
    assert calls == []
    assert not sentinel.exists()


# -- round trips (Hypothesis) ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(expressions(max_depth=6))
def test_parse_str_round_trip(expr):
    text = str(expr)
    again = Expression.parse(text)
    assert again == expr
    assert str(again) == text  # canonical text is stable
    assert hash(again) == hash(expr)
    assert Expression.parse(str(again)) == again


@settings(max_examples=200, deadline=None)
@given(expressions(max_depth=6))
def test_dict_round_trip(expr):
    data = expr.to_dict()
    assert Expression.from_dict(data) == expr
    via_json = json.loads(json.dumps(data, allow_nan=False))
    assert Expression.from_dict(via_json) == expr


@settings(max_examples=100, deadline=None)
@given(constants())
def test_every_finite_constant_round_trips(value):
    expr = Expression(Node.constant(value))
    assert Expression.parse(str(expr)) == expr
    assert expr.root.value == value + 0.0


def test_to_dict_layout():
    e = Expression.parse("aq(fx, -1.0) + y")
    assert e.to_dict() == {"op": "+", "args": [{"op": "aq", "args": [{"var": "fx"}, {"const": -1.0}]}, {"var": "y"}]}
    assert Expression.from_dict({"op": "plog", "args": [{"var": "fx"}]}) == Expression.parse("log(fx)")
    assert Expression.from_dict({"op": "neg", "args": [{"const": 2}]}) == Expression.parse("-2.0")


def _nest(name, leaf, n):
    data = leaf
    for _ in range(n):
        data = {"op": name, "args": [data]}
    return data


def _full(depth):
    if depth == 1:
        return {"var": "fx"}
    return {"op": "+", "args": [_full(depth - 1), _full(depth - 1)]}


def _deep_list(n):
    data = []
    for _ in range(n):
        data = [data]
    return data


BAD_DICTS = [
    None,
    "fx",
    1.0,
    [],
    [{"var": "fx"}],
    {},
    {"variable": "y"},
    {"var": "y", "const": 1.0},
    {"var": "y", "op": "+", "args": []},
    {"op": "+"},
    {"args": []},
    {"op": "+", "args": "yfx"},
    {"op": "+", "args": ({"var": "y"}, {"var": "fx"})},
    {"op": 1, "args": []},
    {"op": "+", "args": [{"var": "y"}]},
    {"op": "log", "args": [{"var": "y"}, {"var": "fx"}]},
    {"op": "cosh", "args": [{"var": "y"}]},
    {"op": "__import__", "args": [{"const": 1.0}]},
    {"op": "+", "args": [{"var": "y"}, "fx"]},
    {"var": "z"},
    {"var": "__import__('os')"},
    {"var": ["y"]},
    {"var": None},
    {"const": math.nan},
    {"const": math.inf},
    {"const": -math.inf},
    {"const": "1.0"},
    {"const": True},
    {"const": None},
    {"const": [1.0]},
    {"const": 10**400},
    {"const": 1.0, "extra": 1},
    {"op": "+", "args": [{"var": "y"}, {"var": "fx"}], "x": 0},
    _nest("abs", {"var": "fx"}, MAX_DEPTH + 5),
    _full(15),
    _deep_list(100_000),
    {"op": "abs", "args": [_deep_list(100_000)]},
]


@pytest.mark.parametrize("data", BAD_DICTS, ids=[f"bad{i}" for i in range(len(BAD_DICTS))])
def test_from_dict_rejects_malformed(data):
    with pytest.raises(ExpressionError):
        Expression.from_dict(data)


def test_from_dict_limits():
    assert Expression.from_dict(_nest("abs", {"var": "fx"}, MAX_DEPTH - 1)).depth == MAX_DEPTH
    assert Expression.from_dict(_full(10)).size <= MAX_NODES
    with pytest.raises(ExpressionError, match=str(MAX_NODES)):
        Expression.from_dict(_full(15))
    with pytest.raises(ExpressionError, match=str(MAX_DEPTH)):
        Expression.from_dict(_nest("abs", {"var": "fx"}, MAX_DEPTH + 5))


# -- measures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "complexity", "depth", "variables"),
    [
        ("fx", 1, 1, {"fx"}),
        ("-1.0", 1, 1, set()),
        ("-fx", 2, 2, {"fx"}),
        ("aq(fx, y)", 3, 2, {"fx", "y"}),
        ("(y * log(fx))", 4, 3, {"fx", "y"}),
        ("-(y * log(fx))", 5, 4, {"fx", "y"}),
        ("square(fx - y)", 4, 3, {"fx", "y"}),
        ("aq(y, fx) + log(fx)", 6, 3, {"fx", "y"}),
        ("min(max(y, 1.0), -1.0)", 5, 3, {"y"}),
        ("sqrt(abs(tanh(sign(1.0))))", 5, 5, set()),
    ],
)
def test_measures(text, complexity, depth, variables):
    e = Expression.parse(text)
    assert e.complexity == complexity
    assert e.depth == depth
    assert e.variables == frozenset(variables)
    assert e.size == len(e.nodes()) == complexity  # every operator costs 1
    assert e.is_complete() == (variables == {"fx", "y"})


@settings(max_examples=100, deadline=None)
@given(trees(max_depth=6))
def test_measures_agree_with_tree(root):
    e = Expression(root)
    nodes = e.nodes()
    assert nodes[0] is root and len(nodes) == e.size
    assert e.complexity == sum(1 for _ in nodes)
    assert 1 <= e.depth <= 6
    assert e.variables == {n.value for n in nodes if n.kind == VAR}
    assert all(n.kind in (VAR, CONST, OP) for n in nodes)


# -- repair ------------------------------------------------------------------------------


def test_repair_examples():
    for text in ("log(fx)", "square(y)", "1.0", "aq(y, -1.0)", "min(tanh(fx), fx)"):
        e = Expression.parse(text)
        assert not e.is_complete()
        for seed in range(20):
            fixed = e.repair(random.Random(seed))
            assert fixed.is_complete()
            assert fixed.size == e.size + 2
            assert fixed == e.repair(random.Random(seed))  # deterministic per seed
            spliced = [
                n for n in fixed.nodes() if n.kind == OP and n.value in REPAIR_OPERATORS and n.children == (Y, FX)
            ]
            assert spliced
    results = {str(Expression.parse("aq(fx, fx)").repair(random.Random(s))) for s in range(40)}
    assert len(results) > 1  # the seed matters


def test_repair_leaves_complete_trees_unchanged():
    e = Expression.parse("-(y * log(fx))")
    rng = random.Random(3)
    state = rng.getstate()
    assert e.repair(rng) is e
    assert rng.getstate() == state


@settings(max_examples=100, deadline=None)
@given(expressions(max_depth=5), st.integers(0, 2**32 - 1))
def test_repair_property(expr, seed):
    fixed = expr.repair(random.Random(seed))
    assert fixed.is_complete()
    assert fixed == expr.repair(random.Random(seed))
    if expr.is_complete():
        assert fixed is expr
    else:
        assert fixed.size == expr.size + 2
        assert fixed.depth <= expr.depth + 1
    assert Expression.parse(str(fixed)) == fixed


# -- exports and evaluation --------------------------------------------------------------

Ys, FXs = sp.Symbol("y", real=True), sp.Symbol("fx", real=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(y * log(fx))", Ys * sp.log(sp.Abs(FXs))),
        ("aq(fx, y)", FXs / sp.sqrt(1 + Ys**2)),
        ("square(fx - y)", (FXs - Ys) ** 2),
        ("min(fx, 2.0)", sp.Min(FXs, 2)),
        ("sqrt(y) * 0.5", sp.sqrt(sp.Abs(Ys)) * sp.Float(0.5)),
        ("-fx", -FXs),
    ],
)
def test_to_sympy(text, expected):
    assert sp.simplify(Expression.parse(text).to_sympy() - expected) == 0


def test_to_sympy_simplify():
    assert Expression.parse("fx - fx").to_sympy(simplify=True) == 0
    assert Expression.parse("y + y").to_sympy(simplify=True) == 2 * Ys
    assert Expression.parse("-1.0").to_sympy() == -1


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("-(y * log(fx))", [r"\log", "f(x)", "y"]),
        ("aq(fx, y)", [r"\sqrt", r"\frac", "f(x)"]),
        ("square(fx - y)", ["^{2}", "f(x)"]),
        ("min(fx, y)", [r"\min"]),
        ("tanh(abs(fx))", [r"\tanh", r"\left|"]),
    ],
)
def test_to_latex(text, fragments):
    latex = Expression.parse(text).to_latex()
    assert "fx" not in latex
    for fragment in fragments:
        assert fragment in latex


def test_evaluate_numpy():
    fx = np.array([[0.2, 0.8], [0.6, 0.4]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(Expression.parse("-(y * log(fx))").evaluate_numpy(y, fx), -y * np.log(fx))
    np.testing.assert_allclose(Expression.parse("aq(fx, y)").evaluate_numpy(y, fx), fx / np.sqrt(1 + y**2))
    constant = Expression.parse("-1.0").evaluate_numpy(y, fx)
    assert constant.shape == (2, 2) and (constant == -1.0).all()
    assert np.isfinite(Expression.parse("log(fx - fx)").evaluate_numpy(y, fx)).all()
