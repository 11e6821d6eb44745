"""Unit tests of the evaluator's machinery: stacked training, local search, screening, MaskedAdam.

Everything here runs on tiny models and synthetic tensors (no dataset loads),
so the file takes a few seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.base import same_targets
from evomal_sr.losses.symbolic import CompiledLoss, LearnedLoss
from evomal_sr.training.local_search import local_search, unrolled_meta_gradient
from evomal_sr.training.loop import (
    BatchSampler,
    CandidateLosses,
    evaluate_metric,
    masked_sum,
    rows_finite,
    train_candidates,
)
from evomal_sr.training.metrics import metric_name, robust_spread, task_loss, task_metric, task_metric_rows
from evomal_sr.training.optim import MaskedAdam
from evomal_sr.training.screening import EquivalenceIndex, ProbePoints, probe_gradients, rejection_protocol
from evomal_sr.training.stacked import StackedModel

CE = "-(y * log(fx))"
SQ = "square(fx - y)"


def compiled(*texts):
    return [CompiledLoss(Expression.parse(t)) for t in texts]


def padded_ones(losses, dtype=torch.float32):
    return torch.ones(len(losses), max(max(loss.n_weights for loss in losses), 1), dtype=dtype)


def tiny_mlp(n_in=4, n_out=3, *, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, 6), nn.Tanh(), nn.Linear(6, n_out)).to(dtype)


@pytest.fixture(scope="module")
def blobs():
    """A separable 3-class problem: (X, labels) for training and validation."""
    g = torch.Generator().manual_seed(0)
    centres = 3.0 * torch.randn(3, 4, generator=g)
    labels = torch.randint(3, (300,), generator=g)
    X = centres[labels] + torch.randn(300, 4, generator=g)
    return (X[:200], labels[:200]), (X[200:], labels[200:])


@pytest.fixture(scope="module")
def line():
    """A 1-output regression problem y = x . w + noise."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(200, 4, generator=g)
    y = (X @ torch.tensor([1.0, -2.0, 0.5, 0.0])).unsqueeze(-1) + 0.1 * torch.randn(200, 1, generator=g)
    return (X[:150], y[:150]), (X[150:], y[150:])


def train(stacked, losses, data, *, kind="classification", steps=30, lr=0.1, weights=None):
    params = StackedModel.replicate(stacked.initial_params(), len(losses))
    weights = padded_ones(losses) if weights is None else weights
    sampler = BatchSampler(data[0].shape[0], 32, seed=3)
    return train_candidates(stacked, params, losses, weights, data, kind=kind, steps=steps, lr=lr, sampler=sampler)


# -- StackedModel and losses ------------------------------------------------------------------
def test_stacked_model_matches_each_module():
    models = [tiny_mlp(seed=s) for s in range(3)]
    stacked = StackedModel(models[0])
    params = StackedModel.stack(models)
    x = torch.randn(5, 4)
    out = stacked(params, x)
    assert out.shape == (3, 5, 3)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x))
    replicated = StackedModel.replicate(stacked.initial_params(), 2)
    torch.testing.assert_close(stacked(replicated, x)[1], models[0](x))
    replicated["0.weight"][0].add_(1.0)  # copies are independent leaves
    assert not torch.equal(replicated["0.weight"][0], replicated["0.weight"][1])


def test_candidate_losses_agree_with_learned_loss_and_task_loss():
    outputs = torch.randn(3, 8, 4)
    labels = torch.randint(4, (8,))
    losses = compiled(CE, SQ, "aq(y, fx)")
    values = CandidateLosses(losses, padded_ones(losses), "classification").per_copy(outputs, same_targets(labels, 3))
    for k, loss in enumerate(losses):
        expected = LearnedLoss(loss.expression, task="classification")(outputs[k], labels)
        torch.testing.assert_close(values[k], expected)
    ce = task_loss(outputs, labels, "classification")
    torch.testing.assert_close(values[0], ce[0])
    for k in range(3):
        torch.testing.assert_close(ce[k], nn.functional.cross_entropy(outputs[k], labels))
    target = torch.randn(8, 2)
    reg = torch.randn(2, 8, 2)
    torch.testing.assert_close(
        task_loss(reg, target, "regression"), torch.stack([nn.functional.mse_loss(r, target) for r in reg])
    )
    values = CandidateLosses(compiled(SQ), torch.ones(1, 3), "regression").per_copy(reg[:1], target.unsqueeze(0))
    torch.testing.assert_close(values[0], nn.functional.mse_loss(reg[0], target))


