"""Tests for tasks, built-in datasets and base models."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from evomal_sr.data.arrays import infer_kind
from evomal_sr.data.csv import read_csv
from evomal_sr.data.datasets import DATASETS, MNIST1D_SAMPLES, get_dataset
from evomal_sr.data.models import MODELS, build_model
from evomal_sr.data.paper_models import PAPER_MODELS
from evomal_sr.data.splits import OUTLIER_RANGE
from evomal_sr.data.tasks import Task
from evomal_sr.errors import ConfigError, TaskError


# ------------------------------------------------------------------ helpers
def blobs(n=300, n_classes=4, n_features=5, seed=0):
    """Separable-ish classification data with string-free integer labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, n_features)) + y[:, None]
    return X, y


def regression_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    return X, 3.0 * X[:, 0] + 0.5 + rng.normal(scale=0.1, size=n)


def write_csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def numeric_csv(n=60, label=lambda i: i % 2):
    return "a,b,label\n" + "".join(f"{i * 0.5},{(i * 7) % 11},{label(i)}\n" for i in range(n))


# -------------------------------------------------------------- label noise
@pytest.mark.parametrize("noise", [0.0, 0.1, 0.25, 0.4, 0.9])
def test_classification_noise_exact_and_flips_to_other_class(noise):
    X, y = blobs()
    task = Task.from_arrays(X, y, seed=3, label_noise=noise)
    n_train = len(task.y_train)
    assert int(task.noisy_mask.sum()) == round(noise * n_train)
    changed = task.y_train != task.y_train_clean
    assert torch.equal(changed, task.noisy_mask)  # every corrupted label differs
    assert task.y_train.min() >= 0 and task.y_train.max() < task.n_outputs
    # validation and test labels are the true ones
    for split, labels in (("val", task.y_val), ("test", task.y_test)):
        assert np.array_equal(labels.numpy(), y[task.split_indices[split]])
    assert np.array_equal(task.y_train_clean.numpy(), y[task.split_indices["train"]])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 150), n_classes=st.integers(2, 4), noise=st.floats(0.0, 0.99), seed=st.integers(0, 10_000))
def test_noise_count_property(n, n_classes, noise, seed):
    X, y = blobs(n=n, n_classes=n_classes, seed=seed)
    task = Task.from_arrays(X, y, kind="classification", seed=seed, label_noise=noise)
    assert int(task.noisy_mask.sum()) == round(noise * len(task.y_train))
    assert torch.equal(task.y_train != task.y_train_clean, task.noisy_mask)


def test_flips_are_uniform_over_other_classes():
    task = Task.builtin("digits", seed=0, label_noise=0.6)
    mask = task.noisy_mask
    offsets = (task.y_train[mask] - task.y_train_clean[mask]) % 10
    counts = torch.bincount(offsets, minlength=10).numpy()
    assert counts[0] == 0
    expected = mask.sum().item() / 9
    assert np.all(np.abs(counts[1:] - expected) < 0.4 * expected)


@pytest.mark.parametrize("noise", [0.0, 0.2, 0.5])
def test_regression_noise_exact_outliers_train_only(noise):
    X, y = regression_data()
    task = Task.from_arrays(X, y, kind="regression", seed=1, label_noise=noise)
    mask = task.noisy_mask
    assert int(mask.sum()) == round(noise * len(task.y_train))
    changed = (task.y_train != task.y_train_clean).any(dim=1)
    assert torch.equal(changed, mask)
    low, high = OUTLIER_RANGE
    magnitude = task.y_train[mask].abs()
    assert bool(((magnitude >= low) & (magnitude <= high)).all())
    if noise >= 0.2:  # both signs occur
        assert (task.y_train[mask] > 0).any() and (task.y_train[mask] < 0).any()
    scaled = (y[:, None] - task.target_mean) / task.target_std
    for split, targets in (("val", task.y_val), ("test", task.y_test)):
        np.testing.assert_allclose(targets.numpy(), scaled[task.split_indices[split]], rtol=1e-5, atol=1e-5)


