"""The final selection's row errors: the sampling error of the rows it scores on (selection_uncertainty)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from clihelpers import invoke

import evomal_sr as es
from evomal_sr.errors import ConfigError
from evomal_sr.evaluation.metatest import meta_test
from evomal_sr.evaluation.selection import select_final
from evomal_sr.evaluation.verdict import KNOWN, LEARNED, SelectionRow, decide, row_standard_error
from evomal_sr.results.front import FrontEntry, ParetoFront


@pytest.fixture(scope="module")
def iris():
    return es.Task.builtin("iris", seed=0, model="linear", label_noise=0.2, noisy_splits=("train", "val"))


@pytest.fixture(scope="module")
def front():
    return ParetoFront([FrontEntry("-(y * log(fx))", (1.0,) * 4, 0.2, 5)], task_kind="classification")


def _row(name, kind, errors, row_errors):
    return SelectionRow(name, kind, name, errors, row_errors=row_errors)


def test_meta_test_row_errors_are_the_parts_of_each_early_stopped_error(iris):
    known = ("mae", "sce")
    report = meta_test(None, iris, seeds=2, steps=30, baselines=known, tune_lr=True, verbose=0, row_errors=True)
    for method in report.methods:
        assert len(method.early_row_errors) == 2  # one list per seed
        for rows, early in zip(method.early_row_errors, method.early_errors):
            assert len(rows) == len(iris.y_test) and set(rows) <= {0.0, 1.0}
            assert math.isclose(sum(rows) / len(rows), early, rel_tol=1e-6)
    plain = meta_test(None, iris, seeds=2, steps=30, baselines=known, tune_lr=True, verbose=0)
    assert [m.early_errors for m in plain.methods] == [m.early_errors for m in report.methods]  # nothing else moves
    assert all(m.early_row_errors == [] for m in plain.methods)
    again = type(report).from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.methods[0].early_row_errors == report.methods[0].early_row_errors  # a round trip


@pytest.mark.parametrize("scoring", ["validation", "folds"])
def test_each_selection_row_keeps_its_error_on_every_scored_row(iris, front, scoring):
    result = select_final(front, iris, steps=20, seed=0, verbose=0, scoring=scoring)
    scored = len(iris.y_val) if scoring == "validation" else len(iris.y_train) + len(iris.y_val)
    for row in result.rows:
        assert len(row.row_errors) == scored
        # the rows' mean is the folds' mean: each fold's error is its scored rows' mean
        per_fold = len(iris.y_val) if scoring == "validation" else None
        if per_fold is not None:
            assert math.isclose(sum(row.row_errors) / scored, row.mean, rel_tol=1e-6)
    saved = result.to_dict()
    assert saved["uncertainty"] == "folds" and len(saved["rows"][0]["row_errors"]) == scored
    assert f"({scored} rows)" in str(result).splitlines()[0]  # what every lead rests on, said up front


def test_rows_that_differ_widen_the_standard_error_the_folds_alone_would_give():
    # the folds agree to the last digit (fold SE 0.002), but the lead is 2 rows of 40 that the folds share
    rows = [
        _row("sce", KNOWN, [0.300, 0.302, 0.298], [1.0] * 10 + [0.0] * 30),
        _row("mae", KNOWN, [0.350, 0.352, 0.348], [1.0] * 12 + [0.0] * 28),
    ]
    by_folds = decide(rows, {}, "classification", 2.0, prior="mae")
    assert by_folds.winner == "sce"  # 0.05 is 25 fold SEs
    by_rows = decide(rows, {}, "classification", 2.0, prior="mae", uncertainty="folds-and-rows")
    assert by_rows.winner == "mae" and by_rows.uncertainty == "folds-and-rows"
    expected = torch.tensor([0.0] * 10 + [-1.0] * 2 + [0.0] * 28, dtype=torch.float64).std().item() / math.sqrt(40)
    assert math.isclose(row_standard_error(rows[0], rows[1]), expected, rel_tol=1e-9)
    assert "nor sce the prior, mae" in by_rows.verdict


def test_a_learned_loss_that_wins_on_the_folds_and_the_rows_is_returned():
    learned = [0.0] * 30 + [1.0] * 10  # better on 20 rows of 40, worse on none
    rows = [
        _row("learned #1", LEARNED, [0.25, 0.26, 0.24], learned),
        _row("sce", KNOWN, [0.75, 0.74, 0.76], [1.0] * 30 + [0.0] * 10),
    ]
    result = decide(rows, {"learned #1": torch.nn.Identity()}, "classification", 2.0, uncertainty="folds-and-rows")
    assert result.winner == "learned #1" and result.standard_error > 0.05


def test_folds_and_rows_need_every_competing_rows_errors_and_a_known_name():
    rows = [_row("sce", KNOWN, [0.3, 0.3, 0.3], None), _row("mae", KNOWN, [0.4, 0.4, 0.4], [0.0] * 5)]
    with pytest.raises(ConfigError, match="hold no errors on the same scored rows"):
        decide(rows, {}, "classification", 1.0, prior="mae", uncertainty="folds-and-rows")
    with pytest.raises(ConfigError, match="selection_uncertainty must be one of folds, folds-and-rows, got 'rows'"):
        decide(rows, {}, "classification", 1.0, uncertainty="rows")


def test_the_cli_and_the_estimator_take_the_selection_uncertainty(tmp_path):
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--final-selection", "fair", "-q"]
    result = invoke(*args, "--selection-uncertainty", "folds-and-rows", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "selection.json").read_text())
    assert saved["uncertainty"] == "folds-and-rows" and all(r["row_errors"] for r in saved["rows"] if r["mean"])
    bad = invoke(*args, "--selection-uncertainty", "rows", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "'rows' is not one of 'folds', 'folds-and-rows'" in bad.output
    with pytest.raises(ConfigError, match="selection_uncertainty must be one of folds, folds-and-rows"):
        es.LossSearch(preset="tiny", selection_uncertainty="rows").fit(es.Task.builtin("iris"))
