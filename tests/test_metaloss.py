"""The meta-loss network: reference equality, gradients, weight folding, persistence."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import expressions

from evomal_sr import ConfigError, Expression, ExpressionError, LearnedLoss, LossFileError
from evomal_sr.core.fileio import MAX_JSON_BYTES
from evomal_sr.core.kinds import TASK_KINDS
from evomal_sr.losses.symbolic import (
    FILE_FORMAT,
    FILE_VERSION,
    CompiledLoss,
    initial_weights,
    prepare_inputs,
    reduce_loss,
)

CE = "-(y * log(fx))"
MSE = "square(fx - y)"
BCE = "-((y * log(fx)) + ((1.0 - y) * log((1.0 - fx))))"


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _classification(batch=16, classes=5, seed=0, dtype=torch.float32):
    g = _gen(seed)
    logits = (2 * torch.randn(batch, classes, generator=g)).to(dtype)
    labels = torch.randint(0, classes, (batch,), generator=g)
    return logits, labels


def _close(a, b, tol=1e-6):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


# -- reference losses --------------------------------------------------------------------


def test_cross_entropy_integer_labels():
    loss = LearnedLoss(CE, task="classification")
    # batch == classes must not be mistaken for one-hot targets
    for seed, (batch, classes) in enumerate([(16, 5), (4, 4), (2, 2), (1, 3), (3, 7)]):
        logits, labels = _classification(batch=batch, classes=classes, seed=seed)
        _close(loss(logits, labels), F.cross_entropy(logits, labels))
        _close(loss(logits, F.one_hot(labels, classes)), F.cross_entropy(logits, labels))


def test_cross_entropy_one_hot_and_soft_targets():
    loss = LearnedLoss(CE, task="classification")
    logits, labels = _classification(classes=4)
    expected = F.cross_entropy(logits, labels)
    _close(loss(logits, F.one_hot(labels, 4).float()), expected)
    _close(loss(logits, F.one_hot(labels, 4)), expected)  # integer one-hot
    soft = torch.softmax(torch.randn(16, 4, generator=_gen(5)), dim=-1)
    _close(loss(logits, soft), F.cross_entropy(logits, soft))


def test_cross_entropy_float64_and_gradient():
    loss = LearnedLoss(CE, task="classification").double()
    logits, labels = _classification(dtype=torch.float64)
    logits.requires_grad_(True)
    ours = loss(logits, labels)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = F.cross_entropy(logits, labels)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(32,), (32, 1), (32, 3)])
def test_mse(shape):
    g = _gen(1)
    pred, target = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    loss = LearnedLoss(MSE, task="regression")
    _close(loss(pred, target), F.mse_loss(pred, target))


def test_mse_target_shape_is_matched_to_prediction():
    g = _gen(2)
    pred, target = torch.randn(8, generator=g), torch.randn(8, 1, generator=g)
    _close(LearnedLoss(MSE, task="regression")(pred, target), F.mse_loss(pred, target.reshape(8)))


@pytest.mark.parametrize("shape", [(16,), (16, 1)])
def test_binary_single_output_uses_sigmoid(shape):
    g = _gen(3)
    logits = torch.randn(shape, generator=g)
    labels = torch.randint(0, 2, shape, generator=g)
    expected = F.binary_cross_entropy_with_logits(logits, labels.float())
    loss = LearnedLoss(BCE, task="classification")
    _close(loss(logits, labels.float()), expected)
    _close(loss(logits, labels), expected)  # integer 0/1 labels
    y, fx = prepare_inputs(logits, labels, "classification")
    assert fx.shape == y.shape == (16, 1)
    _close(fx, torch.sigmoid(logits).reshape(16, 1))


def test_prepare_inputs_and_reduce_loss():
    logits, labels = _classification(batch=6, classes=3)
    y, fx = prepare_inputs(logits, labels, "classification")
    assert y.shape == fx.shape == (6, 3)
    _close(fx.sum(-1), torch.ones(6))
    assert torch.equal(y.argmax(-1), labels)
    elementwise = torch.arange(18.0).reshape(6, 3)
    assert reduce_loss(elementwise, "classification").item() == pytest.approx(elementwise.sum() / 6)
    assert reduce_loss(elementwise, "regression").item() == pytest.approx(elementwise.mean())


def test_initial_weights():
    assert torch.equal(initial_weights(4, noise=0), torch.ones(4))
    w = initial_weights(1000, generator=_gen(0))
    assert w.dtype == torch.float32 and w.shape == (1000,)
    assert (w - 1).abs().max() < 0.01 and (w != 1).any()
    assert torch.equal(w, initial_weights(1000, generator=_gen(0)))
    assert initial_weights(0).shape == (0,)
    assert initial_weights(3, dtype=torch.float64).dtype == torch.float64
    # the module starts (almost) equal to the symbolic loss
    logits, labels = _classification()
    loss = LearnedLoss(CE, task="classification", weights=initial_weights(4, generator=_gen(1)))
    _close(loss(logits, labels), F.cross_entropy(logits, labels), tol=1e-2)


# -- the module --------------------------------------------------------------------------


def test_module_structure_and_training_signal():
    loss = LearnedLoss("aq(y, fx) + log(fx)", task="classification")
    assert loss.n_parameters == Expression.parse("aq(y, fx) + log(fx)").size - 1 == 5
    assert [p is loss.weights for p in loss.parameters()] == [True]
    assert torch.equal(loss.weights.detach(), torch.ones(5))
    assert "aq(y, fx)" in repr(loss) and "classification" in repr(loss)
    logits, labels = _classification()
    loss(logits, labels).backward()
    assert torch.isfinite(loss.weights.grad).all() and (loss.weights.grad != 0).any()


def test_compiled_loss_shapes_and_constants():
    fx = torch.rand(4, 3)
    y = torch.zeros(4, 3)
    for text, expected in [("-1.0", -1.0), ("square(2.0)", 4.0), ("fx - fx", 0.0), ("aq(3.0, 0.0)", 3.0)]:
        compiled = CompiledLoss(Expression.parse(text))
        out = compiled(torch.ones(compiled.n_weights), y, fx)
        assert out.shape == fx.shape
        assert torch.allclose(out, torch.full_like(fx, expected))
    compiled = CompiledLoss(Expression.parse("y"))
    assert compiled.n_weights == 0
    assert torch.equal(compiled(torch.ones(0), y, fx), y)
    # each non-root node's output is scaled by its own weight, in preorder
    compiled = CompiledLoss(Expression.parse("(fx * 2.0) - y"))  # -, *, fx, 2.0, y
    w = torch.tensor([3.0, 5.0, 7.0, 11.0])
    torch.testing.assert_close(compiled(w, y + 1, fx), (fx * 5 * 2.0 * 7) * 3 - 11)


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="clustering"):
        LearnedLoss(CE, task="clustering")
    with pytest.raises(ExpressionError, match="edges"):
        LearnedLoss(CE, weights=[1.0, 1.0])
    with pytest.raises(ExpressionError, match="finite"):
        LearnedLoss(MSE, task="regression", weights=[1.0, math.nan, 1.0])
    with pytest.raises(ExpressionError, match="finite"):
        LearnedLoss(MSE, task="regression", weights=[1.0, 1e300, 1.0])  # inf in float32
    with pytest.raises(ExpressionError, match="__import__"):
        LearnedLoss("__import__('os')")


# -- gradcheck (float64) of the loss w.r.t. the edge weights -------------------------------

GRADCHECK = [
    (CE, "classification"),
    ("aq(fx - y, 1.0 + fx) + log(fx)", "classification"),
    ("max(fx, y) - min(fx, y * 0.5)", "classification"),
    (BCE, "binary"),
    ("tanh(square(fx - y)) * sign(fx)", "regression"),
    ("sqrt(abs(fx - y)) + aq(y, fx)", "regression"),
    ("min(square(fx - y), abs(fx - y)) + max(fx - y, -1.0) * 2.0", "regression"),
    ("-(tanh(aq(fx, y)) * max(y, fx))", "regression"),
]


def _task_data(kind, seed=0):
    g = _gen(seed)
    if kind == "classification":
        return 2 * torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randint(0, 4, (8,), generator=g)
    if kind == "binary":
        return torch.randn(8, 1, generator=g, dtype=torch.float64), torch.randint(0, 2, (8,), generator=g)
    return torch.randn(8, 2, generator=g, dtype=torch.float64), torch.randn(8, 2, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("text", "kind"), GRADCHECK)
def test_gradcheck_edge_weights(text, kind):
    output, target = _task_data(kind)
    task = "regression" if kind == "regression" else "classification"
    compiled = CompiledLoss(Expression.parse(text))
    y, fx = prepare_inputs(output, target, task)

    def fn(weights):
        return reduce_loss(compiled(weights, y, fx), task)

    weights = 1 + 0.1 * torch.randn(compiled.n_weights, generator=_gen(7), dtype=torch.float64)
    weights.requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (weights,), eps=1e-6, atol=1e-5, rtol=1e-4)

    def fn2(weights, output):  # jointly through prepare_inputs (softmax / sigmoid)
        return reduce_loss(compiled(weights, *prepare_inputs(output, target, task)), task)

    output = output.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn2, (weights, output), eps=1e-6, atol=1e-5, rtol=1e-4)


# -- folding the weights into an expression ------------------------------------------------

DATA = {
    "classification": _task_data("classification", 11),
    "binary": _task_data("binary", 12),
    "regression": _task_data("regression", 13),
}


def _perturbed(expr, kind, seed, scale=0.2):
    task = "regression" if kind == "regression" else "classification"
    loss = LearnedLoss(expr, task=task)
    with torch.no_grad():
        loss.weights.copy_(1 + scale * torch.randn(loss.n_parameters, generator=_gen(seed)))
    return loss, task


@settings(max_examples=60, deadline=None)
@given(
    expr=expressions(max_depth=4, max_magnitude=3.0, complete=True),
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(sorted(DATA)),
)
def test_expression_with_weights_matches_module(expr, seed, kind):
    loss, task = _perturbed(expr, kind, seed)
    folded = loss.expression_with_weights()
    assert isinstance(folded, Expression)
    assert Expression.parse(str(folded)) == folded
    output, target = (t.float() if t.is_floating_point() else t for t in DATA[kind])

    # float32: the module vs a fresh module of the folded expression (unit weights)
    ours = loss(output, target)
    theirs = LearnedLoss(folded, task=task)(output, target)
    if torch.isfinite(ours):
        torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
    else:
        assert not torch.isfinite(theirs)

    # float64: elementwise against the NumPy evaluation of the folded expression
    y, fx = prepare_inputs(*DATA[kind], task)
    with torch.no_grad():
        module = loss.double().elementwise(y, fx).numpy()
    np.testing.assert_allclose(
        module, folded.evaluate_numpy(y.numpy(), fx.numpy()), rtol=1e-9, atol=1e-12, equal_nan=True
    )


def test_expression_with_weights_examples():
    loss = LearnedLoss(MSE, task="regression")
    assert loss.expression_with_weights() == loss.expression  # unit weights fold away
    loss = LearnedLoss(MSE, task="regression", weights=[2.0, 1.0, 0.5])  # -, fx, y
    assert str(loss.expression_with_weights()) == "square((2.0 * (fx - (0.5 * y))))"
    loss = LearnedLoss("aq(fx, -1.0)", task="regression", weights=[1.0, 3.0])
    assert str(loss.expression_with_weights()) == "aq(fx, -3.0)"


# -- persistence ---------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
#: free-form metadata: the fields a run description reads back (``core.fileio.check_origin``) have their own tests
CHECKED_FIELDS = ("task", "seed", "preset", "engine", "settings", "overrides")
metadata_strategy = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key not in CHECKED_FIELDS),
    st.one_of(json_scalars, st.lists(json_scalars, max_size=3)),
    max_size=4,
)


@pytest.mark.parametrize("metadata", [{"engine": False}, {"seed": "zero"}, {"task": "iris"}, {"preset": 3}])
def test_metadata_that_would_not_load_back_is_refused_when_the_loss_is_made(metadata):
    with pytest.raises(ConfigError, match="metadata"):
        LearnedLoss("square(fx - y)", task="regression", metadata=metadata)


@settings(max_examples=40, deadline=None)
@given(expr=expressions(max_depth=5), kind=st.sampled_from(sorted(DATA)), data=st.data(), metadata=metadata_strategy)
def test_save_load_round_trip(expr, kind, data, metadata):
    task = "regression" if kind == "regression" else "classification"
    n = expr.size - 1
    weights = data.draw(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=n, max_size=n))
    loss = LearnedLoss(expr, task=task, weights=weights, metadata=metadata)
    with tempfile.TemporaryDirectory() as tmp:
        path = loss.save(Path(tmp) / "nested" / "loss.json")
        assert sorted(os.listdir(Path(tmp) / "nested")) == ["loss.json"]
        back = LearnedLoss.load(path)
        text = path.read_text()
    assert json.loads(text)["format"] == FILE_FORMAT
    assert back.expression == expr and str(back.expression) == str(expr)
    assert back.task == task
    assert back.metadata == metadata
    assert back.weights.dtype == loss.weights.dtype
    assert torch.equal(back.weights, loss.weights)
    output, target = (t.float() if t.is_floating_point() else t for t in DATA[kind])
    with torch.no_grad():
        torch.testing.assert_close(back(output, target), loss(output, target), rtol=0, atol=0, equal_nan=True)
    assert LearnedLoss.from_dict(loss.to_dict()).to_dict() == loss.to_dict()


def test_save_load_trained_loss(tmp_path):
    loss, _ = _perturbed(Expression.parse("aq(fx - y, 1.0 + fx) + log(fx)"), "classification", 4)
    path = loss.save(tmp_path / "loss.json")
    back = LearnedLoss.load(str(path))
    logits, labels = _classification()
    assert torch.equal(back(logits, labels), loss(logits, labels))
    record = json.loads(path.read_text())
    assert record["version"] == FILE_VERSION and record["task"] == "classification"
    assert set(record) >= {"format", "version", "expression", "weights", "task", "metadata"}


def _valid_record(**changes):
    record = LearnedLoss(CE, task="classification", metadata={"note": "x"}).to_dict()
    record.update(changes)
    return record


def _without(key):
    record = _valid_record()
    del record[key]
    return record


BAD_RECORDS = {
    "list": [],
    "string": "loss",
    "null": None,
    "wrong-format": _valid_record(format="something-else"),
    "no-format": _without("format"),
    "wrong-version": _valid_record(version=2),
    "string-version": _valid_record(version="1"),
    "no-version": _without("version"),
    "weights-short": _valid_record(weights=[1.0, 1.0]),
    "weights-long": _valid_record(weights=[1.0] * 9),
    "weights-strings": _valid_record(weights=["1.0", "1.0", "1.0", "1.0"]),
    "weights-bools": _valid_record(weights=[True, True, True, True]),
    "weights-nested": _valid_record(weights=[[1.0], 1.0, 1.0, 1.0]),
    "weights-null": _valid_record(weights=None),
    "weights-dict": _valid_record(weights={"0": 1.0}),
    "weights-huge-int": _valid_record(weights=[10**400, 1, 1, 1]),
    "weights-overflow-float32": _valid_record(weights=[1e300, 1.0, 1.0, 1.0]),
    "no-weights": _without("weights"),
    "hostile-expression": _valid_record(expression="__import__('os').system('touch {sentinel}')"),
    "hostile-expression-2": _valid_record(expression="fx.__class__"),
    "expression-number": _valid_record(expression=1.0),
    "expression-dict": _valid_record(expression={"var": "fx"}),
    "no-expression": _without("expression"),
    "empty-expression": _valid_record(expression=""),
    "bad-task": _valid_record(task="clustering"),
    "task-number": _valid_record(task=1),
    "task-list": _valid_record(task=["classification"]),
    "no-task": _without("task"),
    "metadata-list": _valid_record(metadata=[1, 2]),
}
BAD_TEXTS = {
    "not-json": "this is not json",
    "truncated": '{"format": "evomal-sr/learned-loss", ',
    "empty": "",
    "nan-literal": json.dumps(_valid_record()).replace("[1.0, 1.0, 1.0, 1.0]", "[NaN, 1.0, 1.0, 1.0]"),
    "infinity-literal": json.dumps(_valid_record()).replace("[1.0, 1.0, 1.0, 1.0]", "[Infinity, 1, 1, 1]"),
    "overflowing-number": json.dumps(_valid_record()).replace("[1.0, 1.0, 1.0, 1.0]", "[1e999, 1, 1, 1]"),
    "deeply-nested": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
def test_load_rejects_malformed_records(tmp_path, name):
    sentinel = tmp_path / "pwned"
    text = json.dumps(BAD_RECORDS[name]).replace("{sentinel}", str(sentinel))
    path = tmp_path / "loss.json"
    path.write_text(text)
    with pytest.raises(LossFileError):
        LearnedLoss.load(path)
    assert not sentinel.exists()
    with pytest.raises(LossFileError):
        LearnedLoss.from_dict(json.loads(text))


@pytest.mark.parametrize("name", sorted(BAD_TEXTS))
def test_load_rejects_malformed_files(tmp_path, name):
    path = tmp_path / "loss.json"
    path.write_text(BAD_TEXTS[name])
    with pytest.raises(LossFileError):
        LearnedLoss.load(path)


def test_load_rejects_unreadable_and_huge_files(tmp_path):
    path = tmp_path / "loss.json"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(LossFileError):
        LearnedLoss.load(path)
    with pytest.raises(LossFileError, match="cannot read"):
        LearnedLoss.load(tmp_path / "missing.json")
    with pytest.raises(LossFileError):
        LearnedLoss.load(tmp_path)  # a directory
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)  # sparse: cheap to create
    with pytest.raises(LossFileError, match="bytes"):
        LearnedLoss.load(huge)


def test_loaded_errors_are_value_errors(tmp_path):
    path = tmp_path / "loss.json"
    path.write_text("{}")
    with pytest.raises(ValueError):
        LearnedLoss.load(path)


def test_atomic_save(tmp_path, monkeypatch):
    loss = LearnedLoss(CE, task="classification")
    path = tmp_path / "loss.json"
    loss.save(path)
    LearnedLoss(MSE, task="regression").save(path)  # overwrite
    assert os.listdir(tmp_path) == ["loss.json"]
    assert LearnedLoss.load(path).expression == Expression.parse(MSE)
    before = path.read_bytes()

    # a failure between writing and renaming leaves the old file and no temp file
    import evomal_sr.core.fileio as fileio

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(fileio.os, "replace", broken_replace)
        with pytest.raises(OSError, match="disk on fire"):
            loss.save(path)
    assert os.listdir(tmp_path) == ["loss.json"]
    assert path.read_bytes() == before

    # unserialisable metadata fails before anything is written
    with pytest.raises((TypeError, ValueError)):
        LearnedLoss(CE, metadata={"bad": math.nan}).save(tmp_path / "other.json")
    with pytest.raises((TypeError, ValueError)):
        LearnedLoss(CE, metadata={"bad": object()}).save(tmp_path / "other.json")
    assert os.listdir(tmp_path) == ["loss.json"]


@pytest.mark.parametrize("kind", TASK_KINDS)
def test_to_dict_from_dict(kind):
    loss = LearnedLoss("aq(y, fx) + log(fx)", task=kind, weights=[0.5, 1.0, 2.0, 1.5, 1.0])
    back = LearnedLoss.from_dict(loss.to_dict())
    assert back.task == kind and torch.equal(back.weights, loss.weights)


def test_learned_loss_pickles_and_deep_copies():
    import copy
    import io
    import pickle

    loss = LearnedLoss("aq(y, log(fx)) - square(fx)", task="classification")
    with torch.no_grad():
        loss.weights.add_(0.1)
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    restored = pickle.loads(pickle.dumps(loss))
    copied = copy.deepcopy(loss)
    buffer = io.BytesIO()
    torch.save(loss, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    for other in (restored, copied, saved):
        assert other.expression == loss.expression
        assert torch.equal(other(logits, labels), loss(logits, labels))
