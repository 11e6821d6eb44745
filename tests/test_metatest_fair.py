"""The fair meta-test: zoo baselines by name, a tuned learning rate per method, early stopping, paired statistics."""

from __future__ import annotations

import math

import pytest

import evomal_sr as es
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.report import paired_difference


@pytest.fixture(scope="module")
def iris():
    return es.Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def tuned(iris):
    return es.meta_test(
        es.known_loss("cross-entropy", "classification"),
        iris,
        seeds=2,
        steps=200,
        tune_lr=True,
        baselines=["mae", "gce"],
        eval_every=20,
    )


def test_a_tuned_meta_test_carries_lr_and_both_errors(tuned):
    assert [r.method for r in tuned.methods] == ["cross-entropy", "mae", "gce"]
    for row in tuned.methods:
        base = [0.003, 0.01, 0.03, 0.1, 0.3]  # the preset's lr (0.01) x 0.3-30, then any extension past an edge
        assert row.lr in row.lr_grid and all(any(math.isclose(v, b) for v in row.lr_grid) for b in base)
        assert row.lr_grid == sorted(row.lr_grid) and len(row.lr_scores) == len(row.lr_grid) <= 5 + 2
        n = len(row.lr_grid)
        assert row.lr == row.lr_grid[min(range(n), key=lambda g: (row.lr_scores[g], g))]
        assert len(row.errors) == len(row.early_errors) == len(row.stop_steps) == 2
        assert all(0 <= s <= 200 and s % 20 == 0 for s in row.stop_steps)
        # the early-stopped error is the final run's test curve at the selection run's best-validation step
        for curve, stop, early in zip(row.test_curves, row.stop_steps, row.early_errors):
            assert curve[row.curve_steps.index(stop)] == early
        for curve, stop in zip(row.val_curves, row.stop_steps):
            assert min(curve) == curve[row.curve_steps.index(stop)]


def test_learned_equal_to_baseline_is_within_noise_and_same_numbers(tuned):
    # the tested loss *is* cross-entropy; as the standard loss is already in the run it is not repeated
    assert tuned.baseline is None or tuned.baseline.method == "cross-entropy"


def test_same_seeds_same_minibatches_same_numbers(iris):
    ce = es.known_loss("cross-entropy", "classification")
    report = es.meta_test(ce, iris, seeds=2, steps=60, baselines=["standard"], eval_every=10, method="copy")
    tested, base = report["copy"], report.baseline
    assert tested.errors == base.errors and tested.early_errors == base.early_errors
    row = next(r for r in report.rows() if r["method"] == "copy")
    assert row["early_vs_baseline"] == 0.0 and row["early_verdict"] == "within noise"
    assert "copy" in str(report) and report.table() in str(report)
    assert str(report).startswith(report.protocol()) and str(report).endswith(report.comparison())
    assert "copy vs the best known loss (cross-entropy): early-stopped error rate +0.0000" in report.comparison()


def test_tuning_never_looks_at_test_rows(iris):
    ce = es.known_loss("cross-entropy", "classification")
    a = es.meta_test(ce, iris, seeds=1, steps=40, tune_lr=True, eval_every=10, baseline=False)
    changed = iris.to("cpu")
    changed.y_test = (changed.y_test + 1) % 3  # scrambled test labels change no choice
    b = es.meta_test(ce, changed, seeds=1, steps=40, tune_lr=True, eval_every=10, baseline=False)
    assert a.methods[0].lr == b.methods[0].lr and a.methods[0].stop_steps == b.methods[0].stop_steps


def test_zoo_baselines_and_regression(iris):
    sin = es.Task.builtin("sinusoid", seed=0)
    report = es.meta_test(None, sin, seeds=2, steps=30, baselines="zoo", eval_every=10)
    assert [r.method for r in report.methods] == list(es.KNOWN_LOSSES["regression"])
    assert report.baseline.method == "mse" and report.metric == "MSE"
    assert {r["method"] for r in report.rows()} == set(es.KNOWN_LOSSES["regression"])


def test_paired_difference_verdicts():
    assert paired_difference([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])[2] == "better"
    assert paired_difference([0.3, 0.4, 0.5], [0.2, 0.3, 0.4])[2] == "worse"
    assert paired_difference([0.1, 0.35, 0.3], [0.2, 0.3, 0.3])[2] == "within noise"
    assert paired_difference([0.1], [0.2])[2] == "n/a"
    mean, se, _ = paired_difference([1.0, 3.0], [0.0, 0.0])
    assert mean == 2.0 and math.isclose(se, 1.0)


@pytest.mark.parametrize(("shift", "d"), [(0.0, 0.02), (0.1, 0.1), (0.25, 1 / 120), (0.0, 1 / 30)])
def test_a_mean_of_exactly_two_standard_errors_is_within_noise(shift, d):
    # three of nine seeds differing by the same d: the mean is d / 3 and exactly twice its SE, so a
    # strict comparison alone was settled by float round-off, differently for different error levels
    reference = [shift + 0.1 * k for k in range(9)]
    values = [r - (d if k < 3 else 0.0) for k, r in enumerate(reference)]
    mean, se, verdict = paired_difference(values, reference)
    assert mean == pytest.approx(-2 * se) and verdict == "within noise"
    assert paired_difference([v - 1e-3 for v in values], reference)[2] == "better"


def test_report_round_trip_and_markdown(tuned, tmp_path):
    tuned.to_json(tmp_path / "m.json")
    again = es.MetaTestReport.load(tmp_path / "m.json")
    assert again.to_dict() == tuned.to_dict()
    text = tuned.to_markdown()
    assert "| gce |" in text and "curves.png" in text
    assert tuned.plot_curves(tmp_path / "curves.png").stat().st_size > 5000


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baselines": ["hubert"]}, "cross-entropy, label-smoothing"),
        ({"baselines": ["huber"]}, "regression loss"),
        ({"tune_lr": True, "lr_grid": []}, "empty"),
        ({"tune_lr": True, "lr_grid": [0.1, -1.0]}, "positive"),
        ({"tune_lr": True, "lr_grid": [0.0]}, "positive"),
        ({"steps": 10, "eval_every": 20}, "eval_every"),
        ({"baseline": False, "baselines": []}, "nothing to meta-test"),
    ],
)
def test_bad_settings_are_config_errors(iris, kwargs, match):
    loss = None if kwargs.get("baseline") is False else es.known_loss("mae", "classification")
    with pytest.raises(ConfigError, match=match):
        es.meta_test(loss, iris, seeds=1, steps=kwargs.pop("steps", 20), **kwargs)
