"""The population interpreter (evomal_sr.losses.program) against the per-tree CompiledLoss path."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import expressions

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.program import CONST_LEAF, FX_LEAF, OP_CODES, PAD, Y_LEAF, LossProgram, bucket_size, encode
from evomal_sr.losses.symbolic import CompiledLoss

FIXED = [
    "-(y * log(fx))",
    "square((fx - y))",
    "aq(tanh(fx), (y + 2.0))",
    "1.5",
    "y",
    "fx",
    "-2.5",
    "(max(sqrt(fx), min(y, -1.0)) * abs((fx - sign(y))))",
    "exp((fx * 3.0))",
    "-(fx)",
    "((((y + fx) * (y - fx)) + log(square(fx))) - aq(y, sqrt(abs(fx))))",
    "tanh(tanh(tanh(tanh(tanh(fx)))))",
    "(1e+30 * fx)",
    "(y * 0.1)",
    "min(fx, 0.3)",
]


def per_tree(program, weights, y, fx):
    """The reference: each candidate's compiled tree on its own slice."""
    return torch.stack([torch.broadcast_to(loss(weights[k], y, fx[k]), fx[k].shape) for k, loss in enumerate(program)])


def derivatives(run, weights, y, logits):
    """Values, d/d logits (through fx = softmax) and the meta-gradient d/d weights of a differentiated step."""
    weights = weights.detach().clone().requires_grad_(True)
    logits = logits.detach().clone().requires_grad_(True)
    values = run(weights, y, torch.softmax(logits, -1))
    total = values.sum(-1).mean(-1).sum()
    zero = torch.zeros_like(weights)
    if not total.requires_grad:  # depends on neither fx nor the weights (e.g. "y")
        return [values.detach(), torch.zeros_like(logits), zero, zero]
    grad_fx, grad_w = torch.autograd.grad(total, [logits, weights], create_graph=True, allow_unused=True)
    grad_w = None if grad_w is None else grad_w.detach()
    if grad_fx is None or not grad_fx.requires_grad:
        return [
            values.detach(),
            torch.zeros_like(logits) if grad_fx is None else grad_fx,
            zero if grad_w is None else grad_w,
            zero,
        ]
    outer = ((logits - 0.1 * grad_fx) ** 2).sum()
    (meta,) = torch.autograd.grad(outer, weights, allow_unused=True)
    return [values.detach(), grad_fx.detach(), zero if grad_w is None else grad_w, zero if meta is None else meta]


def inputs(program, dtype, seed=0, batch=6, classes=4):
    gen = torch.Generator().manual_seed(seed)
    K, E = len(program), max(max(loss.n_weights for loss in program), 1) + 2  # padded weight rows
    weights = (1 + 0.1 * torch.randn(K, E, generator=gen, dtype=torch.float64)).to(dtype)
    logits = torch.randn(K, batch, classes, generator=gen, dtype=torch.float64).to(dtype)
    labels = torch.randint(classes, (batch,), generator=gen)
    y = torch.nn.functional.one_hot(labels, classes).to(dtype)
    return weights, y, logits


def assert_matches(program, dtype, *, rtol, atol, seed=0):
    weights, y, logits = inputs(program, dtype, seed)
    ours = derivatives(program, weights, y, logits)
    reference = derivatives(lambda w, yy, fx: per_tree(program, w, yy, fx), weights, y, logits)
    for name, a, b in zip(("values", "grad fx", "grad weights", "meta-gradient"), ours, reference):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m, n=name: f"{n}: {m}")


def test_encoding_of_one_tree():
    t = encode(["square((fx - y))", "2.0"])
    assert t.ops.shape == (2, bucket_size(4)) == (2, 8)
    assert t.ops[0, :5].tolist() == [OP_CODES["square"], OP_CODES["-"], FX_LEAF, Y_LEAF, PAD]
    assert t.children[0, 0].tolist() == [1, -1] and t.children[0, 1].tolist() == [2, 3]
    assert t.weight_slots[0, :4].tolist() == [-1, 0, 1, 2]  # preorder slot s carries edge weight s - 1
    assert t.heights[0, :5].tolist() == [2, 1, 0, 0, -1]
    assert t.ops[1, 0] == CONST_LEAF and t.constants[1, 0] == 2.0 and t.sizes.tolist() == [4, 1]


