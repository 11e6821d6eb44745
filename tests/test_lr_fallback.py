"""``lr_fallback``: a final run that diverged or collapsed before its stopping step falls back to a smaller lr."""

from __future__ import annotations

import math

import pytest
import torch

import evomal_sr as es
from evomal_sr.evaluation import metatest
from evomal_sr.evaluation.lr_tuning import LrSelection, collapsed, fall_back, fallback_lr
from evomal_sr.evaluation.population import CopySpec, PopulationRun
from evomal_sr.evaluation.report import MetaTestReport

SEEDS = [0, 1]


@pytest.fixture(scope="module")
def iris():
    return es.Task.builtin("iris", seed=0, model="linear")


def run(iris, **options):
    options = {"seeds": SEEDS, "steps": 30, "eval_every": 10, "tune_lr": True, "verbose": 0, **options}
    return metatest.meta_test(es.LearnedLoss("-(y * log(fx))"), iris, baselines=["mae"], **options)


def poisoned(monkeypatch, iris, bad, curves="curves", value=math.inf):
    """Set the final run's ``curves`` (test errors; ``"loss_curves"``: training losses) to ``value`` after step 0
    for the copies where ``bad(copy)`` holds."""
    real = metatest.train_copies
    final_rows = len(iris.X_train) + len(iris.X_val)

    def train_copies(task, modules, copies, train_data, eval_data, **options):
        result = real(task, modules, copies, train_data, eval_data, **options)
        if len(train_data[0]) == final_rows:
            for k, c in enumerate(copies):
                if bad(c):
                    curve = getattr(result, curves)[k]
                    curve[1:] = [value] * (len(curve) - 1)
        return result

    monkeypatch.setattr(metatest, "train_copies", train_copies)


@pytest.mark.parametrize(
    "grid, lr, expected", [([0.1, 0.3, 1.0], 1.0, 0.3), ([0.1, 0.3], 0.1, None), ([0.3], 0.3, None)]
)
def test_fallback_lr_is_the_next_smaller_lr_of_the_grid(grid, lr, expected):
    assert fallback_lr(grid, lr) == expected


def test_a_diverged_final_run_falls_back_and_the_other_methods_are_untouched(iris, monkeypatch):
    plain = run(iris, lr_fallback=False)
    chosen = plain["learned"].lr
    poisoned(monkeypatch, iris, lambda c: c.loss == 0 and c.lr == chosen)
    report = run(iris)
    row = report["learned"]
    assert row.lr_fallbacks == [chosen]
    assert row.lr == fallback_lr(row.lr_grid, chosen) and row.lr_grid == plain["learned"].lr_grid
    assert all(math.isfinite(e) for e in row.early_errors)
    for curve, stop, early, val in zip(row.test_curves, row.stop_steps, row.early_errors, row.val_curves):
        assert curve[row.curve_steps.index(stop)] == early  # the stop of the selection run at the new lr
        assert stop == row.curve_steps[min(range(len(val)), key=lambda j: (val[j], j))]
    assert report["mae"].to_dict() | {"seconds": 0} == plain["mae"].to_dict() | {"seconds": 0}
    assert "fell back to the next smaller lr (learned from" in report.protocol()


def test_without_the_fallback_the_diverged_row_is_reported_as_it_is(iris, monkeypatch):
    plain = run(iris, lr_fallback=False)
    poisoned(monkeypatch, iris, lambda c: c.loss == 0 and c.lr == plain["learned"].lr)
    row = run(iris, lr_fallback=False)["learned"]
    assert row.lr == plain["learned"].lr and row.lr_fallbacks == []
    assert math.isinf(row.early_mean)


def test_a_method_that_diverges_at_every_lr_walks_down_to_the_smallest(iris, monkeypatch):
    poisoned(monkeypatch, iris, lambda c: c.loss == 0)
    row = run(iris)["learned"]
    assert row.lr == row.lr_grid[0]
    assert row.lr_fallbacks == sorted(v for v in row.lr_grid if v > row.lr_grid[0] and v <= row.lr_fallbacks[0])[::-1]
    assert math.isinf(row.early_mean)  # nothing smaller to go to: reported as it is


def test_no_divergence_means_the_same_report_with_or_without_the_fallback(iris):
    on, off = run(iris).to_dict(), run(iris, lr_fallback=False).to_dict()
    for row in (*on["methods"], *off["methods"]):
        row.pop("seconds")
    on.pop("seconds"), off.pop("seconds")
    assert on.pop("lr_fallback") is True and off.pop("lr_fallback") is False
    assert on.pop("lr_collapse") is True and off.pop("lr_collapse") is False
    assert on == off


def test_lr_fallbacks_round_trip_and_older_files_have_none(iris, monkeypatch, tmp_path):
    poisoned(monkeypatch, iris, lambda c: c.loss == 1 and c.lr >= 0.3)
    report = run(iris)
    path = report.to_json(tmp_path / "report.json")
    loaded = MetaTestReport.load(path)
    assert loaded["mae"].lr_fallbacks == report["mae"].lr_fallbacks and loaded.lr_fallback and loaded.lr_collapse
    assert "a final run that diverged or collapsed before its stopping step fell back" in loaded.protocol()
    data = report.to_dict()
    data.pop("lr_collapse")  # a file from before the collapse rule
    before = MetaTestReport.from_dict(data)
    assert before.lr_fallback and not before.lr_collapse
    assert "a final run that diverged before its stopping step fell back" in before.protocol()
    data.pop("lr_fallback")
    for row in data["methods"]:
        row.pop("lr_fallbacks")
    old = MetaTestReport.from_dict(data)
    assert not old.lr_fallback and all(r.lr_fallbacks == [] for r in old.methods)


