"""Online edge weights (training.online): the meta-gradient against finite differences, the meta-test's rows."""

from __future__ import annotations

import pytest
import torch

from evomal_sr import ConfigError, LearnedLoss, Task
from evomal_sr.evaluation.metatest import meta_test
from evomal_sr.losses.standard import standard_loss_per_copy
from evomal_sr.training.loop import CandidateLosses
from evomal_sr.training.online import OnlineLearnedLoss
from evomal_sr.training.stacked import StackedModel

STEPS = 60


@pytest.fixture(scope="module")
def sinusoid():
    return Task.builtin("sinusoid", seed=0, model="mlp")


def _run(kind: str, expression: str, weights, lrs, seed: int = 0):
    """A float64 run of 3 copies of a small MLP, with a batch and per-copy targets."""
    gen = torch.Generator().manual_seed(seed)
    n_out = 3 if kind == "classification" else 1
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, n_out)).double()
    stacked = StackedModel(net)
    params = {
        k: v + 0.1 * torch.randn(v.shape, generator=gen, dtype=v.dtype)
        for k, v in StackedModel.replicate(stacked.initial_params(), 3).items()
    }
    inputs = torch.randn(3, 8, 4, generator=gen, dtype=torch.float64)
    if kind == "classification":
        targets = torch.randint(0, 3, (3, 8), generator=gen)
    else:
        targets = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    loss = LearnedLoss(expression, task=kind, weights=weights)
    loss.weights.data = loss.weights.data.double()
    run = OnlineLearnedLoss(loss, meta_lr=1e-2).start(stacked, torch.tensor(lrs, dtype=torch.float64))
    return run, params, inputs, targets


@pytest.mark.parametrize(
    ("kind", "expression", "weights"),
    [("classification", "-(y * log(fx))", [1.1, 0.9, 1.2, 0.8]), ("regression", "sqrt(square(fx - y) + 1)", None)],
)
def test_the_meta_gradient_matches_finite_differences_in_float64(kind, expression, weights):
    run, params, inputs, targets = _run(kind, expression, weights, [0.3, 0.1, 0.05])
    outer, grad, ok = run.meta_gradient(params, inputs, targets)
    assert bool(ok.all()) and grad.dtype == torch.float64
    start, eps = run.weights.clone(), 1e-6
    for e in range(start.shape[1]):
        shift = torch.zeros_like(start)
        shift[:, e] = eps
        run.weights = start + shift
        up, _, _ = run.meta_gradient(params, inputs, targets)
        run.weights = start - shift
        down, _, _ = run.meta_gradient(params, inputs, targets)
        torch.testing.assert_close(grad[:, e], (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)
    run.weights = start
    # the outer loss is the task's standard loss after one SGD step with each copy's loss, at each copy's lr
    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    inner = CandidateLosses(run.compiled, start, kind).per_copy(run.stacked.each(theta, inputs), targets)
    grads = torch.autograd.grad(inner.sum(), list(theta.values()))
    lrs = torch.tensor([0.3, 0.1, 0.05], dtype=torch.float64)
    stepped = {k: v - lrs.reshape(-1, *[1] * (v.ndim - 1)) * g for (k, v), g in zip(theta.items(), grads)}
    expected = standard_loss_per_copy(run.stacked.each(stepped, inputs), targets, kind)
    torch.testing.assert_close(outer, expected.detach())


def test_adapt_moves_each_copys_weights_by_one_adam_step():
    run, params, inputs, targets = _run("classification", "-(y * log(fx))", None, [0.3, 0.1, 0.05])
    before = run.weights.clone()
    _, grad, _ = run.meta_gradient(params, inputs, targets)
    run.adapt(params, inputs, targets)
    # Adam's first step moves each weight by meta_lr against the sign of its gradient
    expected = before - 1e-2 * grad / (grad.abs() + 1e-8)
    torch.testing.assert_close(run.weights, expected)
    assert not torch.equal(run.weights[0], run.weights[1])  # each copy adapts at its own lr


def test_zero_meta_lr_is_the_frozen_loss_bit_for_bit(sinusoid):
    loss = LearnedLoss("sqrt(square(fx - y) + 1)", task="regression")
    methods = {"frozen": loss, "online": OnlineLearnedLoss(loss, meta_lr=0.0)}
    report = meta_test(methods, sinusoid, seeds=2, steps=STEPS, baseline=False, tune_lr=True, verbose=0)
    frozen, online = report["frozen"], report["online"]
    assert online.errors == frozen.errors and online.test_curves == frozen.test_curves
    assert online.lr == frozen.lr and online.loss == f"online({frozen.loss}, meta_lr=0)"
    assert online.n_parameters == frozen.n_parameters


def test_online_rows_are_deterministic_and_differ_from_the_frozen_loss(sinusoid):
    loss = LearnedLoss("square(fx - y)", task="regression")
    methods = {"frozen": loss, "online": OnlineLearnedLoss(loss, meta_lr=1e-2)}
    first = meta_test(methods, sinusoid, seeds=2, steps=STEPS, baseline=False, verbose=0)
    again = meta_test(methods, sinusoid, seeds=2, steps=STEPS, baseline=False, verbose=0)
    assert first["online"].test_curves == again["online"].test_curves
    assert first["online"].test_curves != first["frozen"].test_curves
    assert float(loss.weights.detach().sum()) == 3.0  # the caller's loss is never modified


def test_the_module_is_its_loss_at_the_starting_weights_and_refuses_bad_settings():
    loss = LearnedLoss("square(fx - y)", task="regression", weights=[1.0, 2.0, 1.0])
    output, target = torch.randn(5, 1), torch.randn(5)
    assert torch.equal(OnlineLearnedLoss(loss)(output, target), loss(output, target))
    for bad in (-1e-3, float("nan"), "0.1", True):
        with pytest.raises(ConfigError, match="meta_lr"):
            OnlineLearnedLoss(loss, meta_lr=bad)
    with pytest.raises(ConfigError, match="LearnedLoss"):
        OnlineLearnedLoss(torch.nn.MSELoss())


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_the_standard_loss_takes_one_target_per_copy(kind):
    outputs = torch.randn(3, 6, 4 if kind == "classification" else 1, dtype=torch.float64)
    targets = torch.randint(0, 4, (3, 6)) if kind == "classification" else torch.randn(3, 6, dtype=torch.float64)
    each = standard_loss_per_copy(outputs, targets, kind)
    one_by_one = torch.cat([standard_loss_per_copy(outputs[k : k + 1], targets[k], kind) for k in range(3)])
    assert torch.equal(each, one_by_one)


def test_a_model_with_buffers_or_random_layers_is_refused():
    def model(n_features, n_outputs):
        return torch.nn.Sequential(
            torch.nn.Linear(n_features, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, n_outputs)
        )

    task = Task.builtin("sinusoid", seed=0, model=model)
    online = OnlineLearnedLoss(LearnedLoss("square(fx - y)", task="regression"))
    with pytest.raises(ConfigError, match="BatchNorm, Dropout"):
        meta_test(online, task, seeds=1, steps=5, baseline=False, verbose=0)
