"""FrozenLoss (subtrees free of fx computed once) against the compiled tree, bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import searchable_expressions

from evomal_sr.evaluation.population import batched_loss
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.base import same_targets
from evomal_sr.losses.frozen import FrozenLoss
from evomal_sr.losses.symbolic import CompiledLoss, LearnedLoss
from evomal_sr.training.loop import BatchSampler, CandidateLosses, binary_targets, train_candidates
from evomal_sr.training.screening import rejection_protocol
from evomal_sr.training.stacked import StackedModel

# trees of a paper search's kind: most of their operations lie in subtrees of y and constants
PAPER_LIKE = [
    "(-1.0 * (aq(y, fx) * log(fx)))",
    "(aq(log(tanh(1.0)), sqrt(min(fx, -1.0))) * (log((-1.0 + (y - fx))) - fx))",
    "(aq(log(tanh(y)), sqrt(min(fx, -1.0))) * (log((-1.0 + (y - fx))) - fx))",
    "(aq((1.283 * log((1.283 * sign((0.9998 * y))))), (0.873 * fx)) * (0.3232 - (1.284 * fx)))",
    "max(square(tanh(y)), sqrt((y - fx)))",
    "(sign(aq(fx, 1.0)) - log(tanh((y * fx))))",
    "square(max(tanh(-1.0), square(aq(y, fx))))",
    "((y * log(sqrt(abs(y)))) - (log(fx) * (tanh(y) + 0.5)))",
    "y",
    "tanh(2.0)",
    "fx",
]
#: batch shapes whose sizes are and are not multiples of a vector register (vectorised and scalar loop tails)
SHAPES = [(128, 10), (7, 3), (33, 1), (1, 2)]


def one_hot(shape, generator):
    rows, classes = shape
    if classes == 1:
        return torch.randint(0, 2, (rows, 1), generator=generator).float()
    return torch.nn.functional.one_hot(torch.randint(0, classes, (rows,), generator=generator), classes).float()


def value_and_grad(fn, fx):
    fx = fx.detach().clone().requires_grad_(True)
    value = fn(fx)
    if not value.requires_grad:
        return value, None
    (grad,) = torch.autograd.grad(value.sum(), fx)
    return value.detach(), grad


def assert_same(a, b):
    """``torch.equal`` with NaNs in the same places counted equal (NaN != NaN)."""
    if a is None or b is None:
        assert a is None and b is None
        return
    assert torch.equal(a.isnan(), b.isnan())
    assert torch.equal(a.nan_to_num(0.0, 0.0, 0.0), b.nan_to_num(0.0, 0.0, 0.0))


def check(expression, weights, y, fx, *, binary: bool):
    loss = CompiledLoss(Expression.parse(expression))
    frozen = FrozenLoss(loss, weights, binary_targets=binary)
    for _ in range(2):  # the second call reads what the first computed
        expected = value_and_grad(lambda f: loss(weights, y, f), fx)
        got = value_and_grad(lambda f: frozen(y, f), fx)
        assert_same(expected[0], got[0])
        assert_same(expected[1], got[1])


@pytest.mark.parametrize("expression", PAPER_LIKE)
@pytest.mark.parametrize("shape", SHAPES)
def test_paper_like_trees_equal_the_compiled_tree(expression, shape):
    generator = torch.Generator().manual_seed(0)
    n = CompiledLoss(Expression.parse(expression)).n_weights
    weights = 1.0 + 0.3 * torch.randn(max(n, 1), generator=generator)
    y = one_hot(shape, generator)
    fx = torch.softmax(torch.randn(shape, generator=generator), -1) if shape[1] > 1 else torch.rand(shape)
    check(expression, weights, y, fx, binary=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=searchable_expressions(max_depth=5, max_magnitude=10.0),
    shape=st.sampled_from(SHAPES),
    seed=st.integers(0, 2**16),
    unit=st.booleans(),
)
def test_random_trees_equal_the_compiled_tree(expression, shape, seed, unit):
    generator = torch.Generator().manual_seed(seed)
    n = CompiledLoss(expression).n_weights
    weights = torch.ones(max(n, 1)) if unit else 1.0 + 0.5 * torch.randn(max(n, 1), generator=generator)
    y = one_hot(shape, generator)
    fx = torch.softmax(3.0 * torch.randn(shape, generator=generator), -1)
    check(str(expression), weights, y, fx, binary=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=searchable_expressions(max_depth=5, max_magnitude=10.0), seed=st.integers(0, 2**16))
def test_real_valued_targets_fold_constants_only(expression, seed):
    generator = torch.Generator().manual_seed(seed)
    n = CompiledLoss(expression).n_weights
    weights = 1.0 + 0.5 * torch.randn(max(n, 1), generator=generator)
    y, fx = torch.randn(16, 1, generator=generator), torch.randn(16, 1, generator=generator)
    check(str(expression), weights, y, fx, binary=False)


def test_a_layout_the_templates_do_not_share_is_evaluated_directly():
    generator = torch.Generator().manual_seed(1)
    y = one_hot((12, 4), generator).t().contiguous().t()  # the same values, column-major
    fx = torch.softmax(torch.randn(12, 4, generator=generator), -1)
    assert not y.is_contiguous()
    check(PAPER_LIKE[2], torch.full((20,), 1.1), y, fx, binary=True)


def test_templates_are_kept_per_shape():
    loss = CompiledLoss(Expression.parse(PAPER_LIKE[2]))
    weights = torch.full((loss.n_weights,), 0.9)
    frozen = FrozenLoss(loss, weights, binary_targets=True)
    generator = torch.Generator().manual_seed(2)
    for shape in [(8, 3), (5, 3), (8, 3)]:
        y, fx = one_hot(shape, generator), torch.softmax(torch.randn(shape, generator=generator), -1)
        assert torch.equal(frozen(y, fx), loss(weights, y, fx))


def test_binary_targets():
    assert binary_targets(torch.eye(3), "classification")
    assert not binary_targets(torch.tensor([[0.9, 0.1]]), "classification")
    assert not binary_targets(torch.eye(3), "regression")


def population_values(losses, weights, outputs, y, **fixed):
    outputs = outputs.detach().clone().requires_grad_(True)
    values = CandidateLosses(losses, weights, "classification", **fixed).per_copy(outputs, same_targets(y, len(losses)))
    (grad,) = torch.autograd.grad(values.sum(), outputs)
    return values.detach(), grad


@pytest.mark.parametrize("K", [1, 3])
def test_candidate_losses_with_fixed_weights_are_the_same_bits(K):
    losses = [CompiledLoss(Expression.parse(t)) for t in PAPER_LIKE[:K]]
    generator = torch.Generator().manual_seed(3)
    weights = 1.0 + 0.2 * torch.randn(K, max(x.n_weights for x in losses), generator=generator)
    outputs, y = torch.randn(K, 64, 10, generator=generator), one_hot((64, 10), generator)
    plain = population_values(losses, weights, outputs, y)
    fixed = population_values(losses, weights, outputs, y, fixed_weights=True, binary_targets=True)
    assert len(CandidateLosses(losses, weights, "classification", fixed_weights=True).frozen_losses) == K
    for a, b in zip(plain, fixed):
        assert torch.equal(a, b)


def test_training_and_rejection_are_unchanged_by_the_folding(monkeypatch):
    """train_candidates and rejection_protocol fold; with the folding switched off they give the same bits."""
    losses = [CompiledLoss(Expression.parse(t)) for t in PAPER_LIKE[:4]]
    weights = torch.full((4, max(x.n_weights for x in losses)), 1.05)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    stacked = StackedModel(net)
    generator = torch.Generator().manual_seed(4)
    X, Y = torch.randn(40, 6, generator=generator), torch.randint(0, 3, (40,), generator=generator)

    def run():
        params = stacked.replicate(stacked.initial_params(), 4)
        trained = train_candidates(
            stacked, params, losses, weights, (X, Y), kind="classification", steps=15, lr=0.1,
            sampler=BatchSampler(40, 16, 0),
        )  # fmt: skip
        passed = rejection_protocol(
            losses, kind="classification", targets=Y, n_outputs=3, steps=10, lr=0.1, margin=0.0, seed=0
        )
        return trained.params, passed

    folded = run()
    monkeypatch.setattr(CandidateLosses, "__post_init__", lambda self: None)  # no FrozenLoss: the plain trees
    plain = run()
    assert torch.equal(folded[1], plain[1])
    for name in plain[0]:
        assert torch.equal(folded[0][name], plain[0][name])


@pytest.mark.parametrize("kind", ["classification", "regression"])
@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_the_meta_tests_frozen_learned_loss_is_the_same_bits(kind, scale):
    """batched_loss folds a learned loss whose weights do not train; the values and gradients are elementwise's."""
    expression = PAPER_LIKE[2] if kind == "classification" else "(log(cosh_like(y)) + square((fx - y)))"
    expression = expression.replace("cosh_like(y)", "(1.5 + tanh((y * 2.0)))")
    trained = LearnedLoss(expression, task=kind, scale=scale)
    n = trained.n_parameters
    trained.weights.data = 1.0 + 0.3 * torch.randn(n, generator=torch.Generator().manual_seed(5))
    frozen = copy.deepcopy(trained).requires_grad_(False)
    generator = torch.Generator().manual_seed(6)
    outputs = torch.randn(3, 16, 4 if kind == "classification" else 1, generator=generator)
    targets = torch.randint(0, 4, (3, 16), generator=generator) if kind == "classification" else torch.randn(3, 16)
    results = []
    for module in (trained, frozen):
        out = outputs.clone().requires_grad_(True)
        values = batched_loss(module)(out, targets)
        (grad,) = torch.autograd.grad(values.sum(), out)
        results.append((values.detach(), grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    if kind == "classification":  # float labels (perhaps soft: one output, 0.3) take the plain path, the same values
        soft = torch.full((3, 16), 0.3)
        one = outputs[..., :1]
        assert torch.equal(batched_loss(frozen)(one, soft), batched_loss(trained)(one, soft).detach())