def test_task_metric_error_rate_and_non_finite_rows():
    outputs = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]], [[math.nan, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([0, 1])
    metric = task_metric(outputs, labels, "classification")
    assert metric.tolist() == [0.0, 0.5, math.inf]
    reg = torch.tensor([[[1.0]], [[math.inf]]])
    assert task_metric(reg, torch.tensor([[0.0]]), "regression").tolist() == [1.0, math.inf]
    for metric in ("mae", "huber"):
        assert task_metric(reg, torch.tensor([[0.0]]), "regression", metric).tolist() == [1.0, math.inf]
        assert task_metric(outputs, labels, "classification", metric).tolist() == [0.0, 0.5, math.inf]


def test_the_robust_regression_metrics_against_torch():
    outputs, target = torch.randn(3, 10, 2), torch.randn(10, 2)
    expected = torch.stack([nn.functional.l1_loss(o, target) for o in outputs])
    torch.testing.assert_close(task_metric(outputs, target, "regression", "mae"), expected)
    delta = 1.4826 * (target - target.median()).abs().median()
    huber = torch.stack([2 * nn.functional.huber_loss(o, target, delta=float(delta)) for o in outputs])
    torch.testing.assert_close(task_metric(outputs, target, "regression", "huber"), huber)
    small = target + 0.01 * delta  # every residual within delta: the Huber metric is the MSE
    torch.testing.assert_close(
        task_metric(small.unsqueeze(0), target, "regression", "huber"),
        task_metric(small.unsqueeze(0), target, "regression"),
    )
    assert [metric_name("regression", m) for m in ("task", "mae", "huber")] == ["MSE", "MAE", "Huber"]
    with pytest.raises(ConfigError, match="metric must be one of task, mae, huber, got 'l1'"):
        metric_name("regression", "l1")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=4, max_size=4),
    st.lists(st.floats(-10, 10), min_size=4, max_size=4),
    st.lists(st.floats(-10, 10), min_size=4, max_size=4),
)
def test_one_label_moves_the_robust_metrics_of_two_models_apart_by_at_most_their_distance(labels, first, second):
    # why the selection may score regression by MAE or Huber: however wild a label, two models' MAEs differ
    # by at most the mean distance of their predictions (the triangle inequality), their Huber errors by
    # 2 delta times it (the slope's bound); their MSEs by up to 2|e||f - g|, unbounded in the label e
    outputs = torch.tensor([first, second], dtype=torch.float64).unsqueeze(-1)
    target = torch.tensor(labels, dtype=torch.float64).unsqueeze(-1)
    distance = (outputs[0] - outputs[1]).abs().mean().item()
    a, b = task_metric(outputs, target, "regression", "mae").tolist()
    assert abs(a - b) <= distance + 1e-9
    a, b = task_metric(outputs, target, "regression", "huber").tolist()
    assert abs(a - b) <= 2 * float(robust_spread(target)) * distance * (1 + 1e-9) + 1e-9


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(2, 9),
    st.integers(1, 4),
    st.sampled_from(["task", "mae", "huber"]),
    st.integers(0, 2**31 - 1),
)
def test_each_rows_metric_averages_to_the_task_metric(copies, rows, outputs, metric, seed):
    # the selection's row errors must be the parts of the number the meta-test reports, for every metric
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(copies, rows, outputs, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, outputs, (rows,), generator=generator)
    target = torch.randn(rows, outputs, generator=generator, dtype=torch.float64) * 3
    for kind, y in (("classification", labels), ("regression", target)):
        parts = task_metric_rows(logits, y, kind, metric)
        assert parts.shape == (copies, rows)
        torch.testing.assert_close(parts.mean(dim=1), task_metric(logits, y, kind, metric))
    logits[0, 1, 0] = math.nan
    parts = task_metric_rows(logits, target, "regression", metric)
    assert math.isinf(parts[0, 1]) and torch.isfinite(parts[0, [0, *range(2, rows)]]).all()


