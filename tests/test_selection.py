"""The final selection: folds of the training + validation rows, the decision rule, the search's use of it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from clihelpers import invoke

import evomal_sr as es
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.selection import _finalists, fold_tasks, select_final
from evomal_sr.evaluation.verdict import KNOWN, LEARNED, SelectionRow, decide
from evomal_sr.losses.zoo import KnownLoss
from evomal_sr.results.front import FrontEntry, ParetoFront

FAIR = {"preset": "tiny", "final_selection": "fair", "selection_steps": 30}


@pytest.fixture(scope="module")
def iris():
    return es.Task.builtin("iris", seed=0, model="linear", label_noise=0.2, noisy_splits=("train", "val"))


@pytest.fixture(scope="module")
def distinct():
    X = np.random.default_rng(0).normal(size=(150, 4))  # every row distinct, so rows can be told apart by value
    return es.Task.from_arrays(X, X[:, 0] > 0, seed=0, model="linear")


def _rows_of(t):
    return {tuple(r.tolist()) for r in t}


def test_folds_partition_the_training_and_validation_rows_and_never_touch_the_test_split(distinct):
    iris = distinct
    X, y = iris.train_and_val()
    folds = fold_tasks(iris, 3, seed=0, scoring="folds")
    pool = _rows_of(X)
    tests = [_rows_of(f.X_test) for f in folds]
    assert set().union(*tests) == pool and sum(map(len, tests)) == len(X)  # every row tested exactly once
    for k, f in enumerate(folds):
        parts = [_rows_of(f.X_train), _rows_of(f.X_val), _rows_of(f.X_test)]
        assert sum(map(len, parts)) == len(X) and set().union(*parts) == pool  # disjoint, covering
        assert _rows_of(f.X_val) == tests[(k + 1) % 3]
        assert not _rows_of(f.X_test) & _rows_of(iris.X_test)
        assert torch.equal(f.X_train[:0], X[:0])
    assert iris.X_train.shape[0] == 90  # the task itself is unchanged


def test_validation_scoring_scores_every_fold_on_the_validation_rows(distinct):
    folds = fold_tasks(distinct, 3, seed=0)
    train = _rows_of(distinct.X_train)
    vals = [_rows_of(f.X_val) for f in folds]
    assert set().union(*vals) == train and sum(map(len, vals)) == len(train)  # each training row chooses once
    for f, val in zip(folds, vals):
        assert torch.equal(f.X_test, distinct.X_val) and torch.equal(f.y_test, distinct.y_val)
        assert _rows_of(f.X_train) == train - val
        assert not (_rows_of(f.X_train) | val) & _rows_of(distinct.X_test)


def test_validation_folds_score_each_validation_row_once_and_choose_on_the_others(distinct):
    folds = fold_tasks(distinct, 3, seed=0, scoring="validation-folds")
    val, train = _rows_of(distinct.X_val), _rows_of(distinct.X_train)
    tests = [_rows_of(f.X_test) for f in folds]
    assert set().union(*tests) == val and sum(map(len, tests)) == len(val)  # every validation row scores once
    for f, test in zip(folds, tests):
        assert _rows_of(f.X_val) == val - test  # lr and stopping step chosen on the other validation rows
        assert torch.equal(f.X_train, distinct.X_train) and _rows_of(f.X_train) == train
        assert not (_rows_of(f.X_val) | test) & _rows_of(distinct.X_test)
        assert not f.noisy_mask.any() and len(f.noisy_mask_val) == len(f.y_val)


def test_validation_folds_need_two_validation_rows_per_fold(distinct):
    small = es.Task.from_arrays(distinct.X_train[:40].numpy(), distinct.y_train[:40].numpy(), seed=0, model="linear")
    with pytest.raises(ConfigError, match=r"at least 16 validation rows for 8 folds, got \d+; use fewer folds"):
        fold_tasks(small, 8, seed=0, scoring="validation-folds")


def test_an_unknown_scoring_is_refused(distinct):
    with pytest.raises(ConfigError, match="selection_scoring must be one of validation, folds"):
        fold_tasks(distinct, 3, seed=0, scoring="test")


def test_folds_follow_the_seed(iris):
    a, b, c = (fold_tasks(iris, 3, seed=s)[0].X_val for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("folds", [2, 0, True, 2.5])
def test_too_few_folds_are_refused(iris, folds):
    with pytest.raises(ConfigError, match="selection_folds"):
        fold_tasks(iris, folds, seed=0)


def _row(name, kind, errors):
    return SelectionRow(name, kind, name, list(errors))


def test_a_learned_loss_is_returned_only_when_it_beats_the_best_known_by_the_margin():
    learned = {"learned #1": es.LearnedLoss("-(y * log(fx))")}
    clear = [
        _row("learned #1", LEARNED, [0.10, 0.11, 0.09]),
        _row("sce", KNOWN, [0.20, 0.22, 0.21]),
        _row("mae", KNOWN, [0.30, 0.30, 0.30]),
    ]
    result = decide(clear, learned, "classification", 1.0, folds=3, steps=10, seconds=0.0)
    assert (result.winner, result.winner_kind, result.best_known) == ("learned #1", "learned", "sce")
    assert result.module is learned["learned #1"] and "returning the learned loss" in result.verdict
    noisy = [_row("learned #1", LEARNED, [0.10, 0.30, 0.14]), _row("sce", KNOWN, [0.20, 0.22, 0.21])]
    result = decide(noisy, learned, "classification", 1.0, folds=3, steps=10, seconds=0.0)
    assert (result.winner, result.winner_kind) == ("sce", "known")
    assert isinstance(result.module, KnownLoss) and result.module.name == "sce"
    assert result.verdict.startswith("no learned loss beat sce") and result.verdict.endswith("returning sce.")
    zero_margin = decide(noisy, learned, "classification", 0.0, folds=3, steps=10, seconds=0.0)
    assert zero_margin.winner == "learned #1"  # lower mean, no margin asked


def test_without_a_learned_loss_the_best_known_is_returned():
    rows = [_row("mse", KNOWN, [1.0, 1.1, 0.9]), _row("huber", KNOWN, [0.5, 0.6, 0.4])]
    result = decide(rows, {}, "regression", 1.0, folds=3, steps=10, seconds=0.0)
    assert result.winner == "huber" and result.best_learned is None and math.isnan(result.difference)
    assert result.verdict == "no learned loss on the front; returning huber."


def test_select_final_scores_the_short_list_and_every_known_loss(iris):
    entries = [
        FrontEntry("square((fx - y))", (1.0,) * 3, 0.3, 4),
        FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5),
        FrontEntry("(-(y * log(fx)) + abs((fx - y)))", (1.0,) * 9, 0.1, 10),
    ]
    front = ParetoFront(entries, task_kind="classification")
    result = select_final(front, iris, shortlist=2, steps=20, seed=0)
    names = {r.name: r for r in result.rows}
    assert {n for n, r in names.items() if r.kind == LEARNED} == {"learned #1", "learned #2"}
    assert names["learned #1"].loss.startswith("(-(y * log(fx)) + abs")  # the most accurate first
    assert {n for n, r in names.items() if r.kind == KNOWN} == set(es.KNOWN_LOSSES["classification"])
    assert all(len(r.errors) == 3 for r in result.rows)
    again = select_final(front, iris, shortlist=2, steps=20, seed=0)
    assert again.to_dict()["rows"] == result.to_dict()["rows"]  # deterministic
    assert json.dumps(result.to_dict())  # JSON-ready


def test_successive_halving_runs_only_the_finalists_after_the_screening_folds(iris):
    entries = [FrontEntry("square((fx - y))", (1.0,) * 3, 0.3, 4), FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5)]
    front = ParetoFront(entries, task_kind="classification")
    full = select_final(front, iris, shortlist=2, folds=4, steps=20, seed=0, verbose=0)
    halved = select_final(front, iris, shortlist=2, folds=4, steps=20, seed=0, verbose=0, finalists=2)
    lengths = {r.name: len(r.errors) for r in halved.rows}
    finalists = {n for n, length in lengths.items() if length == 4}
    assert set(lengths.values()) == {2, 4} and len(lengths) == len(full.rows)
    assert 2 <= len(finalists) <= 4 and {halved.best_known, halved.best_learned} <= finalists
    assert any(n.startswith("learned #") for n in finalists)  # the best learned row always runs every fold
    screened = {r.name: r.errors for r in full.rows}
    for r in halved.rows:  # the same folds and seeds: the screening errors are the full run's first two
        assert r.errors[:2] == screened[r.name][:2]
    assert halved.winner in finalists


@pytest.mark.parametrize("folds", [3, 5, 7])
def test_a_lead_of_exactly_one_standard_error_is_no_win(folds):
    # one fold of n differing by d: the mean difference is d / n and its SE exactly |d| / n, so at
    # margin 1 only float round-off decided (iris-noise30-val: learned #2 "beat" sce by 0.0067 +- 0.0067)
    known = [0.3, 1 / 3, 0.5, 0.4, 0.3, 0.2, 0.1][:folds]
    learned = [known[0] - 1 / 30, *known[1:]]
    rows = [_row("learned #1", LEARNED, learned), _row("sce", KNOWN, known), _row("mae", KNOWN, [0.5] * folds)]
    at_one = decide(rows, {"learned #1": None}, "classification", 1.0)
    assert at_one.winner == "sce" and at_one.difference == pytest.approx(-at_one.standard_error)
    assert decide(rows, {"learned #1": torch.nn.Identity()}, "classification", 0.99).winner == "learned #1"
    same_everywhere = [_row("learned #1", LEARNED, [k - 0.01 for k in known]), _row("sce", KNOWN, known)]
    assert decide(same_everywhere, {"learned #1": torch.nn.Identity()}, "classification", 1.0).winner == "learned #1"


def test_rows_screened_out_by_halving_never_compete_in_the_decision():
    learned = {"learned #1": es.LearnedLoss("-(y * log(fx))"), "learned #2": es.LearnedLoss("square((fx - y))")}
    rows = [
        _row("learned #1", LEARNED, [0.20, 0.21, 0.22, 0.20]),
        _row("learned #2", LEARNED, [0.01, 0.02]),  # a lower mean, but over the two screening folds only
        _row("sce", KNOWN, [0.30, 0.31, 0.30, 0.32]),
        _row("mae", KNOWN, [0.05, 0.05]),
    ]
    result = decide(rows, learned, "classification", 1.0, folds=4, steps=10, seconds=0.0, finalists=2)
    assert (result.best_known, result.best_learned, result.winner) == ("sce", "learned #1", "learned #1")
    assert result.difference == pytest.approx(-0.10, abs=1e-9)  # paired over the same four folds


def test_the_prior_is_returned_unless_the_best_known_loss_beats_it_by_the_margin():
    learned = {"learned #1": es.LearnedLoss("-(y * log(fx))")}
    close = [
        _row("learned #1", LEARNED, [0.30, 0.31, 0.32]),
        _row("sce", KNOWN, [0.20, 0.25, 0.21]),
        _row("mae", KNOWN, [0.22, 0.21, 0.24]),  # sce's lead, 0.003, is within one paired SE
    ]
    result = decide(close, learned, "classification", 1.0, prior="mae", folds=3, steps=10, seconds=0.0)
    assert (result.winner, result.best_known, result.prior) == ("mae", "sce", "mae")
    assert isinstance(result.module, KnownLoss) and result.module.name == "mae"
    assert "nor sce the prior, mae" in result.verdict and result.verdict.endswith("returning mae.")
    assert decide(close, learned, "classification", 1.0, folds=3, steps=10, seconds=0.0).winner == "sce"
    clear = [*close[:2], _row("mae", KNOWN, [0.40, 0.41, 0.42])]
    result = decide(clear, learned, "classification", 1.0, prior="mae", folds=3, steps=10, seconds=0.0)
    assert result.winner == "sce" and "sce beat the prior, mae" in result.verdict
    better = [_row("learned #1", LEARNED, [0.10, 0.11, 0.09]), *close[1:]]
    result = decide(better, learned, "classification", 1.0, prior="mae", folds=3, steps=10, seconds=0.0)
    assert result.winner == "learned #1"  # a learned loss is still judged against the best known one


def test_the_prior_runs_every_fold_and_must_be_a_known_loss_of_the_task(iris):
    front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5)], task_kind="classification")
    result = select_final(front, iris, shortlist=1, folds=4, steps=20, seed=0, verbose=0, finalists=1, prior="mae")
    assert {len(r.errors) for r in result.rows if r.name == "mae"} == {4}
    assert result.to_dict()["prior"] == "mae"
    plain = select_final(front, iris, shortlist=1, folds=4, steps=20, seed=0, verbose=0, finalists=1)
    with_prior = {r.name: r.errors for r in result.rows}
    for r in plain.rows:  # the prior adds runs and changes none (benchmarks/ablation.py derives from this)
        assert with_prior[r.name][: len(r.errors)] == r.errors
    with pytest.raises(ConfigError, match="prior must be a known classification loss"):
        select_final(front, iris, steps=20, verbose=0, prior="huber")
    with pytest.raises(
        ConfigError,
        match="selection_prior must be one of none, robust, robust-classes, robust-shift, mae, sce, gce, log-cosh, "
        "adaptive-huber, got 'huber'",
    ):
        es.LossSearch(selection_prior="huber").fit(iris)


def test_robust_classes_is_sce_above_five_classes():
    from evomal_sr.evaluation.verdict import prior_of

    assert [prior_of("robust-classes", "classification", n) for n in (2, 3, 5, 6, 10)] == ["mae"] * 3 + ["sce"] * 2
    assert prior_of("robust-classes", "regression", 1) == "adaptive-huber"
    assert prior_of("robust-classes", "classification") == "mae"  # the class count unknown: MAE, as "robust"


def test_a_classification_prior_on_a_regression_task_names_the_losses_it_could_be():
    from evomal_sr.evaluation.verdict import prior_of

    assert prior_of("sce", "classification") == "sce"
    with pytest.raises(ConfigError, match="selection_prior 'sce' is not a known regression loss; choose none, robust"):
        prior_of("sce", "regression")


def test_finalists_are_the_best_screened_rows_plus_the_best_of_each_kind():
    errors = {
        "learned #1": [0.5, 0.5],
        "learned #2": [0.1, 0.1],
        "sce": [0.2, 0.2],
        "mae": [0.3, 0.3],
        "ce": [0.9, 0.9],
    }
    learned = {"learned #1": None, "learned #2": None}
    assert _finalists(errors, learned, 1) == {"learned #2", "sce"}
    assert _finalists(errors, learned, 3) == {"learned #2", "sce", "mae"}


@pytest.mark.slow
def test_the_search_returns_the_selection_winner_and_writes_it(iris, tmp_path):
    search = es.LossSearch(seed=0, out_dir=tmp_path / "run", population=4, **FAIR).fit(iris)
    assert search.selection_ is not None
    assert search.best_loss_ is search.selection_.module
    assert isinstance(search.best_learned_loss_, es.LearnedLoss)
    saved = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert saved["winner"] == search.selection_.winner and saved["winner_kind"] in ("learned", "known")
    report = es.meta_test(search.best_loss_, iris, seeds=2, steps=20)  # the returned loss meta-tests as is
    assert len(report.methods) == 2


def test_without_final_selection_best_loss_is_the_fronts_pick(iris):
    search = es.LossSearch(seed=0, preset="tiny", population=4).fit(iris)
    assert search.selection_ is None and search.best_loss_ is search.best_learned_loss_


@pytest.mark.slow
def test_cli_flag_runs_the_selection_and_prints_its_verdict(tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--final-selection",
        "fair",
        "--model",
        "linear",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.stderr
    assert "final selection (3 folds" in result.stdout and "returning" in result.stdout
    assert (out / "selection.json").exists()
    # the silent minute after the last generation is announced (one line, after the last generation's)
    assert result.stderr.strip().splitlines()[-1].startswith("final selection: re-scoring the front's best losses")
    quiet = invoke(
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--model",
        "linear",
        "--out",
        tmp_path / "q",
        "--final-selection",
        "fair",
        "--quiet",
    )
    assert quiet.exit_code == 0 and "final selection: re-scoring" not in quiet.stderr


def test_bad_selection_settings_are_refused():
    with pytest.raises(ConfigError, match="final_selection"):
        es.LossSearch(preset="tiny", final_selection="maybe").fit(es.Task.builtin("iris"))
    with pytest.raises(ConfigError, match="selection_folds"):
        es.LossSearch(preset="tiny", selection_folds=2).fit(es.Task.builtin("iris"))


@pytest.mark.parametrize("metric", ["mae", "huber"])
def test_a_robust_metric_scores_regression_folds_without_the_wild_labels_dominating(metric):
    X = np.random.default_rng(0).normal(size=(120, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    y[:3] += 1e4  # wild labels: whichever rows they fall in, MSE would be dominated by them
    task = es.Task.from_arrays(X, y, seed=0, model="linear")
    front = ParetoFront([FrontEntry("square((fx - y))", (1.0,) * 3, 0.1, 4)], task_kind="regression")
    robust = select_final(front, task, steps=20, seed=0, verbose=0, metric=metric)
    plain = select_final(front, task, steps=20, seed=0, verbose=0)
    assert robust.metric == metric and robust.to_dict()["metric"] == metric
    assert f"metric {metric}" in str(robust) and "metric" not in str(plain)
    assert {r.name for r in robust.rows} == {r.name for r in plain.rows}
    assert max(r.mean for r in robust.rows) < min(r.mean for r in plain.rows)  # O(1) errors, not O(1e4)


def test_every_metric_is_the_error_rate_on_classification(iris):
    front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.1, 5)], task_kind="classification")
    robust = select_final(front, iris, steps=20, seed=0, verbose=0, metric="huber")
    plain = select_final(front, iris, steps=20, seed=0, verbose=0)
    assert [r.errors for r in robust.rows] == [r.errors for r in plain.rows]
    # and it says so: no regression metric is named where none scored
    assert robust.metric == "task" and "metric" not in str(robust).splitlines()[0]


def test_the_cli_takes_the_selection_metric(tmp_path):
    args = ["search", "--dataset", "diabetes", "--preset", "tiny", "--final-selection", "fair", "-q"]
    result = invoke(*args, "--selection-metric", "huber", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "selection.json").read_text())["metric"] == "huber"
    bad = invoke(*args, "--selection-metric", "mse", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "'mse' is not one of 'task', 'mae', 'huber'" in bad.output


def test_an_unknown_selection_metric_is_refused():
    with pytest.raises(ConfigError, match="selection_metric must be one of task, mae, huber, got 'mse'"):
        es.LossSearch(preset="tiny", selection_metric="mse").fit(es.Task.builtin("iris"))


def test_the_standard_preset_decides_with_1_5_standard_errors_of_the_folds_and_rows(tmp_path):
    from evomal_sr.core.presets import resolve_preset

    standard = resolve_preset("standard")  # chosen on the development tasks (RESULTS.md)
    assert (standard.selection_margin, standard.selection_uncertainty) == (1.5, "folds-and-rows")
    # MAE for classification up to five classes, SCE above, MAE for regression; label smoothing under label
    # shift, where each fold's lr and stopping step are chosen on validation rows
    assert (standard.selection_prior, standard.selection_scoring) == ("robust-shift", "auto-regression")
    assert standard.selection_metric == "mae"  # on regression tasks (regression_metric.py); "task" before
    assert resolve_preset("standard", selection_margin=1.0).selection_margin == 1.0
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--final-selection", "fair", "-q"]
    result = invoke(*args, "--selection-margin", "3", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert saved["margin"] == 3.0
    bad = invoke(*args, "--selection-margin", "-1", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "selection_margin must be >= 0, got -1.0" in bad.output


def test_the_cli_sets_the_selection_prior_and_refuses_one_of_the_wrong_kind(tmp_path):
    args = ["search", "--dataset", "diabetes", "--preset", "tiny", "--final-selection", "fair", "-q"]
    result = invoke(*args, "--selection-prior", "log-cosh", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "selection.json").read_text())["prior"] == "log-cosh"
    bad = invoke(*args, "--selection-prior", "sce", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "selection_prior 'sce' is not a known regression loss" in bad.output
    assert not (tmp_path / "bad").exists()  # refused before the search wrote anything
    assert invoke(*args, "--selection-prior", "huber", "--out", tmp_path / "bad").exit_code == 2  # not a choice


@pytest.mark.parametrize(
    ("dataset", "setting", "prior"),
    [
        ("diabetes", "robust", "adaptive-huber"),
        ("diabetes", "log-cosh", "log-cosh"),
        ("diabetes", "mae", "mae"),
        ("iris", "robust", "mae"),
        ("iris", "robust-classes", "mae"),
        ("digits", "robust-classes", "sce"),
    ],
)
def test_the_robust_prior_is_each_task_kinds_noise_tolerant_loss(dataset, setting, prior):
    search = es.LossSearch(**FAIR, selection_prior=setting, verbose=0).fit(es.Task.builtin(dataset, seed=0))
    assert search.selection_.prior == prior
    assert any(r.name == prior and len(r.errors) == search.selection_.folds for r in search.selection_.rows)


def test_selection_lr_extend_reaches_every_folds_meta_test_and_is_recorded(iris, monkeypatch):
    from evomal_sr.core.presets import resolve_preset
    from evomal_sr.evaluation import selection

    seen, real = [], selection.meta_test

    def recording(*args, **kwargs):
        seen.append(kwargs["lr_extend"])
        return real(*args, **kwargs)

    monkeypatch.setattr(selection, "meta_test", recording)
    front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5)], task_kind="classification")
    settings = resolve_preset("tiny", selection_lr_extend=3, selection_steps=20)
    result = selection.select_with_settings(front, iris, settings, verbose=0)
    assert seen == [3] * 3 and result.lr_extend == 3 and result.to_dict()["lr_extend"] == 3
    assert resolve_preset("standard").selection_lr_extend == 0  # the grid as given, as the defaults were chosen
    with pytest.raises(ConfigError, match="selection_lr_extend must be >= 0"):
        resolve_preset("standard", selection_lr_extend=-1)


@pytest.mark.parametrize(
    "options, prior",
    [
        ({"name": "breast_cancer", "imbalance": 9.0}, "label-smoothing"),  # training rows 9:1, validation not
        ({"name": "digits", "imbalance": 5.0}, "label-smoothing"),
        ({"name": "breast_cancer"}, "mae"),  # no label shift: robust-classes' choice
        ({"name": "digits", "label_noise": 0.3, "noise": "pair"}, "sce"),
        ({"name": "diabetes"}, "adaptive-huber"),  # regression has no class balance
    ],
)
def test_robust_shift_is_label_smoothing_under_label_shift_and_robust_classes_elsewhere(options, prior):
    from evomal_sr.evaluation.selection import task_prior

    task = es.Task.builtin(seed=0, **options)
    assert task_prior("robust-shift", task) == prior
    if prior != "label-smoothing":
        assert task_prior("robust-classes", task) == prior


def test_the_selection_runs_the_label_shift_prior_on_every_fold():
    from evomal_sr.core.presets import resolve_preset
    from evomal_sr.evaluation import selection

    task = es.Task.builtin("breast_cancer", seed=0, model="linear", imbalance=9.0)
    front = ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5)], task_kind="classification")
    settings = resolve_preset("tiny", selection_prior="robust-shift", selection_steps=20)
    result = selection.select_with_settings(front, task, settings, verbose=0)
    assert result.prior == "label-smoothing"
    assert any(r.name == "label-smoothing" and len(r.errors) == result.folds for r in result.rows)
