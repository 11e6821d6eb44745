"""The fast paths give the same numbers as the plain ones (equivalence tests, never timings).

Every speed-up here keeps floating-point order, so the comparisons are exact
(``torch.equal``), not within a tolerance.
"""

import math

import pytest
import torch

from evomal_sr.core.threads import SMALL_MODEL_PARAMETERS, auto_threads, check_threads, torch_threads
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.base import PopulationLoss, same_targets
from evomal_sr.losses.symbolic import CompiledLoss, target_to_y
from evomal_sr.training.loop import (
    BatchSampler,
    CandidateLosses,
    masked_sum,
    rows_finite,
    sgd_update,
    train_candidates,
    train_population,
)
from evomal_sr.training.optim import MaskedAdam
from evomal_sr.training.stacked import StackedModel

TREES = ["-(y * log(fx))", "square(y - fx)", "(-(y * log(fx)) + tanh(square(y - fx)))", "(aq(fx, y) * 2.5)"]


def plain_train_population(params, copy_losses, update, *, steps, create_graph=False):
    """The loop as it was before its fast path: every step fully masked, flags read at every turn."""
    first = next(iter(params.values()))
    active = torch.ones(first.shape[0], dtype=torch.bool)
    steps_done = torch.zeros(first.shape[0], dtype=torch.long)
    for step in range(1, steps + 1):
        if not active.any():
            break
        values = copy_losses(params, step)
        active = active & torch.isfinite(values.detach())
        if active.any():
            grads = torch.autograd.grad(masked_sum(values, active), list(params.values()), create_graph=create_graph)
            active = active & rows_finite([g.detach() for g in grads])
            params = update(params, grads, active)
            steps_done += active
    return params, ~active, steps_done


def plain_sgd(lr):
    def update(params, grads, active):
        with torch.no_grad():
            scale = active.to(torch.float32) * lr
            for p, g in zip(params.values(), grads):
                p.sub_(torch.nan_to_num(g) * scale.reshape(-1, *([1] * (g.ndim - 1))))
        return params

    return update