def test_masked_sum_keeps_nan_rows_out_of_the_gradient():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    values = torch.stack([x[0] * 2, x[1] * math.nan, x[2] ** 2])
    active = torch.isfinite(values.detach())
    total = masked_sum(values, active)
    assert float(total.detach()) == 11.0  # the NaN row is left out of the value...
    (grad,) = torch.autograd.grad(total, [x])
    assert grad[0] == 2.0 and grad[2] == 6.0  # ...and leaks into no other row's gradient
    assert rows_finite([torch.tensor([[1.0, 2.0], [math.inf, 0.0]])]).tolist() == [True, False]


def test_rows_finite_checks_every_tensor_and_survives_overflowing_sums():
    big = torch.full((3, 4, 5), 3e38)  # finite entries whose row sums overflow to inf
    big[2, 1, 1] = -math.inf
    bias = torch.zeros(3, 2)
    bias[0, 1] = math.nan
    assert rows_finite([big]).tolist() == [True, True, False]
    assert rows_finite([big, bias]).tolist() == [False, True, False]
    assert rows_finite([big.transpose(1, 2), torch.zeros(3)]).tolist() == [True, True, False]
    assert rows_finite([torch.tensor([1.0, math.nan])]).tolist() == [True, False]


def test_batch_sampler_is_seeded_and_covers_each_epoch():
    a, b = BatchSampler(10, 4, seed=7), BatchSampler(10, 4, seed=7)
    first = [a.next() for _ in range(6)]
    assert all(torch.equal(u, v) for u, v in zip(first, [b.next() for _ in range(6)]))
    epoch = torch.cat(first[:2])  # 2 full batches per epoch of 10 rows (remainder dropped)
    assert len(set(epoch.tolist())) == 8
    assert BatchSampler(3, 8, seed=0).next().shape == (3,)  # batch larger than the data
    assert not all(torch.equal(u, v) for u, v in zip(first, [BatchSampler(10, 4, seed=8).next() for _ in range(6)]))


# -- partial training ---------------------------------------------------------------------------
def test_cross_entropy_beats_a_constant_loss(blobs):
    train_data, val_data = blobs
    stacked = StackedModel(tiny_mlp())
    # (y + fx) sums to a constant over the classes: zero gradient, the model never moves
    outcome = train(stacked, compiled(CE, "(y + fx)"), train_data)
    metric = evaluate_metric(stacked, outcome.params, val_data, kind="classification")
    before = evaluate_metric(
        stacked, StackedModel.replicate(stacked.initial_params(), 1), val_data, kind="classification"
    )
    assert metric[0] < 0.2 < before[0]
    assert metric[1] == before[0]
    for name, value in outcome.params.items():
        torch.testing.assert_close(value[1], stacked.initial_params()[name])
    assert outcome.diverged.tolist() == [False, False]
    assert outcome.steps_done.tolist() == [30, 30]


def test_batched_training_equals_one_by_one(blobs):
    train_data, val_data = blobs
    stacked = StackedModel(tiny_mlp())
    texts = [CE, SQ, "aq(y, tanh(fx))", "-(y * sqrt(fx))"]
    together = train(stacked, compiled(*texts), train_data)
    for k, text in enumerate(texts):
        alone = train(stacked, compiled(text), train_data)
        for name, value in alone.params.items():
            torch.testing.assert_close(together.params[name][k], value[0], rtol=1e-5, atol=1e-6)