def test_noise_reproducible_and_seed_dependent():
    X, y = blobs()
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    Task.builtin("sinusoid", seed=3, label_noise=0.3).make_model(seed=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    a = Task.from_arrays(X, y, seed=5, label_noise=0.3)
    b = Task.from_arrays(X, y, seed=5, label_noise=0.3)
    c = Task.from_arrays(X, y, seed=6, label_noise=0.3)
    assert torch.equal(a.noisy_mask, b.noisy_mask) and torch.equal(a.y_train, b.y_train)
    assert a.describe() == b.describe()
    assert not torch.equal(a.y_train, c.y_train)
    assert a.describe()["fingerprint"] != c.describe()["fingerprint"]


# ------------------------------------------------------------------- splits
def test_splits_disjoint_complete_and_sized():
    X, y = blobs(n=500)
    task = Task.from_arrays(X, y, seed=0)
    idx = task.split_indices
    every = np.concatenate([idx["train"], idx["val"], idx["test"]])
    assert len(every) == len(np.unique(every)) == 500
    assert (len(idx["train"]), len(idx["val"]), len(idx["test"])) == (300, 100, 100)
    assert (len(task.X_train), len(task.X_val), len(task.X_test)) == (300, 100, 100)
    d = task.describe()
    assert (d["n_train"], d["n_val"], d["n_test"]) == (300, 100, 100)


def test_splits_reproducible_and_seed_dependent():
    X, y = regression_data()
    a, b = (Task.from_arrays(X, y, seed=11) for _ in range(2))
    c = Task.from_arrays(X, y, seed=12)
    for split in ("train", "val", "test"):
        assert np.array_equal(a.split_indices[split], b.split_indices[split])
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not np.array_equal(a.split_indices["test"], c.split_indices["test"])


def test_stratified_splits():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [300, 150, 50])
    X = rng.normal(size=(len(y), 2))
    task = Task.from_arrays(X, y, seed=2)
    total = np.bincount(y)
    for split, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = np.bincount(y[task.split_indices[split]], minlength=3)
        assert np.all(np.abs(counts - frac * total) <= 1.0), (split, counts)


# ---------------------------------------------------------- standardisation
def test_features_standardised_with_train_statistics_only():
    X, y = regression_data()
    X[:, 2] = 4.0  # zero-variance column
    task = Task.from_arrays(X, y, seed=0)
    train = X[task.split_indices["train"]]
    np.testing.assert_allclose(task.feature_mean, train.mean(0))
    Xt = task.X_train.double().numpy()
    np.testing.assert_allclose(Xt[:, :2].mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(Xt[:, :2].std(0), 1.0, atol=1e-5)
    assert torch.isfinite(task.X_val).all() and not task.X_train[:, 2].any()
    expected = (X[task.split_indices["val"]] - train.mean(0)) / task.feature_std
    np.testing.assert_allclose(task.X_val.numpy(), expected, rtol=1e-5, atol=1e-5)
    # the statistics are the training split's, not all rows'
    assert not np.allclose(task.feature_mean[:2], X.mean(0)[:2])
    clean = task.y_train_clean.double()
    assert abs(clean.mean().item()) < 1e-6 and abs(clean.std(unbiased=False).item() - 1) < 1e-5


def test_tensor_dtypes_and_shapes():
    cls_task = Task.from_arrays(*blobs(), seed=0)
    assert cls_task.X_train.dtype == torch.float32
    assert cls_task.y_train.dtype == torch.int64 and cls_task.y_train.ndim == 1
    reg = Task.from_arrays(*regression_data(), seed=0)
    assert reg.y_train.dtype == torch.float32 and reg.y_train.shape == (120, 1)
    assert reg.n_outputs == 1 and reg.baseline_expression == "square(fx - y)"
    assert cls_task.baseline_expression == "-(y * log(fx))"
    multi = Task.from_arrays(np.arange(60.0)[:, None], np.random.default_rng(0).normal(size=(60, 3)))
    assert multi.kind == "regression" and multi.n_outputs == 3 and multi.y_test.shape == (12, 3)


def test_binary_task_has_two_outputs_and_torch_inputs():
    X = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    task = Task.from_arrays(X, X[:, 0] > 0, seed=0)
    assert task.kind == "classification" and task.n_outputs == 2
    assert task.classes.tolist() == [False, True]


def test_image_shaped_x_sets_input_shape():
    X = np.random.default_rng(0).normal(size=(50, 4, 5))
    task = Task.from_arrays(X, np.arange(50) % 2, model="cnn")
    assert task.input_shape == (4, 5) and task.n_features == 20
    assert task.make_model(seed=0)(task.X_val).shape == (10, 2)


# ------------------------------------------------------------ bad data
@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        (numeric_csv(), {"target": "missing"}, r"'missing' not found.*columns are: a, b, label"),
        ("a,b,label\n" + "1,x,0\n" * 30, {}, r"non-numeric value 'x' in feature column 'b'"),
        ("a,b,label\n" + "1,nan,0\n2,3,1\n" * 15, {}, r"feature 'b' has a NaN"),
        ("a,b,label\n" + "1,inf,0\n2,3,1\n" * 15, {}, r"feature 'b' has a NaN or infinite"),
        ("a,b,label\n" + "1,2,0\n2,3,nan\n" * 15, {}, r"NaN or infinite"),
        ("a,b,label\n" + "1,2,inf\n2,3,0.5\n" * 15, {}, r"NaN or infinite"),
        ("a,b,label\n1,2,0\n3,,1\n", {}, r"line 3: empty value in column 'b'"),
        ("a,b,label\n1,2,0\n3,4\n", {}, r"line 3: 2 fields, but the header has 3"),
        ("", {}, r"is empty"),
        ("a,b,label\n", {}, r"no data rows"),
        ("label\n1\n2\n", {}, r"no feature columns"),
        (numeric_csv(label=lambda i: "cat"), {}, r"single class \('cat'\)"),
        (numeric_csv(n=7), {}, r"too few rows: 7; at least 10"),
        (numeric_csv(n=30, label=lambda i: i % 10), {"kind": "classification"}, r"too few rows: 30; at least 50"),
        (numeric_csv(label=lambda i: 2 if i == 0 else i % 2), {}, r"only 1 row"),
        (numeric_csv(label=lambda i: i % 7), {}, r"cannot tell.*kind="),
    ],
)
def test_bad_csv_raises_task_error(tmp_path, text, kwargs, match):
    path = write_csv(tmp_path, text)
    with pytest.raises(TaskError, match=match):
        Task.from_csv(path, **{"target": "label", **kwargs})


