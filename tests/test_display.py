"""Readable outputs: simplified equations, the front table and plot, indexing, selection, exports."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from clihelpers import assert_one_line_error, invoke
from hypothesis import given, settings
from strategies import expressions

from evomal_sr import Expression, LossSearch
from evomal_sr.errors import ConfigError
from evomal_sr.results.export import export_loss, torch_source
from evomal_sr.results.front import FrontEntry, ParetoFront


def _entry(text, fitness, first_weight=1.0):
    expr = Expression.parse(text)
    return FrontEntry(str(expr), (first_weight,) + (1.0,) * (expr.size - 2), fitness, expr.complexity)


FRONT = ParetoFront(
    [
        _entry("square((fx - y))", 0.5, 1.23456789),
        _entry("(square((fx - y)) + abs(fx))", 0.3),
        _entry("(square((fx - y)) + abs((fx * y)))", 0.29),
    ],
    task_kind="regression",
)


@pytest.mark.parametrize(
    "text,simple",
    [
        ("sqrt((1.0 + 1.0)) * y * fx", "(1.4142135623730951 * (y * fx))"),
        ("tanh(-1.0) + (y * fx)", "(-0.7615941559557649 + (y * fx))"),
        ("abs(abs((y - fx)))", "abs((y - fx))"),
        ("-(-(y * fx))", "(y * fx)"),
        ("(2.0 * y) * (0.5 * fx)", "(y * fx)"),
    ],
)
def test_simplified_forms(text, simple):
    assert str(Expression.parse(text).simplified()) == simple


@settings(max_examples=60, deadline=None)
@given(expressions())
def test_simplification_keeps_the_function(expr):
    rng = np.random.default_rng(0)
    y, fx = rng.uniform(0.05, 1.0, 64), rng.uniform(0.05, 1.0, 64)
    before, after = expr.evaluate_numpy(y, fx), expr.simplified().evaluate_numpy(y, fx)
    finite = np.isfinite(before) & (np.abs(before) < 1e12)
    np.testing.assert_allclose(after[finite], before[finite], rtol=1e-9, atol=1e-9)


def test_equations_show_four_significant_digits_and_json_stays_exact(tmp_path):
    assert FRONT[0].equation() == "square((1.235 * (fx - y)))"
    assert FRONT[0].equation(digits=None).startswith("square((1.2345678")  # the float32 weight, exactly
    assert "square((1.235 * (fx - y)))" in FRONT.to_csv_text()
    FRONT.to_json(tmp_path / "pareto.json")
    reloaded = ParetoFront.from_dict(__import__("json").loads((tmp_path / "pareto.json").read_text()))
    assert reloaded[0].weights[0] == 1.23456789


def test_scores_and_selection_rules():
    scores = FRONT.scores()
    gap = FRONT[1].complexity - FRONT[0].complexity
    assert scores[0] == 0.0 and scores[1] == pytest.approx(np.log(0.5 / 0.3) / gap)
    assert FRONT.select("accuracy") is FRONT[2] and FRONT.select("score") is FRONT[1]
    assert FRONT.select("best") is FRONT[1]  # 0.3 is within 1.5x of 0.29 and scores highest
    table = FRONT.table().splitlines()
    assert "score" in table[0] and "pick" in table[0]
    assert "best" in table[2] and "accuracy" in table[3]
    with pytest.raises(ConfigError, match="model_selection"):
        LossSearch(model_selection="fastest")._validated()


def test_negative_index_is_python_indexing_and_the_message_says_so():
    assert FRONT.select(-1) is FRONT[2] and FRONT.select_index(-3) == 0
    with pytest.raises(ConfigError, match=r"0 to 2, or -3 to -1"):
        FRONT.select(3)
    with pytest.raises(ConfigError, match=r"out of range"):
        FRONT.select(-4)


def test_front_and_export_take_negative_indices(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    FRONT.to_json(run / "pareto.json")
    result = invoke("front", run, "--index", "-1")
    assert result.exit_code == 0 and "index       2" in result.stdout
    assert invoke("export", run, "--index", "-3", "--format", "sympy").exit_code == 0
    assert_one_line_error(invoke("front", run, "--index", "-4"), "-3 to -1")


def test_to_dataframe_names_the_extra_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"evomal-sr\[pandas\]"):
        FRONT.to_dataframe()


def test_torch_export_docstring_names_the_written_file(tmp_path):
    loss = FRONT.best_loss()
    assert "from my_loss import LearnedLoss" in torch_source(loss, filename="my_loss.py")
    assert "from learned_loss import" in torch_source(loss, filename="my-loss.py")  # not importable: said so
    run = tmp_path / "run"
    run.mkdir()
    FRONT.to_json(run / "pareto.json")
    assert invoke("export", run, "--format", "torch", "-o", tmp_path / "chosen.py").exit_code == 0
    assert "from chosen import LearnedLoss" in (tmp_path / "chosen.py").read_text()


def test_sympy_export_is_simplified():
    text = export_loss(
        ParetoFront(
            [FrontEntry("(sqrt((1.0 + 1.0)) * square((fx - y)))", (1.0,) * 8, 0.2, 7)], task_kind="regression"
        ).best_loss(),
        "sympy",
    )
    assert text.strip() == "1.4142135623731*(fx - y)**2"


def test_plot_numbers_every_point_and_labels_the_axes(tmp_path, monkeypatch):
    import matplotlib.figure

    captured = {}
    original = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        captured["figure"] = self
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    FRONT.plot(tmp_path / "pareto.png")
    plot, table = captured["figure"].axes
    assert plot.get_xlabel().startswith("complexity") and "MSE" in plot.get_ylabel()
    assert sorted(t.get_text() for t in plot.texts) == ["0", "1", "2"]
    listing = table.texts[0].get_text()
    assert all(e.equation()[:40] in listing for e in FRONT)
    assert (tmp_path / "pareto.png").stat().st_size > 0
