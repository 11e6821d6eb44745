"""meta_test: equal numbers for equal losses and seeds, transfer and its refusal, reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from evomal_sr import ConfigError, LearnedLoss, Task
from evomal_sr.evaluation.metatest import MetaTestReport, meta_test
from evomal_sr.losses.standard import StandardLoss
from evomal_sr.results.front import FrontEntry, ParetoFront

STEPS = 30


@pytest.fixture(scope="module")
def iris():
    return Task.builtin("iris", seed=0, model="linear")


@pytest.fixture(scope="module")
def sinusoid():
    return Task.builtin("sinusoid", seed=0, model="linear")


def test_cross_entropy_against_itself_gives_equal_numbers(iris):
    report = meta_test(StandardLoss("classification"), iris, seeds=3, steps=STEPS)
    tested, base = report.methods
    assert (tested.method, base.method) == ("cross-entropy", "cross-entropy #2") or base.baseline
    assert base.baseline and not tested.baseline
    assert tested.errors == base.errors
    assert tested.test_curves == base.test_curves
    assert tested.loss_curves == base.loss_curves
    assert tested.mean == base.mean and tested.std == base.std
    assert report.rows()[0]["vs_baseline"] == 0.0


def test_symbolic_cross_entropy_tracks_the_baseline_and_is_deterministic(iris):
    loss = LearnedLoss(iris.baseline_expression, task="classification")
    first = meta_test(loss, iris, seeds=2, steps=STEPS)
    again = meta_test(loss, iris, seeds=2, steps=STEPS)
    assert first["learned"].errors == again["learned"].errors
    assert first["learned"].test_curves == again["learned"].test_curves
    learned, base = first["learned"], first.baseline
    assert np.allclose(learned.loss_curves, base.loss_curves, atol=1e-4)
    assert learned.n_parameters == 4 and base.n_parameters == 0


def test_seeds_as_count_or_list_and_different_seeds_differ(iris):
    loss = StandardLoss("classification")
    by_count = meta_test(loss, iris, seeds=2, seed=5, steps=STEPS, baseline=False)
    by_list = meta_test(loss, iris, seeds=[5, 6], steps=STEPS, baseline=False)
    assert by_count.methods[0].seeds == [5, 6]
    assert by_count.methods[0].errors == by_list.methods[0].errors
    other = meta_test(loss, iris, seeds=[7, 8], steps=STEPS, baseline=False)
    assert other.methods[0].test_curves != by_list.methods[0].test_curves


def test_no_global_random_state_is_used(iris):
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    meta_test(LearnedLoss("-(y * log(fx))"), iris, seeds=2, steps=5)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert (numpy_state == np.random.get_state()[1]).all()


def test_classification_loss_on_regression_task_is_refused(sinusoid, iris):
    with pytest.raises(ConfigError, match="cannot transfer a classification loss to a regression task"):
        meta_test(LearnedLoss("-(y * log(fx))", task="classification"), sinusoid, seeds=1, steps=2)
    with pytest.raises(ConfigError, match="cannot transfer a regression loss to a classification task"):
        meta_test(LearnedLoss("square(fx - y)", task="regression"), iris, seeds=1, steps=2)


def test_loss_module_without_task_attribute_is_refused(iris):
    with pytest.raises(ConfigError, match="'task' attribute"):
        meta_test(torch.nn.CrossEntropyLoss(), iris, seeds=1, steps=2)


def test_transfer_to_another_dataset_and_model(tmp_path):
    learned = LearnedLoss(
        "-(y * log(fx))", weights=[1.2, 0.9, 1.0, 1.1], metadata={"task": {"name": "iris", "model": "mlp"}}
    )
    wine = Task.builtin("wine", seed=0, model="linear")
    report = meta_test(learned, wine, seeds=2, steps=STEPS)
    assert report.task["name"] == "wine" and report.task["model"] == "linear"
    assert all(math.isfinite(e) for e in report["learned"].errors)


def test_accepts_path_front_entry_and_front(iris, tmp_path):
    loss = LearnedLoss("-(y * log(fx))", weights=[1.0, 1.0, 1.0, 1.0])
    path = loss.save(tmp_path / "loss.json")
    entry = FrontEntry(str(loss.expression), (1.0,) * 4, 0.1, 5)
    front = ParetoFront([entry], task_kind="classification")
    results = [meta_test(source, iris, seeds=1, steps=10, baseline=False) for source in (loss, path, entry, front)]
    assert all(r.methods[0].errors == results[0].methods[0].errors for r in results)


def test_regression_uses_mse(sinusoid):
    report = meta_test(LearnedLoss("square(fx - y)", task="regression"), sinusoid, seeds=2, steps=STEPS)
    assert report.metric == "MSE" and report.baseline.method == "mse"
    learned, base = report["learned"], report.baseline
    assert np.allclose(learned.errors, base.errors, rtol=1e-4)  # square error is MSE


def test_a_regression_meta_test_may_choose_and_report_by_mean_absolute_error(sinusoid):
    loss = LearnedLoss("square(fx - y)", task="regression")
    mse = meta_test(loss, sinusoid, seeds=2, steps=STEPS, baseline=False)
    mae = meta_test(loss, sinusoid, seeds=2, steps=STEPS, baseline=False, metric="mae")
    assert (mse.metric, mae.metric) == ("MSE", "MAE")
    assert not np.allclose(mse["learned"].errors, mae["learned"].errors)
    assert np.all(np.array(mae["learned"].errors) ** 2 <= np.array(mse["learned"].errors) + 1e-6)  # Jensen


class _NaNLoss(torch.nn.Module):
    task = "classification"

    def forward(self, output, target):
        return output.sum() * float("nan")


def test_a_diverging_loss_is_masked_and_scored_as_it_was(iris):
    report = meta_test({"nan": _NaNLoss(), "ce": StandardLoss("classification")}, iris, seeds=2, steps=10)
    nan_row = report["nan"]
    assert nan_row.diverged == [True, True]
    assert nan_row.errors == [c[0] for c in nan_row.test_curves]  # never updated
    assert report["ce"].diverged == [False, False]
    assert "div." in report.table()


def test_report_files_and_table(iris, tmp_path):
    report = meta_test({"a": StandardLoss("classification")}, iris, seeds=2, steps=STEPS, curve_points=5)
    assert report["a"].curve_steps == [0, 6, 12, 18, 24, 30]
    assert len(report["a"].test_curves) == 2 and len(report["a"].test_curves[0]) == 6
    report.to_json(tmp_path / "r.json")
    assert MetaTestReport.load(tmp_path / "r.json").to_dict() == json.loads((tmp_path / "r.json").read_text())
    report.to_csv(tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].startswith("method,baseline,seed,lr,test_error,early_stopped_test_error")
    assert len(lines) == 1 + 2 * 2
    table = report.table()
    assert "a" in table and "cross-entropy" in table and "±" in table
    assert report.plot_curves(tmp_path / "curves.png").stat().st_size > 1000
    assert report.best().method == "a"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"seeds": 0}, "seeds"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"seeds": "ab"}, "seeds"),
        ({"lr": -1.0}, "lr"),
        ({"device": "nonsense"}, "device"),
        ({"preset": "huge"}, "preset"),
        ({"metric": "l2"}, "metric must be one of task, mae, huber, got 'l2'"),
    ],
)
def test_bad_settings_raise_config_error(iris, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        meta_test(StandardLoss("classification"), iris, **{"steps": 2, **kwargs})


class _Wrapped(torch.nn.Module):
    """A loss of unknown kind to meta_test: it is called once per seed."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.task = inner, inner.task

    def forward(self, output, target):
        return self.inner(output, target)


@pytest.mark.parametrize(
    "task_name, expression", [("iris", "(-(y * log(fx)) + square(fx - y))"), ("sinusoid", "abs(fx - y)")]
)
def test_batched_and_per_seed_loss_evaluation_agree(task_name, expression, iris, sinusoid):
    task = iris if task_name == "iris" else sinusoid
    loss = LearnedLoss(expression, task=task.kind, weights=None)
    report = meta_test({"batched": loss, "per-seed": _Wrapped(loss)}, task, seeds=3, steps=STEPS, baseline=False)
    assert report["batched"].errors == report["per-seed"].errors
    assert report["batched"].loss_curves == report["per-seed"].loss_curves