def test_missing_csv_file(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        Task.from_csv(tmp_path / "nope.csv", target="y")


def test_string_target_cannot_be_regression(tmp_path):
    path = write_csv(tmp_path, numeric_csv(label=lambda i: "ab"[i % 2]))
    with pytest.raises(TaskError, match="not numeric"):
        Task.from_csv(path, target="label", kind="regression")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.arange(99) % 2}, r"X has 100 rows but y has 99"),
        ({"label_noise": 1.0}, r"label_noise must be in \[0, 1\)"),
        ({"label_noise": -0.1}, r"label_noise must be in \[0, 1\)"),
        ({"label_noise": float("nan")}, r"label_noise"),
        ({"label_noise": "0.2"}, r"label_noise must be a number"),
        ({"kind": "clustering"}, r"unknown task kind 'clustering'; use one of classification, regression"),
        ({"model": "transformer"}, r"unknown model 'transformer'; built-in models are: linear, mlp, cnn"),
        ({"model": nn.Linear(3, 2)}, r"not a module instance"),
        ({"model": 42}, r"callable"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"X": np.array([["1", "2", "a"]] * 100, dtype=object)}, r"column 2 holds a non-numeric value 'a'"),
        ({"y": np.array([0.0] * 99 + [np.nan])}, r"NaN or infinite"),
        ({"input_shape": (2, 2)}, r"input_shape \(2, 2\) has 4 values, but X has 3 features"),
    ],
)
def test_bad_arrays_raise_task_error(kwargs, match):
    args = {"X": np.random.default_rng(0).normal(size=(100, 3)), "y": np.arange(100) % 2, **kwargs}
    with pytest.raises(TaskError, match=match) as info:
        Task.from_arrays(args.pop("X"), args.pop("y"), **args)
    assert isinstance(info.value, ValueError)


def test_unknown_dataset_lists_names():
    with pytest.raises(TaskError, match=r"unknown dataset 'mnist'.*digits.*sinusoid"):
        Task.builtin("mnist")
    with pytest.raises(TaskError, match="built-in datasets"):
        get_dataset(["digits"])


def test_unknown_model_in_builtin():
    with pytest.raises(TaskError, match="built-in models are: linear, mlp, cnn"):
        Task.builtin("iris", model="resnet")


