"""Julia text in and out of the PySR engine: equations as ``string_tree`` prints them,
guesses, and PySR's hall-of-fame file (no Julia needed)."""

from __future__ import annotations

import math

import pytest
from test_pysr_engine import FakeEvaluator

from evomal_sr.engines.pysr.bridge import LossCallback
from evomal_sr.engines.pysr.text import (
    canonical_expression,
    front_entries,
    julia_float,
    normalize_equation,
    read_hall_of_fame_csv,
    to_pysr_equation,
)
from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.expression import Expression
from evomal_sr.results.front import ParetoFront
from evomal_sr.results.hall_of_fame import HallOfFame
from evomal_sr.scoring.evaluator import FitnessResult

# ------------------------------------------------------------------ equation text
CANONICAL_PAIRS = [  # as string_tree prints them: constants in string(::Float32) form
    ("y * plog(fx)", "(y * log(fx))"),
    ("-1.0 * (y * plog(fx))", "(-1.0 * (y * log(fx)))"),
    ("(y * -0.5) + 1.0f-7", "((y * -0.5) + 1e-07)"),
    ("1.5 * y - fx", "((1.5 * y) - fx)"),
    ("fx * 1.0f7 + y", "((fx * 10000000.0) + y)"),
    ("-1.0f0 * (y * plog(fx))", "(-1.0 * (y * log(fx)))"),  # the Float32 literal syntax, accepted too
    ("aq(y - fx, psqrt(fx))", "aq((y - fx), sqrt(fx))"),
    ("square(fx - y)", "square((fx - y))"),
    ("max(y, fx) - min(fx, 2.5e10)", "(max(y, fx) - min(fx, 25000000000.0))"),
    ("((((y)))) * (fx - -1.0)", "(y * (fx - -1.0))"),
    ("tanh(sign(abs(y))) * fx", "(tanh(sign(abs(y))) * fx)"),
    ("x1 * plog(x2)", "(y * log(fx))"),
    ("x\u2081 - x\u2082", "(y - fx)"),
    ("aq(fx, (-1.0))", "aq(fx, -1.0)"),
    ("3.0e-5 * y + 100.0 * fx", "((3e-05 * y) + (100.0 * fx))"),
]


@pytest.mark.parametrize(("printed", "canonical"), CANONICAL_PAIRS)
def test_pysr_strings_parse_to_the_canonical_expression(printed, canonical):
    assert canonical_expression(printed) == Expression.parse(canonical)
    assert str(canonical_expression(printed)) == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "Inf * y",
        "fx - -Inf",
        "NaN * fx",
        "NaN",
        "Inf32 * y",
        "{y * fx}",
        "y / fx",
        "y ^ 2",
        "cosh(y)",
        "",
        "   ",
        "__import__('os')",
        "y; fx",
        "x3 * y",
        "y.real",
        "y @ fx",
        "lambda: y",
        "plog(fx, y)",
        "y fx",
        "2x",
    ],
)
def test_bad_strings_raise_expression_error(bad):
    with pytest.raises(ExpressionError):
        canonical_expression(bad)


def test_normalize_equation_only_translates_numbers_and_feature_names():
    assert normalize_equation("aq(x1, 1.5)") == "aq(y, 1.5)"
    assert normalize_equation("aq(x1, 1.0f-7)") == "aq(y, 1.0e-7)"
    assert normalize_equation("aq(x1, 1.5f0)") == "aq(y, 1.5e0)"
    assert normalize_equation("plog(fx)") == "plog(fx)"
    with pytest.raises(ExpressionError):
        normalize_equation(42)


@pytest.mark.parametrize(
    "text",
    [
        "-(y * log(fx))",
        "aq(square((fx - y)), sqrt(y))",
        "max(-1.0, min(y, fx))",
        "((y + 1e-07) * tanh(fx))",
        "-abs((y - fx))",
    ],
)
def test_guess_text_round_trips(text):
    import numpy as np

    original = Expression.parse(text)
    guess = to_pysr_equation(original)
    assert "log(" not in guess.replace("plog(", "") and "sqrt(" not in guess.replace("psqrt(", "")
    back = canonical_expression(guess)
    y, fx = np.linspace(-2, 2, 7), np.linspace(0.1, 0.9, 7)
    np.testing.assert_allclose(back.evaluate_numpy(y, fx), original.evaluate_numpy(y, fx))


# ------------------------------------------------------------------ hall of fame import
HALL_OF_FAME = """Complexity,Loss,Equation
1,Inf,"fx"
3,0.45,"y - fx"
4,0.3,"square(fx - y)"
5,0.5,"aq(y, fx) + -0.25"
6,0.25,"-1.0 * (y * plog(fx))"
8,0.25,"(-1.0 * (y * plog(fx))) * 1.0"
"""


@pytest.mark.parametrize(
    ("printed", "value"),
    [
        ("1.5", 1.5),
        ("1.0f-7", 1e-7),
        ("-2.5f-1", -0.25),
        ("Inf", math.inf),
        ("-Inf", -math.inf),
        ("1.0e-7", 1e-7),
        ("Inf32", math.inf),
    ],
)
def test_julia_numbers_as_string_prints_them(printed, value):
    assert julia_float(printed) == value


def test_julia_nan_reads_as_nan():
    assert math.isnan(julia_float("NaN"))


def test_hall_of_fame_csv_imports_into_a_pareto_front(tmp_path):
    path = tmp_path / "hall_of_fame.csv"
    path.write_text(HALL_OF_FAME, encoding="utf-8")
    rows = read_hall_of_fame_csv(path)
    assert [r.complexity for r in rows] == [1, 3, 4, 5, 6, 8]
    assert rows[0].loss == math.inf and rows[2].loss == pytest.approx(0.3)

    twin, copy = "(-1.0 * (y * log(fx)))", "((-1.0 * (y * log(fx))) * 1.0)"
    evaluator = FakeEvaluator(fitness={"square((fx - y))": 0.3, twin: 0.25, "(aq(y, fx) + -0.25)": 0.5})
    with LossCallback(evaluator) as callback:
        for row in rows:
            callback(row.equation)
    results = callback.results()
    # Let the complexity-8 row share the complexity-6 row's fitness, as the
    # evaluator's gradient-equivalence cache would, and reject another.
    results[copy] = FitnessResult(copy, 0.25, "equivalent", (1.0,) * 7, 8, reused_from=twin)
    results["(y - fx)"] = FitnessResult("(y - fx)", math.inf, "rejected", (1.0, 1.0), 3)

    entries = front_entries(rows, results.get)
    assert [e.expression for e in entries] == ["square((fx - y))", "(aq(y, fx) + -0.25)", twin, twin]
    for entry in entries:
        assert entry.weights == results[entry.expression].weights  # learned, not unit, weights
    front = ParetoFront(HallOfFame(entries).entries(), task_kind="classification")
    assert [(e.complexity, e.expression, e.fitness) for e in front] == [(4, "square((fx - y))", 0.3), (6, twin, 0.25)]
    assert front.to_csv_text().startswith("Complexity,Loss,Equation\n")


def test_hall_of_fame_csv_must_have_pysr_columns(tmp_path):
    path = tmp_path / "hall_of_fame.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Complexity"):
        read_hall_of_fame_csv(path)
