"""Baselines: ML3 (2,650 parameters), TaylorGLO (8), GP-LFL, and the standard loss."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evomal_sr import EngineUnavailableError, LearnedLoss, LossFileError, Task
from evomal_sr.evaluation.metatest import meta_test
from evomal_sr.losses.io import load_loss
from evomal_sr.losses.ml3 import ML3Loss, initial_parameters, ml3_function
from evomal_sr.losses.standard import StandardLoss
from evomal_sr.losses.taylorglo import TaylorGLOLoss, taylor_function
from evomal_sr.search.baselines import search_gplfl, train_ml3, train_taylorglo


@pytest.fixture(scope="module")
def iris():
    return Task.builtin("iris", seed=0, model="linear")


def test_ml3_has_2650_parameters_in_three_bias_free_layers():
    assert 2 * 50 + 50 * 50 + 50 * 1 == 2650
    loss = ML3Loss("classification", seed=0)
    assert loss.n_parameters == 2650 == sum(p.numel() for p in loss.parameters())
    theta = initial_parameters(seed=0)
    # no bias: zero inputs give softplus(0) per element
    assert torch.allclose(ml3_function(theta, torch.zeros(3), torch.zeros(3)), torch.full((3,), np.log(2.0)))
    assert (ml3_function(theta, torch.rand(4, 3), torch.rand(4, 3)) > 0).all()  # softplus output


def test_train_ml3_on_a_tiny_budget_gives_a_usable_loss(iris):
    loss = train_ml3(iris, preset="tiny", seed=0, iterations=3)
    again = train_ml3(iris, preset="tiny", seed=0, iterations=3)
    assert isinstance(loss, ML3Loss) and loss.task == "classification" and loss.n_parameters == 2650
    assert torch.equal(loss.theta, again.theta)
    assert not torch.equal(loss.theta, initial_parameters(seed=0))
    assert torch.isfinite(loss.theta).all()
    assert loss.metadata["method"] == "ML3" and loss.metadata["iterations"] == 3
    report = meta_test(loss, iris, seeds=1, steps=5)
    assert report["ML3"].n_parameters == 2650


def test_taylor_polynomial_terms():
    theta = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0])
    y, fx = torch.rand(10), torch.rand(10)
    expected = (fx - y) ** 2 / 2 - y**2 / 2  # the target-only term is dropped
    assert torch.allclose(taylor_function(theta, y, fx), expected, atol=1e-6)
    # gradient w.r.t. fx of a cubic with a centre
    theta = torch.tensor([0.5, 0.2, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    fx = torch.tensor([0.7], requires_grad=True)
    y = torch.tensor([1.0])
    (grad,) = torch.autograd.grad(taylor_function(theta, y, fx).sum(), fx)
    d, e = 0.7 - 0.2, 1.0 - 0.5
    assert grad.item() == pytest.approx(1 + 2 * d + 3 * d**2 / 2 + 4 * e + 5 * e * d + 6 * e**2 / 2, rel=1e-5)


def test_train_taylorglo_on_a_tiny_budget(iris):
    numpy_state = np.random.get_state()[1].copy()
    loss = train_taylorglo(iris, preset="tiny", seed=0, generations=1, train_steps=10)
    assert (numpy_state == np.random.get_state()[1]).all()
    again = train_taylorglo(iris, preset="tiny", seed=0, generations=1, train_steps=10)
    assert isinstance(loss, TaylorGLOLoss) and loss.n_parameters == 8
    assert torch.equal(loss.theta, again.theta)
    assert loss.metadata["population"] == 25 and loss.metadata["sigma"] == 1.2
    assert 0.0 <= loss.metadata["fitness"] <= 1.0
    assert meta_test(loss, iris, seeds=1, steps=5)["TaylorGLO"].n_parameters == 8


def test_taylorglo_without_cma_names_the_package(iris, monkeypatch):
    monkeypatch.setitem(sys.modules, "cma", None)
    with pytest.raises(EngineUnavailableError, match="pip install cma"):
        train_taylorglo(iris, preset="tiny", generations=1)


def test_gplfl_is_the_search_without_local_search(iris):
    search = search_gplfl(iris, preset="tiny", seed=0, population=3, generations=1)
    assert search.pareto_front_.config["local_search"] is False
    assert isinstance(search.best_loss_, LearnedLoss)
    assert search.best_loss_.n_parameters < 2650 * 0.05


@pytest.mark.parametrize(
    "make",
    [lambda: ML3Loss("regression", seed=3), lambda: TaylorGLOLoss("classification", parameters=np.arange(8) / 10)],
)
def test_save_and_load_give_identical_values(make, tmp_path):
    loss = make()
    path = loss.save(tmp_path / "loss.json")
    loaded = load_loss(path)
    assert type(loaded) is type(loss) and loaded.task == loss.task
    output = torch.randn(6, 3)
    target = torch.randn(6, 3) if loss.task == "regression" else torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(loss(output, target), loaded(output, target))


def test_malformed_loss_files_raise_loss_file_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "evomal-sr/ml3-loss", "version": 1, "task": "classification", "parameters": [1]}')
    with pytest.raises(LossFileError, match="2650"):
        load_loss(bad)
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(LossFileError, match="not a saved loss"):
        load_loss(bad)


def test_standard_loss_is_cross_entropy_bce_or_mse():
    # one definition (the batched standard loss) computed in float64 against torch's own, to round-off
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.tensor([0, 3, 1, 2, 0])
    assert torch.allclose(
        StandardLoss("classification")(logits, labels), F.cross_entropy(logits, labels), rtol=0, atol=1e-12
    )
    one = torch.randn(5, 1, generator=g, dtype=torch.float64)
    binary = torch.tensor([0, 1, 1, 0, 1])
    assert torch.allclose(
        StandardLoss("classification")(one, binary),
        F.binary_cross_entropy_with_logits(one, binary.double().reshape(5, 1)),
        rtol=0,
        atol=1e-12,
    )
    pred, target = torch.randn(5, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g)
    assert torch.allclose(
        StandardLoss("regression")(pred, target), F.mse_loss(pred, target.double()), rtol=0, atol=1e-12
    )


def test_baseline_loss_file_with_an_overflowing_integer_is_refused():
    data = {"format": TaylorGLOLoss.FORMAT, "version": 1, "parameters": [10**400] * 8, "task": "classification"}
    with pytest.raises(LossFileError, match="finite numbers"):
        TaylorGLOLoss.from_dict(data)
