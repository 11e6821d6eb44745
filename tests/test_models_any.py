"""Any nn.Module: BatchNorm (per-copy running statistics), Dropout (seeded, per copy), fallback."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import evomal_sr as es
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.training.loop import BatchSampler, evaluate_metric, train_candidates
from evomal_sr.training.stacked import StackedModel


def bn_dropout_mlp(n_features, n_outputs):
    return nn.Sequential(
        nn.Linear(n_features, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, n_outputs)
    )


class DataDependent(nn.Module):
    """Python control flow on tensor values: vmap cannot run it."""

    def __init__(self, n_features=3, n_outputs=2):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        out = self.linear(x)
        return out * 2 if float(out.detach().sum()) > 0 else out


def test_batchnorm_dropout_matches_a_plain_pytorch_loop():
    """The reference: K=1, the same minibatches, the same dropout masks (global generator seeded
    with ``stacked.forward_seed(n)`` before the n-th training forward), then eval mode."""
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(64, 5, generator=gen), torch.randn(64, 1, generator=gen)
    torch.manual_seed(1)
    net = bn_dropout_mlp(5, 1)
    reference = copy.deepcopy(net)
    stacked = StackedModel(net, seed=7)
    loss = CompiledLoss(Expression.parse("square(fx - y)"))
    steps, lr = 12, 0.05
    params = StackedModel.replicate(stacked.initial_params(), 1)
    outcome = train_candidates(
        stacked,
        params,
        [loss],
        torch.ones(1, max(loss.n_weights, 1)),
        (X, Y),
        kind="regression",
        steps=steps,
        lr=lr,
        sampler=BatchSampler(64, 16, seed=3),
    )
    metric = evaluate_metric(stacked, outcome.params, (X, Y), kind="regression")

    reference.train()
    optimiser = torch.optim.SGD(reference.parameters(), lr=lr)
    sampler = BatchSampler(64, 16, seed=3)
    for n in range(1, steps + 1):
        index = sampler.next()
        torch.manual_seed(stacked.forward_seed(n))
        value = ((reference(X[index]) - Y[index]) ** 2).mean()
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    reference.eval()
    with torch.no_grad():
        expected = ((reference(X) - Y) ** 2).mean()
    for name, p in reference.named_parameters():
        torch.testing.assert_close(outcome.params[name][0], p.detach(), rtol=1e-5, atol=1e-6)
    buffers = stacked.buffers(outcome.params)
    for name, b in reference.named_buffers():
        torch.testing.assert_close(buffers[name][0], b, rtol=1e-5, atol=1e-6)
    assert int(buffers["1.num_batches_tracked"][0]) == steps
    assert float(metric[0]) == pytest.approx(float(expected), rel=1e-5)


def test_running_statistics_are_per_copy_and_eval_mode_uses_them():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    stacked = StackedModel(net)
    params = StackedModel.replicate(stacked.initial_params(), 2)
    params["0.bias"][1] += 5.0  # copy 1 sees shifted activations
    x = torch.randn(8, 2)
    stacked(params, x)
    means = stacked.buffers(params)["1.running_mean"]
    assert not torch.allclose(means[0], means[1])
    before = {k: v.clone() for k, v in stacked.buffers(params).items()}
    out = stacked.evaluate(params, x)
    after = stacked.buffers(params)
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval never updates
    for k in range(2):
        single = copy.deepcopy(net)
        single.load_state_dict({**{n: v[k] for n, v in params.items()}, **{n: v[k] for n, v in after.items()}})
        torch.testing.assert_close(out[k], single.eval()(x))


def test_a_new_run_starts_from_the_initial_buffers():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    stacked = StackedModel(net)
    first = StackedModel.replicate(stacked.initial_params(), 2)
    stacked(first, torch.randn(8, 2) + 3)
    second = StackedModel.replicate(stacked.initial_params(), 2)
    assert torch.equal(stacked.buffers(second)["1.running_mean"], torch.zeros(2, 3))


def test_dropout_differs_per_copy_and_is_reproducible():
    net = nn.Sequential(nn.Linear(4, 32), nn.Dropout(0.5))
    x = torch.randn(6, 4)

    def run():
        stacked = StackedModel(net, seed=0)
        params = StackedModel.replicate(stacked.initial_params(), 3)
        return stacked(params, x), stacked(params, x)

    a1, a2 = run()
    b1, _ = run()
    assert torch.equal(a1, b1)  # same seed, same masks
    assert not torch.equal(a1[0], a1[1])  # independent per copy
    assert not torch.equal(a1, a2)  # a fresh mask every forward
    state = torch.get_rng_state()
    run()
    assert torch.equal(state, torch.get_rng_state())  # the caller's generator is untouched


def test_fallback_one_at_a_time_is_chosen_and_reported():
    net = DataDependent()
    stacked = StackedModel(net)
    params = StackedModel.replicate(stacked.initial_params(), 2)
    params["linear.bias"][1] -= 10.0
    x = torch.randn(4, 3)
    out = stacked(params, x)
    d = stacked.describe()
    assert d["execution"] == "one-at-a-time" and d["fallback_reason"]
    for k in range(2):
        single = copy.deepcopy(net)
        single.load_state_dict({n: v[k] for n, v in params.items()})
        torch.testing.assert_close(out[k], single(x))
    assert StackedModel(nn.Linear(2, 2)).probe(torch.randn(3, 2))["execution"] == "batched"


def test_evaluator_reports_how_the_model_runs():
    task = es.Task.from_arrays(np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2, model=DataDependent)
    ev = es.Evaluator(task, preset="tiny")
    assert ev.model_execution["execution"] == "one-at-a-time"
    assert es.Evaluator(es.Task.builtin("iris"), preset="tiny").model_execution["execution"] == "batched"


def _layered(n_features, n_outputs):
    return nn.Sequential(
        nn.Linear(n_features, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, n_outputs)
    )


@pytest.mark.slow
def test_loss_search_with_batchnorm_dropout_is_reproducible():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    fronts = []
    for _ in range(2):
        task = es.Task.from_arrays(X, y, model=_layered, seed=0)
        search = es.LossSearch(preset="tiny", seed=0).fit(task)
        fronts.append([(m.expression, m.weights, m.fitness) for m in search.pareto_front_])
    assert fronts[0] == fronts[1] and fronts[0]


def test_meta_test_with_batchnorm_dropout_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 4))
    task = es.Task.from_arrays(X, (X[:, 0] > 0).astype(int), model=_layered, seed=0)
    report = es.meta_test(es.LearnedLoss("-(y * log(fx))", task="classification"), task, seeds=2, steps=5)
    assert report is not None


PAPER = ["lenet5", "allcnnc", "vgg11", "vgg16", "resnet18"]


@pytest.mark.parametrize("name", PAPER)
def test_paper_model_trains_a_few_steps_on_tiny_images(name):
    from evomal_sr.data.models import build_model

    shape = (3, 8, 8) if name in ("vgg16", "resnet18") else (1, 12, 12)
    n = int(np.prod(shape))
    net = build_model(name, n_features=n, n_outputs=4, input_shape=shape, seed=0)
    assert net(torch.zeros(3, n)).shape == (3, 4)
    stacked = StackedModel(net, seed=0)
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(16, n, generator=gen), torch.randint(0, 4, (16,), generator=gen)
    loss = CompiledLoss(Expression.parse("-(y * log(fx))"))
    params = StackedModel.replicate(stacked.initial_params(), 2)
    outcome = train_candidates(
        stacked,
        params,
        [loss, loss],
        torch.ones(2, max(loss.n_weights, 1)),
        (X, Y),
        kind="classification",
        steps=2,
        lr=0.01,
        sampler=BatchSampler(16, 8, seed=0),
    )
    assert not outcome.diverged.any()
    metric = evaluate_metric(stacked, outcome.params, (X, Y), kind="classification")
    assert torch.isfinite(metric).all()
    assert stacked.describe()["execution"] == "batched"


def test_paper_models_need_image_shapes():
    from evomal_sr.data.models import build_model
    from evomal_sr.errors import TaskError

    with pytest.raises(TaskError, match="lenet5 needs image data"):
        build_model("lenet5", n_features=10, n_outputs=2, input_shape=(10,))


def test_factory_errors_are_task_errors():
    from evomal_sr.errors import TaskError

    def broken(n_features, n_outputs):
        raise ValueError("no GPU here")

    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(TaskError, match="raised ValueError: no GPU here"):
        es.Task.from_arrays(X, X[:, 0] > 0, model=broken).make_model()
    with pytest.raises(TaskError, match="expected \\[2, 2\\]"):
        es.Task.from_arrays(X, X[:, 0] > 0, model=lambda n_features: nn.Linear(n_features, 5)).make_model()


def test_probe_leaves_batchnorm_buffers_untouched():
    X = np.random.default_rng(0).normal(size=(40, 3))
    net = es.Task.from_arrays(X, X[:, 0] > 0, model=_layered).make_model(seed=0)
    assert int(net[1].num_batches_tracked) == 0 and torch.equal(net[1].running_var, torch.ones(16))


def test_meta_test_with_lenet5_on_digits():
    task = es.Task.builtin("digits", model="lenet5")
    loss = es.LearnedLoss("-(y * log(fx))", task="classification")
    report = es.meta_test(loss, task, seeds=1, steps=3)
    assert report is not None