# ----------------------------------------------------------- kind inference
def test_kind_inference_from_csv(tmp_path):
    strings = Task.from_csv(write_csv(tmp_path, numeric_csv(label=lambda i: "zyx"[i % 3])), target="label")
    assert strings.kind == "classification" and strings.classes.tolist() == ["x", "y", "z"]
    # labels encoded in sorted order: 'x' -> 0, 'y' -> 1, 'z' -> 2
    raw = np.array(["zyx"[i % 3] for i in range(60)])
    assert np.array_equal(strings.classes[strings.y_val.numpy()], raw[strings.split_indices["val"]])
    floats = Task.from_csv(write_csv(tmp_path, numeric_csv(label=lambda i: i * 0.37), "f.csv"), target="label")
    assert floats.kind == "regression" and floats.name == "f"
    binary = Task.from_csv(write_csv(tmp_path, numeric_csv(label=lambda i: 5 + 2 * (i % 2)), "b.csv"), target="label")
    assert binary.kind == "classification" and binary.classes.tolist() == [5.0, 7.0]
    forced = Task.from_csv(
        write_csv(tmp_path, numeric_csv(label=lambda i: i % 7), "k.csv"), target="label", kind="classification"
    )
    assert forced.n_outputs == 7


def test_infer_kind_rules():
    assert infer_kind(np.arange(1000) % 10) == "classification"  # 10 values, 1 % of rows
    assert infer_kind(np.arange(60) % 2) == "classification"  # binary always
    assert infer_kind(np.array(["a", "b", "a"])) == "classification"
    assert infer_kind(np.array([True, False, True])) == "classification"
    assert infer_kind(np.linspace(0, 1, 50)) == "regression"
    assert infer_kind(np.arange(200) * 3) == "regression"  # 200 distinct integers in 200 rows
    assert infer_kind(np.zeros((10, 2))) == "regression"
    with pytest.raises(TaskError, match="kind="):
        infer_kind(np.arange(60) % 6)  # 6 values in 60 rows: 10 %
    with pytest.raises(TaskError, match="kind="):
        infer_kind(np.arange(10_000) % 30)  # 30 values, 0.3 % of rows


def test_read_csv_returns_names_and_strips(tmp_path):
    X, y, names = read_csv(write_csv(tmp_path, " a , label ,b\n1, x ,2\n3,y,4\n"), target="label")
    assert names == ["a", "b"] and X.tolist() == [[1, 2], [3, 4]] and y.tolist() == ["x", "y"]


# ---------------------------------------------------------------- builtins
FAST_BUILTINS = [name for name in DATASETS if name != "mnist1d"]
EXPECTED = {
    "digits": ("classification", 1797, 64, 10),
    "breast_cancer": ("classification", 569, 30, 2),
    "wine": ("classification", 178, 13, 3),
    "iris": ("classification", 150, 4, 3),
    "diabetes": ("regression", 442, 10, 1),
    "friedman1": ("regression", 1000, 10, 1),
    "sinusoid": ("regression", 1000, 1, 1),
}


@pytest.mark.parametrize("name", FAST_BUILTINS)
def test_builtin_loads(name):
    kind, rows, n_features, n_outputs = EXPECTED[name]
    task = Task.builtin(name, seed=0, label_noise=0.2)
    assert (task.kind, task.n_features, task.n_outputs) == (kind, n_features, n_outputs)
    d = task.describe()
    assert d["n_train"] + d["n_val"] + d["n_test"] == rows
    assert json.loads(json.dumps(d)) == d and d["model"] == "mlp" and d["name"] == name
    for model in (m for m in MODELS if m not in PAPER_MODELS):  # paper models: tests/test_models_any.py
        out = task.make_model(seed=0) if model == "mlp" else Task.builtin(name, model=model).make_model(seed=0)
        assert out(task.X_test).shape == (d["n_test"], n_outputs)


def test_generated_builtins_depend_on_seed():
    for name in ("friedman1", "sinusoid"):
        a, b = DATASETS[name].load(seed=0), DATASETS[name].load(seed=0)
        c = DATASETS[name].load(seed=1)
        assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])


@pytest.fixture(scope="module")
def mnist1d_task():
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    task = Task.builtin("mnist1d", seed=0, model="cnn")
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state
    return task


@pytest.mark.slow
def test_mnist1d_generated_locally(mnist1d_task):
    task = mnist1d_task
    assert task.kind == "classification" and task.n_features == 40 and task.n_outputs == 10
    assert task.input_shape == (40,)
    assert sum(len(v) for v in task.split_indices.values()) == MNIST1D_SAMPLES
    net = task.make_model(seed=0)
    assert any(isinstance(m, nn.Conv1d) for m in net.modules())
    assert net(task.X_val).shape == (len(task.X_val), 10)
    again = Task.builtin("mnist1d", seed=0)  # cached per seed, identical
    assert torch.equal(again.X_train, task.X_train)


