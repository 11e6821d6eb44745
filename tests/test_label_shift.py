"""Label shift between the training and validation rows, and the final selection's ``selection_scoring="auto"``."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from clihelpers import invoke

import evomal_sr as es
from evomal_sr.core.presets import resolve_preset
from evomal_sr.evaluation.label_shift import SHIFT_LEVEL, label_shift, resolve_scoring
from evomal_sr.evaluation.selection import select_final, select_with_settings
from evomal_sr.results.front import FrontEntry, ParetoFront


def _labels(counts):
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


def _task(train, val):
    return SimpleNamespace(kind="classification", n_outputs=len(train), y_train=_labels(train), y_val=_labels(val))


def test_the_test_is_pearsons_chi_square_by_hand():
    # counts [[30, 10], [10, 30]]: every expected count is 20, so the statistic is 4 x 10^2 / 20 = 20 on 1 df,
    # whose survival function is erfc(sqrt(20 / 2))
    shift = label_shift(_task([30, 10], [10, 30]))
    assert (shift.statistic, shift.dof) == (pytest.approx(20.0), 1)
    assert shift.p_value == pytest.approx(math.erfc(math.sqrt(10.0)), rel=1e-9)
    assert shift.shifted and str(shift) == "chi-square 20.0 on 1 df, p = 7.7e-06"
    # 3 classes, 2 df: the survival function is exp(-x / 2)
    even = label_shift(_task([12, 10, 8], [10, 10, 10]))
    assert even.dof == 2 and even.p_value == pytest.approx(math.exp(-even.statistic / 2), rel=1e-9)
    assert not even.shifted and even.p_value > SHIFT_LEVEL


def test_a_class_in_neither_split_adds_no_degree_of_freedom():
    assert label_shift(_task([5, 0, 5], [5, 0, 5])).dof == 1
    assert label_shift(_task([5, 0], [5, 0])).p_value == 1.0


def test_imbalance_in_the_training_rows_is_label_shift_and_noise_is_not():
    assert label_shift(es.Task.builtin("breast_cancer", seed=0, imbalance=9.0)).shifted
    assert not label_shift(es.Task.builtin("digits", seed=0, label_noise=0.3, noisy_splits=("train", "val"))).shifted
    assert label_shift(es.Task.builtin("diabetes", seed=0)) is None


@pytest.mark.parametrize(
    ("options", "scoring", "why"),
    [
        ({"name": "breast_cancer", "imbalance": 9.0}, "validation-folds", "auto: the training rows' class balance"),
        ({"name": "breast_cancer"}, "validation", "auto: no label shift (chi-square"),
        ({"name": "diabetes"}, "validation", "auto: a regression task"),
    ],
)
def test_auto_scores_on_validation_folds_only_under_label_shift(options, scoring, why):
    resolved, reason = resolve_scoring("auto", es.Task.builtin(seed=0, **options))
    assert resolved == scoring and reason.startswith(why)
    assert resolve_scoring("validation", None) == ("validation", "")


@pytest.mark.parametrize(
    ("options", "scoring", "why"),
    [
        ({"name": "breast_cancer", "imbalance": 9.0}, "validation-folds", "auto-regression: the training rows'"),
        ({"name": "breast_cancer"}, "validation", "auto-regression: no label shift (chi-square"),
        ({"name": "diabetes"}, "validation-folds", "auto-regression: a regression task"),
        ({"name": "friedman1", "label_noise": 0.2}, "validation-folds", "auto-regression: a regression task"),
    ],
)
def test_auto_regression_also_scores_regression_tasks_on_validation_folds(options, scoring, why):
    resolved, reason = resolve_scoring("auto-regression", es.Task.builtin(seed=0, **options))
    assert resolved == scoring and reason.startswith(why)


#: the standard preset's final selection, short enough for a test
SHORT = {"selection_steps": 20, "selection_folds": 3, "selection_finalists": 0}


def test_the_standard_preset_scores_a_regression_task_on_validation_folds_by_mae():
    task = es.Task.builtin("diabetes", seed=0, model="linear")
    front = ParetoFront([FrontEntry("square(fx - y)", (1.0,) * 3, 0.5, 4)], task_kind="regression")
    settings = resolve_preset("standard", **SHORT)
    result = select_with_settings(front, task, settings, verbose=0)
    explicit = select_with_settings(front, task, settings, verbose=0, scoring="validation-folds")
    assert result.scoring == "validation-folds" and result.metric == "mae"  # MAE chooses and scores (regression)
    assert result.to_dict()["scoring_note"] == "auto-regression: a regression task"
    assert [r.errors for r in result.rows] == [r.errors for r in explicit.rows]  # the same folds and runs
    by_mse = select_with_settings(front, task, resolve_preset("standard", **SHORT, selection_metric="task"), verbose=0)
    assert by_mse.metric == "task" and [r.errors for r in by_mse.rows] != [r.errors for r in result.rows]


def test_the_standard_preset_scores_a_classifier_by_its_error_rate_whatever_the_metric():
    task = es.Task.builtin("iris", seed=0, model="linear")
    front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.1, 5)], task_kind="classification")
    result = select_with_settings(front, task, resolve_preset("standard", **SHORT), verbose=0)
    by_rate = select_with_settings(front, task, resolve_preset("standard", **SHORT, selection_metric="task"), verbose=0)
    assert [r.errors for r in result.rows] == [r.errors for r in by_rate.rows]


def test_the_selection_records_what_auto_chose_and_why():
    task = es.Task.builtin("breast_cancer", seed=0, model="linear", imbalance=9.0)
    front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.1, 5)], task_kind="classification")
    result = select_final(front, task, steps=20, verbose=0, scoring="auto")
    explicit = select_final(front, task, steps=20, verbose=0, scoring="validation-folds")
    assert result.scoring == "validation-folds" and result.to_dict()["scoring_note"].startswith("auto: the training")
    assert [r.errors for r in result.rows] == [r.errors for r in explicit.rows]  # the same folds and runs
    assert "scoring auto: the training rows' class balance differs" in str(result)
    assert explicit.to_dict()["scoring_note"] == ""


def test_the_cli_takes_the_selection_scoring(tmp_path):
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--final-selection", "fair", "-q"]
    result = invoke(*args, "--selection-scoring", "auto", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert (saved["scoring"], saved["scoring_note"][:19]) == ("validation", "auto: no label shif")
    bad = invoke(*args, "--selection-scoring", "rows", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "'rows' is not one of 'validation', 'folds', 'validation-folds', 'auto'" in bad.output
    assert "auto-regression" in bad.output