def _setup(blow_up_at=None):
    """Three copies of a linear model; copy 1's loss turns non-finite from step ``blow_up_at`` on."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    stacked = StackedModel(net)
    X, Y = torch.randn(40, 4), torch.randint(3, (40,))
    loss = CompiledLoss(Expression.parse(TREES[0]))

    def copy_losses(theta, step):
        rows = slice((step * 7) % 30, (step * 7) % 30 + 10)
        values = CandidateLosses([loss] * 3, torch.ones(3, 4), "classification").per_copy(
            stacked(theta, X[rows]), same_targets(Y[rows], 3)
        )
        if blow_up_at is not None and step >= blow_up_at:
            values = values * torch.tensor([1.0, math.inf, 1.0])
        return values

    def fresh():
        return {
            k: v.clone().requires_grad_(True) for k, v in StackedModel.replicate(stacked.initial_params(), 3).items()
        }

    return copy_losses, fresh


@pytest.mark.parametrize("blow_up_at", [None, 1, 7])
def test_train_population_fast_path_matches_the_fully_masked_loop(blow_up_at):
    copy_losses, fresh = _setup(blow_up_at=blow_up_at)
    fast = train_population(fresh(), copy_losses, sgd_update(0.1), steps=20)
    params, diverged, steps_done = plain_train_population(fresh(), copy_losses, plain_sgd(0.1), steps=20)
    assert all(torch.equal(fast.params[k], params[k]) for k in params)
    assert fast.diverged.tolist() == diverged.tolist()
    assert fast.steps_done.tolist() == steps_done.tolist()
    if blow_up_at is not None:
        assert fast.diverged.tolist() == [False, True, False]
        assert fast.steps_done.tolist() == [20, blow_up_at - 1, 20]


def test_a_non_finite_gradient_with_a_finite_loss_stops_only_that_copy():
    torch.manual_seed(0)
    stacked = StackedModel(torch.nn.Linear(2, 1))
    X = torch.randn(8, 2)

    def copy_losses(theta, step):
        out = stacked(theta, X).squeeze(-1)  # [K, 8]
        values = out.square().mean(dim=1)
        if step == 4:  # sqrt at 0 has an infinite derivative: the value stays finite
            bias = theta["bias"][1:2, 0]
            values = values + torch.cat([torch.zeros(1), (bias - bias.detach()).sqrt(), torch.zeros(1)])
        return values

    def fresh():
        return {
            k: v.clone().requires_grad_(True) for k, v in StackedModel.replicate(stacked.initial_params(), 3).items()
        }

    fast = train_population(fresh(), copy_losses, sgd_update(0.05), steps=10)
    params, diverged, steps_done = plain_train_population(fresh(), copy_losses, plain_sgd(0.05), steps=10)
    assert fast.diverged.tolist() == diverged.tolist() == [False, True, False]
    assert fast.steps_done.tolist() == steps_done.tolist() == [10, 3, 10]
    assert all(torch.equal(fast.params[k], params[k]) for k in params)


def test_unrolled_steps_give_the_same_meta_gradient_as_the_masked_loop():
    torch.manual_seed(1)
    stacked = StackedModel(torch.nn.Linear(3, 2))
    X, Y = torch.randn(16, 3), torch.randint(2, (16,))
    losses = [CompiledLoss(Expression.parse(t)) for t in TREES[:3]]
    weights = (1 + 0.01 * torch.randn(3, 12)).requires_grad_(True)

    def copy_losses(theta, _):
        return CandidateLosses(losses, weights, "classification").per_copy(stacked(theta, X), same_targets(Y, 3))

    def unrolled(theta, grads, _active):
        return {k: v - 0.1 * g for (k, v), g in zip(theta.items(), grads)}

    def meta_grad(loop):
        theta = {
            k: v.clone().requires_grad_(True) for k, v in StackedModel.replicate(stacked.initial_params(), 3).items()
        }
        out = loop(theta, copy_losses, unrolled, steps=2, create_graph=True)
        params = out.params if hasattr(out, "params") else out[0]
        outer = torch.nn.functional.cross_entropy(stacked(params, X).reshape(-1, 2), Y.repeat(3))
        return torch.autograd.grad(outer, [weights])[0]

    assert torch.equal(meta_grad(train_population), meta_grad(plain_train_population))


def test_train_candidates_with_prepared_targets_matches_per_step_one_hot():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4))
    stacked = StackedModel(net)
    X, Y = torch.randn(50, 5), torch.randint(4, (50,))
    losses = [CompiledLoss(Expression.parse(t)) for t in TREES]
    weights = 1 + 0.01 * torch.randn(4, 12)
    params = StackedModel.replicate(stacked.initial_params(), 4)
    fast = train_candidates(
        stacked,
        params,
        losses,
        weights,
        (X, Y),
        kind="classification",
        steps=15,
        lr=0.1,
        sampler=BatchSampler(50, 16, 3),
    )
    sampler = BatchSampler(50, 16, 3)

    def copy_losses(theta, _):
        index = sampler.next()
        return CandidateLosses(losses, weights, "classification").per_copy(
            stacked(theta, X[index]), same_targets(Y[index], 4)
        )

    theta = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    plain, _, _ = plain_train_population(theta, copy_losses, plain_sgd(0.1), steps=15)
    assert all(torch.equal(fast.params[k], plain[k].detach()) for k in plain)


def test_candidate_losses_equal_each_loss_on_its_own_slice():
    torch.manual_seed(3)
    losses = [CompiledLoss(Expression.parse(t)) for t in TREES]
    outputs = torch.randn(4, 6, 3, requires_grad=True)
    weights = (1 + 0.1 * torch.randn(4, 12)).requires_grad_(True)
    target = torch.randint(3, (6,))
    population = CandidateLosses(losses, weights, "classification")
    assert isinstance(population, PopulationLoss)
    values = population.per_copy(outputs, same_targets(target, 4))
    fx = torch.softmax(outputs, dim=-1)
    y = target_to_y(target, 3, "classification", fx.dtype)
    expected = torch.stack([loss(weights[k], y, fx[k]).sum(-1).mean() for k, loss in enumerate(losses)])
    assert torch.equal(values, expected)
    one = CandidateLosses(losses[2:3], weights[2:3], "classification").per_copy(outputs[2:3], target.unsqueeze(0))
    assert torch.equal(one, expected[2:3])
    grads = torch.autograd.grad(values.sum(), [outputs, weights])
    want = torch.autograd.grad(expected.sum(), [outputs, weights])
    assert all(torch.equal(a, b) for a, b in zip(grads, want))


@pytest.mark.parametrize("text", TREES + ["(fx * -1.5)", "max(y, min(fx, 0.3))"])
def test_compiled_loss_unbinds_its_weights_without_changing_values_or_gradients(text):
    loss = CompiledLoss(Expression.parse(text))
    weights = (1 + 0.1 * torch.randn(loss.n_weights, generator=torch.Generator().manual_seed(4))).requires_grad_(True)
    y = torch.nn.functional.one_hot(torch.tensor([0, 2, 1]), 3).float()
    fx = torch.softmax(torch.randn(3, 3, generator=torch.Generator().manual_seed(5)), -1).requires_grad_(True)
    unbound = loss(weights, y, fx)
    selected = torch.broadcast_to(loss._fn(weights, y, fx), fx.shape)  # w[index]: one select per edge
    assert torch.equal(unbound, selected)
    a = torch.autograd.grad(unbound.sum(), [weights, fx])
    b = torch.autograd.grad(selected.sum(), [weights, fx])
    assert all(torch.equal(x, z) for x, z in zip(a, b))


def test_masked_adam_all_rows_path_equals_the_indexed_path():
    grads = [torch.randn(3, 5, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    full = MaskedAdam((3, 5), lr=0.01)
    part = MaskedAdam((4, 5), lr=0.01)  # a fourth, always inactive row forces the indexed path
    a, b = torch.ones(3, 5), torch.ones(4, 5)
    for g in grads:
        full.step(a, g, torch.ones(3, dtype=torch.bool))
        part.step(b, torch.cat([g, torch.full((1, 5), math.nan)]), torch.tensor([True, True, True, False]))
    assert torch.equal(a, b[:3]) and torch.equal(b[3], torch.ones(5))
    assert torch.equal(full.m, part.m[:3]) and torch.equal(full.t, part.t[:3])


def test_torch_threads_sets_and_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(None):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_auto_threads_picks_one_thread_for_small_cpu_models_only():
    assert auto_threads("auto", torch.nn.Linear(3, 2), "cpu") == 1
    assert auto_threads("auto", torch.nn.Linear(SMALL_MODEL_PARAMETERS, 1), "cpu") is None
    assert auto_threads("auto", torch.nn.Linear(3, 2), "meta") is None  # not a CPU: torch's own setting
    assert auto_threads(3, None, "cpu") == 3 and auto_threads(None, None, "cpu") is None
    for bad in (0, -1, 1.5, True, "two"):
        with pytest.raises(ConfigError, match="threads"):
            check_threads(bad)


def test_evaluator_results_do_not_depend_on_its_thread_setting():
    import evomal_sr as es

    task = es.Task.builtin("iris", seed=0)
    candidates = ["-(y * log(fx))", "square(y - fx)", "(y * tanh(fx))"]
    with torch_threads(2):
        auto = es.Evaluator(task, preset="tiny", seed=1).evaluate(candidates)
        assert torch.get_num_threads() == 2  # restored after evaluate
        torch_own = es.Evaluator(task, preset="tiny", seed=1, threads=None).evaluate(candidates)
    assert [(r.fitness, r.weights, r.status) for r in auto] == [(r.fitness, r.weights, r.status) for r in torch_own]


def test_candidate_losses_take_each_copys_own_targets():
    """The population-loss contract: copy ``k`` on ``targets[k]``, shared rows or not."""
    torch.manual_seed(4)
    losses = [CompiledLoss(Expression.parse(t)) for t in TREES]
    outputs, weights = torch.randn(4, 6, 3), 1 + 0.1 * torch.randn(4, 12)
    targets = torch.randint(3, (4, 6))
    population = CandidateLosses(losses, weights, "classification")
    values = population.per_copy(outputs, targets)
    alone = [
        CandidateLosses(losses[k : k + 1], weights[k : k + 1], "classification").per_copy(
            outputs[k : k + 1], targets[k : k + 1]
        )
        for k in range(4)
    ]
    assert torch.equal(values, torch.cat(alone))
    shared = population.per_copy(outputs, same_targets(targets[1], 4))
    assert torch.equal(shared, population.per_copy(outputs, targets[1].repeat(4, 1)))  # a real copy, not a view
    assert not torch.equal(shared, values)