# ------------------------------------------------------------------ models
def test_cnn_is_2d_on_digits_and_1d_on_tabular():
    digits = Task.builtin("digits", model="cnn")
    net = digits.make_model(seed=0)
    assert any(isinstance(m, nn.Conv2d) for m in net.modules())
    assert net(digits.X_train[:7]).shape == (7, 10)
    wine = Task.builtin("wine", model="cnn").make_model(seed=0)
    assert any(isinstance(m, nn.Conv1d) for m in wine.modules())
    tiny = build_model("cnn", n_features=1, n_outputs=1, input_shape=(1,))
    assert tiny(torch.zeros(4, 1)).shape == (4, 1)
    with pytest.raises(TaskError, match="input_shape"):
        build_model("cnn", n_features=10, n_outputs=2, input_shape=(3, 3))


def test_mlp_is_paper_architecture():
    net = Task.builtin("digits").make_model()
    widths = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]
    assert widths == [(64, 100), (100, 100), (100, 10)]


def test_seeded_build_is_deterministic_and_leaves_global_rng():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = build_model("cnn", n_features=64, n_outputs=10, input_shape=(8, 8), seed=7)
    b = build_model("cnn", n_features=64, n_outputs=10, input_shape=(8, 8), seed=7)
    c = build_model("cnn", n_features=64, n_outputs=10, input_shape=(8, 8), seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


@pytest.mark.parametrize("model", ["mlp", "cnn", "linear"])
def test_models_work_with_torch_func_stacking(model):
    from torch.func import functional_call, stack_module_state

    task = Task.builtin("digits", model=model)
    nets = [task.make_model(seed=s) for s in range(3)]
    params, buffers = stack_module_state(nets)
    base = nets[0].to("meta")

    def forward(p, b, x):
        return functional_call(base, (p, b), (x,))

    out = torch.vmap(forward, in_dims=(0, 0, None))(params, buffers, task.X_val[:5])
    assert out.shape == (3, 5, 10)
    torch.testing.assert_close(out[1], nets[1](task.X_val[:5]))


def test_custom_model_factories():
    class Net(nn.Module):
        def __init__(self, n_features, n_outputs):
            super().__init__()
            self.fc = nn.Linear(n_features, n_outputs)

        def forward(self, x):
            return self.fc(x)

    seen = {}

    def with_kwargs(**kwargs):
        seen.update(kwargs)
        return nn.Linear(kwargs["n_features"], kwargs["n_outputs"])

    X, y = blobs()
    for factory in (Net, with_kwargs, lambda: nn.Linear(5, 4)):
        task = Task.from_arrays(X, y, model=factory)
        assert task.make_model(seed=1)(task.X_val).shape == (60, 4)
        assert task.describe()["model"] == "custom"
    assert seen == {"n_features": 5, "n_outputs": 4, "input_shape": (5,)}


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: "not a module", "returned str, not a torch.nn.Module"),
        (lambda: nn.Linear(5, 3), r"expected \[2, 4\]"),
        (lambda: nn.Linear(6, 4), "fails on a float32"),
        (lambda depth: nn.Linear(5, 4), "requires depth"),
    ],
)
def test_bad_custom_model_factories(factory, match):
    task = Task.from_arrays(*blobs(), model=factory)
    with pytest.raises(TaskError, match=match):
        task.make_model()


# ----------------------------------------------------------------- devices
def test_to_device_copies_tensors():
    task = Task.builtin("iris", label_noise=0.1)
    assert task.to("cpu") is task and task.device == torch.device("cpu")
    meta = task.to("meta")
    assert meta is not task and meta.X_train.device.type == "meta" and meta.noisy_mask.device.type == "meta"
    assert task.X_train.device.type == "cpu"
    assert next(meta.make_model(seed=0).parameters()).device.type == "meta"
    with pytest.raises(ConfigError, match="unknown device"):
        task.to("gpu:banana")


def test_train_and_val_and_repr():
    task = Task.builtin("wine", seed=2, label_noise=0.2)
    X, y = task.train_and_val()
    assert len(X) == len(y) == task.n_train + len(task.X_val)
    assert "wine" in repr(task) and "label_noise=0.2" in repr(task)