class NanAfter:
    """A candidate loss (CompiledLoss protocol) that is cross-entropy for ``n`` calls, then NaN."""

    def __init__(self, n):
        self.inner, self.n, self.calls = CompiledLoss(Expression.parse(CE)), n, 0
        self.n_weights = self.inner.n_weights

    def __call__(self, weights, y, fx):
        self.calls += 1
        value = self.inner(weights, y, fx)
        return value * math.nan if self.calls > self.n else value


def test_non_finite_candidate_is_masked_without_touching_the_others(blobs):
    train_data, _ = blobs
    stacked = StackedModel(tiny_mlp())
    together = train(
        stacked, [CompiledLoss(Expression.parse(SQ)), NanAfter(5), CompiledLoss(Expression.parse(CE))], train_data
    )
    assert together.diverged.tolist() == [False, True, False]
    assert together.steps_done.tolist() == [30, 5, 30]
    sq_alone, ce_alone = train(stacked, compiled(SQ), train_data), train(stacked, compiled(CE), train_data)
    ce_five = train(stacked, compiled(CE), train_data, steps=5)
    for name in together.params:
        assert torch.isfinite(together.params[name]).all()
        torch.testing.assert_close(together.params[name][0], sq_alone.params[name][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(together.params[name][2], ce_alone.params[name][0], rtol=1e-5, atol=1e-6)
        # the diverged copy keeps the parameters it had before its first non-finite loss
        torch.testing.assert_close(together.params[name][1], ce_five.params[name][0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("with_diverged_mate", [False, True])
def test_training_step_is_plain_sgd_in_float64(blobs, with_diverged_mate):
    (X, labels), _ = blobs
    X = X.double()
    stacked = StackedModel(tiny_mlp(dtype=torch.float64))
    losses = compiled(CE) + ([NanAfter(0)] if with_diverged_mate else [])
    start = StackedModel.replicate(stacked.initial_params(), len(losses))
    weights = padded_ones(losses, torch.float64)
    lr = 0.1
    outcome = train_candidates(
        stacked,
        start,
        losses,
        weights,
        (X, labels),
        kind="classification",
        steps=1,
        lr=lr,
        sampler=BatchSampler(X.shape[0], 32, seed=3),
    )
    index = BatchSampler(X.shape[0], 32, seed=3).next()
    params = {k: v[:1].clone().requires_grad_(True) for k, v in start.items()}
    value = CandidateLosses(losses[:1], weights[:1], "classification").per_copy(
        stacked(params, X[index]), labels[index].unsqueeze(0)
    )
    grads = torch.autograd.grad(value.sum(), list(params.values()))
    for name, g in zip(params, grads):
        # the exact float64 learning rate, not one rounded to float32 on the way
        torch.testing.assert_close(outcome.params[name][0] - start[name][0], -lr * g[0], rtol=1e-12, atol=1e-15)
    assert outcome.diverged.tolist() == [False] + [True] * with_diverged_mate
    for name, value in start.items():  # the caller's parameters are not trained in place
        assert torch.equal(value[0], stacked.initial_params()[name])


def test_training_stops_when_every_candidate_diverged(blobs):
    train_data, _ = blobs
    stacked = StackedModel(tiny_mlp())
    outcome = train(stacked, [NanAfter(0)], train_data)
    assert outcome.diverged.tolist() == [True] and outcome.steps_done.tolist() == [0]
    for name, value in outcome.params.items():
        torch.testing.assert_close(value[0], stacked.initial_params()[name])


def test_regression_training_reduces_mse(line):
    train_data, val_data = line
    stacked = StackedModel(nn.Linear(4, 1))
    outcome = train(stacked, compiled(SQ, "abs(fx - y)"), train_data, kind="regression", steps=60)
    metric = evaluate_metric(stacked, outcome.params, val_data, kind="regression")
    before = evaluate_metric(stacked, StackedModel.replicate(stacked.initial_params(), 1), val_data, kind="regression")
    assert (metric < 0.5 * before).all()


# -- local search: unrolled meta-gradient vs finite differences ----------------------------------
def _meta_setup(kind, dtype=torch.float64):
    g = torch.Generator().manual_seed(5)
    x_tr, x_val = torch.randn(16, 3, generator=g, dtype=dtype), torch.randn(12, 3, generator=g, dtype=dtype)
    if kind == "classification":
        y_tr, y_val = torch.randint(3, (16,), generator=g), torch.randint(3, (12,), generator=g)
        n_out, texts = 3, [CE, "aq(y, fx)", "(square(fx - y) + (y * tanh(fx)))"]
    else:
        y_tr, y_val = torch.randn(16, 1, generator=g, dtype=dtype), torch.randn(12, 1, generator=g, dtype=dtype)
        n_out, texts = 1, [SQ, "(square(fx - y) + (0.5 * abs(fx - y)))", "tanh(square(y - fx))"]
    stacked = StackedModel(tiny_mlp(3, n_out, seed=2, dtype=dtype))
    losses = compiled(*texts)
    weights = padded_ones(losses, dtype) + 0.1 * torch.randn(
        len(losses), max(x.n_weights for x in losses), generator=g, dtype=dtype
    )
    params = StackedModel.replicate(stacked.initial_params(), len(losses))
    return stacked, params, losses, weights, (x_tr, y_tr), (x_val, y_val)


@pytest.mark.parametrize("kind,inner_steps", [("classification", 1), ("classification", 2), ("regression", 2)])
def test_meta_gradient_matches_finite_differences(kind, inner_steps):
    stacked, params, losses, weights, tr, va = _meta_setup(kind)
    kw = dict(kind=kind, lr=0.5, inner_steps=inner_steps)
    outer, grad, ok = unrolled_meta_gradient(stacked, params, losses, weights, tr, va, **kw)
    assert ok.all() and grad.dtype == torch.float64 and grad.shape == weights.shape
    eps = 1e-6
    for k, loss in enumerate(losses):
        for e in range(weights.shape[1]):
            plus, minus = weights.clone(), weights.clone()
            plus[k, e] += eps
            minus[k, e] -= eps
            up, _, _ = unrolled_meta_gradient(stacked, params, losses, plus, tr, va, **kw)
            down, _, _ = unrolled_meta_gradient(stacked, params, losses, minus, tr, va, **kw)
            numeric = (up[k] - down[k]) / (2 * eps)
            assert float(grad[k, e]) == pytest.approx(float(numeric), rel=1e-5, abs=1e-9), (k, e)
            others = [j for j in range(len(losses)) if j != k]
            # a candidate's weights never move another candidate's outer loss
            assert torch.equal(up[others], outer[others]) and torch.equal(down[others], outer[others])
            if e >= loss.n_weights:  # padding columns carry no gradient
                assert float(grad[k, e]) == 0.0
    assert any(grad[k, : loss.n_weights].abs().max() > 1e-4 for k, loss in enumerate(losses))


def test_meta_gradient_masks_non_finite_candidates():
    stacked, params, losses, weights, tr, va = _meta_setup("classification")
    mixed = [losses[0], NanAfter(0), losses[1]]
    _, grad, ok = unrolled_meta_gradient(stacked, params, mixed, weights, tr, va, kind="classification", lr=0.5)
    assert ok.tolist() == [True, False, True]
    assert torch.equal(grad[1], torch.zeros_like(grad[1]))
    _, clean, _ = unrolled_meta_gradient(
        stacked, params, [losses[0], losses[2], losses[1]], weights, tr, va, kind="classification", lr=0.5
    )
    torch.testing.assert_close(grad[0], clean[0])
    torch.testing.assert_close(grad[2], clean[2])


def _three_losses_for_local_search(blobs, n_inits: int, iterations: int):
    """A stacked MLP, three compiled losses, their perturbed starting weights and local_search's keywords."""
    train_data, val_data = blobs
    stacked = StackedModel(tiny_mlp())
    inits = {i: tiny_mlp(seed=100 + i).state_dict() for i in range(n_inits)}
    losses = compiled(CE, "aq(y, fx)", "-(y * sqrt(fx))")
    start = padded_ones(losses) + 0.01 * torch.randn(
        3, max(x.n_weights for x in losses), generator=torch.Generator().manual_seed(0)
    )
    kw = dict(
        init_params=inits.__getitem__,
        train_data=train_data,
        val_data=val_data,
        kind="classification",
        iterations=iterations,
        meta_lr=0.05,
        lr=0.1,
        inner_steps=1,
        batch_size=32,
        seed=9,
    )
    return stacked, losses, start, kw


def test_local_search_is_independent_of_batch_mates(blobs):
    stacked, losses, start, kw = _three_losses_for_local_search(blobs, n_inits=4, iterations=4)
    together = local_search(stacked, losses, start, **kw)
    assert not torch.equal(together, start)
    for k, loss in enumerate(losses):
        alone = local_search(stacked, [loss], start[k : k + 1, : loss.n_weights], **kw)
        torch.testing.assert_close(together[k, : loss.n_weights], alone[0], rtol=1e-5, atol=1e-6)
        assert torch.equal(together[k, loss.n_weights :], start[k, loss.n_weights :])  # padding untouched


def test_fixed_scale_local_search_keeps_each_loss_s_edge_norm_and_leaves_padding(blobs):
    stacked, losses, start, kw = _three_losses_for_local_search(blobs, n_inits=6, iterations=6)
    free = local_search(stacked, losses, start, **kw)
    fixed = local_search(stacked, losses, start, fixed_scale=True, **kw)
    for k, loss in enumerate(losses):
        n = loss.n_weights
        torch.testing.assert_close(fixed[k, :n].norm(), start[k, :n].norm(), rtol=1e-6, atol=0.0)
        assert torch.equal(fixed[k, n:], start[k, n:])  # padding untouched
        # the free search grows the weights (Adam moves them alike); the fixed one only turns them
        assert free[k, :n].norm() > start[k, :n].norm() and not torch.equal(fixed[k, :n], start[k, :n])


def test_local_search_scale_is_a_checked_setting():
    from evomal_sr.core.presets import resolve_preset

    assert resolve_preset("standard").local_search_scale == "free"
    assert resolve_preset("standard", local_search_scale="fixed").local_search_scale == "fixed"
    with pytest.raises(ConfigError, match="local_search_scale must be one of free, fixed, got 'frozen'"):
        resolve_preset("standard", local_search_scale="frozen")


@pytest.mark.parametrize(
    ("option", "value", "bad", "choices"),
    [
        ("--local-search-scale", "fixed", "frozen", "'free', 'fixed'"),
        ("--initial-fill", "variants", "zoo", "'random', 'variants'"),
    ],
)
def test_cli_choice_settings_are_recorded_and_checked(tmp_path, option, value, bad, choices):
    import json

    from clihelpers import invoke

    args = ["search", "--dataset", "iris", "--preset", "tiny", "-q"]
    result = invoke(*args, option, value, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "run" / "pareto.json").read_text())["config"]["settings"]
    assert settings[option[2:].replace("-", "_")] == value
    refused = invoke(*args, option, bad, "--out", tmp_path / "bad")
    assert refused.exit_code == 2 and f"'{bad}' is not one of {choices}" in refused.output


# -- MaskedAdam ----------------------------------------------------------------------------------
def test_masked_adam_matches_torch_adam_and_skips_rows():
    g = torch.Generator().manual_seed(0)
    ours = torch.randn(3, 4, generator=g)
    ref = ours[[0, 2]].clone().requires_grad_(True)
    adam = torch.optim.Adam([ref], lr=0.1)
    opt = MaskedAdam(ours.shape, lr=0.1)
    frozen = ours[1].clone()
    for _ in range(5):
        grad = torch.randn(3, 4, generator=g)
        opt.step(ours, grad, torch.tensor([True, False, True]))
        ref.grad = grad[[0, 2]].clone()
        adam.step()
    torch.testing.assert_close(ours[[0, 2]], ref.detach())
    assert torch.equal(ours[1], frozen) and opt.t.tolist() == [5.0, 0.0, 5.0]
    assert torch.equal(opt.m[1], torch.zeros(4))
    opt.step(ours, torch.zeros(3, 4), torch.zeros(3, dtype=torch.bool))  # nothing active: a no-op
    assert opt.t.tolist() == [5.0, 0.0, 5.0]


# -- screening -------------------------------------------------------------------------------
def test_probe_fingerprints_of_equivalent_forms_agree():
    probes = ProbePoints(kind="classification", n_outputs=3, n_points=8, seed=0)
    a, b, c, d = (
        probe_gradients(loss, probes) for loss in compiled("(y * log(fx))", "(log(fx) * y)", "-(-(y * log(fx)))", CE)
    )
    assert a.dtype == torch.float64 and a.shape == (24,)
    assert torch.equal(a, b) and torch.equal(a, c)
    torch.testing.assert_close(d, -a)
    index = EquivalenceIndex(rtol=1e-5, atol=1e-7)
    assert index.find(a) is None
    index.add("(y * log(fx))", a)
    index.add(CE, d)
    assert index.find(c) == "(y * log(fx))" and index.find(d * (1 + 1e-9)) == CE
    assert index.find(a * 1.01) is None and len(index) == 2
    # the probes are gradients w.r.t. fx (not the logits): (y + fx) gives 1 / n_points everywhere
    constant = probe_gradients(CompiledLoss(Expression.parse("(y + fx)")), probes)
    torch.testing.assert_close(constant, torch.full((24,), 1 / 8, dtype=torch.float64))


def test_probe_gradients_flag_non_finite_losses():
    probes = ProbePoints(kind="regression", n_outputs=1, n_points=8, seed=0)
    huge = CompiledLoss(Expression.parse("(1e300 * square((1e300 * fx) - y))"))
    assert not torch.isfinite(probe_gradients(huge, probes)).all()
    assert torch.isfinite(probe_gradients(CompiledLoss(Expression.parse(SQ)), probes)).all()
    # does not depend on fx at all: an all-zero fingerprint, not an error
    assert not probe_gradients(CompiledLoss(Expression.parse("square(y)")), probes).any()


def test_rejection_protocol_classification_and_regression():
    labels = torch.randint(3, (32,), generator=torch.Generator().manual_seed(0))
    texts = [CE, "(y + fx)", "(log(fx) * y)", "-(-(y * log(fx)))", "(y - fx)"]
    kw = dict(targets=labels, n_outputs=3, steps=60, lr=0.05, margin=0.05, seed=1)
    passed = rejection_protocol(compiled(*texts), kind="classification", **kw)
    assert passed.tolist() == [True, False, False, False, False]
    # batch mates do not change a verdict
    assert [bool(rejection_protocol(compiled(t), kind="classification", **kw)[0]) for t in texts] == passed.tolist()
    targets = torch.randn(32, 1, generator=torch.Generator().manual_seed(2))
    kw.update(targets=targets, n_outputs=1)
    passed = rejection_protocol(
        compiled(SQ, "(-1.0 * square(fx - y))", "abs(fx - y)", "(fx * y)"), kind="regression", **kw
    )
    assert passed.tolist() == [True, False, True, False]


def test_cli_selection_lr_extend_is_recorded_and_checked(tmp_path):
    import json

    from clihelpers import invoke

    args = ["search", "--dataset", "iris", "--preset", "tiny", "-q"]
    result = invoke(*args, "--selection-lr-extend", "2", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "run" / "pareto.json").read_text())["config"]["settings"]
    assert settings["selection_lr_extend"] == 2
    refused = invoke(*args, "--selection-lr-extend", "-1", "--out", tmp_path / "bad")
    assert refused.exit_code == 2 and "-1 is not in the range x>=0" in refused.output