def test_bucket_sizes_and_explicit_slots():
    assert [bucket_size(n) for n in (1, 7, 8, 9, 16, 17, 100)] == [8, 8, 8, 16, 16, 32, 128]
    assert encode(["fx"], slots=40).ops.shape == (1, 40)
    with pytest.raises(ExpressionError, match="slots=2"):
        encode(["square((fx - y))"], slots=2)


def test_float64_matches_the_per_tree_path():
    assert_matches(LossProgram(FIXED), torch.float64, rtol=1e-10, atol=1e-10)


def test_float32_matches_the_per_tree_path():
    assert_matches(LossProgram(FIXED), torch.float32, rtol=1e-5, atol=1e-6)


def test_values_are_bit_identical_to_the_per_tree_path():
    program = LossProgram(FIXED)
    for dtype in (torch.float32, torch.float64):
        weights, y, logits = inputs(program, dtype, seed=3, batch=8, classes=4)  # 32 elements: no tail loop
        fx = torch.softmax(logits, -1)
        assert torch.equal(program(weights, y, fx), per_tree(program, weights, y, fx))


def test_a_per_candidate_y_and_regression_shapes():
    program = LossProgram(["square((fx - y))", "(y * fx)"])
    y, fx, weights = (
        torch.randn(2, 5, 1, dtype=torch.float64),
        torch.randn(2, 5, 1, dtype=torch.float64),
        torch.rand(2, 4, dtype=torch.float64),
    )
    expected = torch.stack([program[k](weights[k], y[k], fx[k]) for k in range(2)])
    torch.testing.assert_close(program(weights, y, fx), expected, rtol=0, atol=0)


def test_wrong_shapes_are_refused():
    program = LossProgram(["fx", "y"])
    with pytest.raises(ExpressionError, match="2 candidates"):
        program(torch.ones(3, 1), torch.ones(4), torch.ones(3, 4))
    with pytest.raises(ExpressionError, match="at least one"):
        LossProgram([])


def test_a_candidate_does_not_depend_on_its_batch_mates():
    alone = LossProgram([FIXED[7]])
    mates = LossProgram([FIXED[10], FIXED[0], FIXED[7], FIXED[3], FIXED[11]], slots=64)  # other bucket too
    weights, y, logits = inputs(mates, torch.float64, seed=5)
    together = derivatives(mates, weights, y, logits)
    single = derivatives(alone, weights[2:3, : alone[0].n_weights], y, logits[2:3])
    for a, b in zip(together[:2], single[:2]):
        assert torch.equal(a[2:3], b)
    for a, b in zip(together[2:], single[2:]):  # weight rows are padded differently
        n = alone[0].n_weights
        assert torch.equal(a[2, :n], b[0, :n]) and not a[2, n:].any()


def test_repeat_interleave_repeats_each_candidate():
    program = LossProgram(["fx", "(y + 1.0)"]).repeat_interleave(3)
    assert [str(loss.expression) for loss in program] == ["fx"] * 3 + ["(y + 1.0)"] * 3
    weights, y, logits = inputs(program, torch.float64)
    torch.testing.assert_close(program(weights, y, logits), per_tree(program, weights, y, logits))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(expressions(max_depth=5, max_magnitude=50.0), min_size=1, max_size=4), st.integers(0, 2**16))
def test_random_populations_match_the_per_tree_path(exprs, seed):
    assert_matches(LossProgram([Expression(e.root) for e in exprs]), torch.float64, rtol=1e-10, atol=1e-10, seed=seed)


def test_compiled_losses_are_reused():
    losses = [CompiledLoss(Expression.parse(text)) for text in FIXED[:3]]
    program = LossProgram(losses)
    assert list(program) == losses and program[1] is losses[1] and len(program) == 3