def test_an_untuned_meta_test_never_falls_back(iris, monkeypatch):
    poisoned(monkeypatch, iris, lambda c: True)
    report = run(iris, tune_lr=False)
    assert not report.lr_fallback and not report.lr_collapse and all(r.lr_fallbacks == [] for r in report.methods)


def test_fall_back_replaces_only_the_moved_copies_rows_included():
    """Two methods x two seeds; method 1 diverged at 0.3 before its stop: its copies are redone at 0.1."""
    chosen = LrSelection(steps=20, curve_steps=[0, 10, 20])
    for i in (0, 1):
        for lr in (0.1, 0.3):
            for s in SEEDS:
                chosen.curves[CopySpec(i, lr, s)] = [0.9, 0.5, 0.6]
        chosen.grids[i], chosen.scores[i], chosen.fallbacks[i] = [0.1, 0.3], [0.5, 0.5], []
        chosen.choose(i, 0.3, SEEDS)
    rows = [torch.zeros(4, 3) for _ in range(3)]
    curves = [[0.9, 0.4, 0.4]] * 2 + [[0.9, math.inf, 0.5]] * 2
    final = PopulationRun([0, 10, 20], curves, [[1.0] * 3] * 4, [False] * 4, rows)
    calls = []

    def redo(copies):
        calls.append(copies)
        return PopulationRun([0, 10, 20], [[0.9, 0.2, 0.3]] * 2, [[2.0] * 3] * 2, [True] * 2, [torch.ones(2, 3)] * 3)

    out = fall_back(chosen, final, SEEDS, redo)
    assert calls == [[CopySpec(1, 0.1, 0), CopySpec(1, 0.1, 1)]]
    assert chosen.lr == {0: 0.3, 1: 0.1} and chosen.fallbacks == {0: [], 1: [0.3]}
    assert out.curves == [[0.9, 0.4, 0.4]] * 2 + [[0.9, 0.2, 0.3]] * 2
    assert out.diverged == [False, False, True, True] and out.loss_curves[2] == [2.0] * 3
    assert all(p[:2].eq(0).all() and p[2:].eq(1).all() for p in out.row_points)


def _one_method(loss_at_stop: float) -> tuple[LrSelection, PopulationRun]:
    """One method chosen at 0.3 (stopping at step 10) whose final run's training loss there is ``loss_at_stop``."""
    chosen = LrSelection(steps=20, curve_steps=[0, 10, 20])
    chosen.curves = {CopySpec(0, lr, 0): [0.9, 0.5, 0.6] for lr in (0.1, 0.3)}
    chosen.grids, chosen.scores, chosen.fallbacks = {0: [0.1, 0.3]}, {0: [0.5, 0.5]}, {0: []}
    chosen.choose(0, 0.3, [0])
    return chosen, PopulationRun([0, 10, 20], [[0.9, 0.63, 0.63]], [[0.7, loss_at_stop, 0.6]], [False])


@pytest.mark.parametrize("loss_at_stop, falls", [(47.0, True), (7.8, True), (7.6, False), (1.5, False), (0.3, False)])
def test_a_final_run_whose_training_loss_blew_up_at_its_stop_falls_back(loss_at_stop, falls):
    """Collapsed: finite, but more than ten times its first loss (0.7) above it (here: above 7.7)."""
    chosen, final = _one_method(loss_at_stop)
    redo = PopulationRun([0, 10, 20], [[0.9, 0.2, 0.3]], [[0.7, 0.4, 0.3]], [False])
    out = fall_back(chosen, final, [0], lambda copies: redo)
    assert (chosen.lr, chosen.fallbacks) == (({0: 0.1}, {0: [0.3]}) if falls else ({0: 0.3}, {0: []}))
    assert out.curves == ([[0.9, 0.2, 0.3]] if falls else [[0.9, 0.63, 0.63]])


@pytest.mark.parametrize(
    "curve, index, expected",
    [
        ([0.7, 47.0], 1, True),
        ([-2.0, 19.0], 1, True),  # a loss below zero at first: its size sets the scale
        ([-2.0, 17.0], 1, False),
        ([1.74, 3.54], 1, False),  # MSE under heavy-tailed targets: a noisy window, not a collapse
        ([0.7, 47.0, 0.6], 2, False),  # only the window ending at the stop counts
        ([0.7, math.inf], 1, False),  # non-finite: divergence, told apart by the test curve
        ([math.nan, 5.0], 1, False),
    ],
)
def test_collapsed_compares_the_window_at_the_stop_with_the_first_loss(curve, index, expected):
    assert collapsed(curve, index) is expected


def test_a_collapsed_final_run_falls_back_in_the_meta_test(iris, monkeypatch):
    plain = run(iris, lr_fallback=False)
    chosen = plain["learned"].lr
    # finite, but far above where it started
    poisoned(monkeypatch, iris, lambda c: c.loss == 0 and c.lr == chosen, curves="loss_curves", value=1e6)
    report = run(iris)
    assert report["learned"].lr_fallbacks == [chosen]
    assert report["mae"].to_dict() | {"seconds": 0} == plain["mae"].to_dict() | {"seconds": 0}
    assert run(iris, lr_fallback=False)["learned"].lr_fallbacks == []
