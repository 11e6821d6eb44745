"""Task noise and imbalance options: noisy validation labels, pair / matrix noise, Student-t targets, imbalance."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from evomal_sr.data.noise import NoiseOptions, check_transition_matrix
from evomal_sr.data.tasks import Task
from evomal_sr.errors import TaskError

# Hashes of default tasks' arrays, recorded before the noise options existed (commit f3ee404):
# the defaults must keep every array, split and fingerprint bit-identical.
DEFAULT_HASHES = {
    ("iris", 0, 0.2): "52aa94e3721982b1f7a4",
    ("digits", 0, 0.0): "68469f0f345bef233edb",
    ("digits", 3, 0.4): "6be26730d7a9b53ffef2",
    ("breast_cancer", 1, 0.3): "5773456775209d199a88",
    ("diabetes", 0, 0.2): "48011157c8f7fafe434f",
    ("friedman1", 2, 0.1): "4f2ee2fe9ad8e3ddbd64",
    ("sinusoid", 0, 0.0): "a5f408448728fbf826dd",
}


def _task_hash(task: Task) -> str:
    h = hashlib.sha256()
    for name in ("X_train", "y_train", "y_train_clean", "X_val", "y_val", "X_test", "y_test", "noisy_mask"):
        h.update(getattr(task, name).numpy().tobytes())
    for split in ("train", "val", "test"):
        h.update(np.asarray(task.split_indices[split]).tobytes())
    h.update(task.describe()["fingerprint"].encode())
    return h.hexdigest()[:20]


@pytest.mark.parametrize(("name", "seed", "noise"), list(DEFAULT_HASHES))
def test_defaults_are_bit_identical_to_before(name, seed, noise):
    task = Task.builtin(name, seed=seed, label_noise=noise)
    assert _task_hash(task) == DEFAULT_HASHES[(name, seed, noise)]
    explicit = Task.builtin(name, seed=seed, label_noise=noise, noise="symmetric", noisy_splits=("train",))
    assert _task_hash(explicit) == DEFAULT_HASHES[(name, seed, noise)]
    assert not task.noisy_mask_val.any() and torch.equal(task.y_val, task.y_val_clean)
    described = task.describe()
    assert not {"noise", "noisy_splits", "target_noise", "imbalance"} & set(described)


# -- noisy validation labels -------------------------------------------------------------


@pytest.mark.parametrize("noise", ["symmetric", "pair"])
def test_validation_labels_corrupted_exactly(noise):
    base = Task.builtin("digits", seed=1, label_noise=0.4, noise=noise)
    task = Task.builtin("digits", seed=1, label_noise=0.4, noise=noise, noisy_splits=("train", "val"))
    n_val = len(task.y_val)
    assert int(task.noisy_mask_val.sum()) == round(0.4 * n_val)
    assert torch.equal(task.y_val != task.y_val_clean, task.noisy_mask_val)
    assert torch.equal(task.y_val_clean, base.y_val)  # the clean labels are the default task's
    # the training split is corrupted exactly as in a train-only task; test labels never
    assert torch.equal(task.y_train, base.y_train) and torch.equal(task.noisy_mask, base.noisy_mask)
    assert torch.equal(task.y_test, base.y_test)
    assert task.describe()["noisy_splits"] == ["train", "val"]
    assert task.describe()["fingerprint"] != base.describe()["fingerprint"]


def test_validation_only_and_order_free():
    task = Task.builtin("iris", seed=0, label_noise=0.2, noisy_splits=("val",))
    assert not task.noisy_mask.any() and torch.equal(task.y_train, task.y_train_clean)
    assert int(task.noisy_mask_val.sum()) == round(0.2 * len(task.y_val))
    both = Task.builtin("iris", seed=0, label_noise=0.2, noisy_splits=["val", "train"])
    assert both.noise_options.noisy_splits == ("train", "val")


@pytest.mark.parametrize(
    ("splits", "match"),
    [
        (("train", "test"), "test labels are never corrupted"),
        ((), "noisy_splits must be"),
        (("train", "train"), "noisy_splits must be"),
        (("training",), "noisy_splits must be"),
        (3, "noisy_splits must be a tuple"),
    ],
)
def test_noisy_splits_rejected(splits, match):
    with pytest.raises(TaskError, match=match):
        Task.builtin("iris", label_noise=0.1, noisy_splits=splits)


# -- pair noise and transition matrices ---------------------------------------------------


def test_pair_noise_moves_each_class_to_the_next():
    task = Task.builtin("wine", seed=2, label_noise=0.3, noise="pair")
    mask = task.noisy_mask
    assert int(mask.sum()) == round(0.3 * task.n_train)
    assert torch.equal(task.y_train != task.y_train_clean, mask)
    assert torch.equal(task.y_train[mask], (task.y_train_clean[mask] + 1) % 3)
    assert task.describe()["noise"] == "pair" and "noise='pair'" in repr(task)


def test_transition_matrix_redraws_every_label():
    rate = 0.3
    T = np.eye(10) * (1 - rate) + np.roll(np.eye(10), 2, axis=1) * rate  # c -> c + 2 with probability 0.3
    task = Task.builtin("digits", seed=0, noise=T, noisy_splits=("train", "val"))
    for y, clean, mask in (
        (task.y_train, task.y_train_clean, task.noisy_mask),
        (task.y_val, task.y_val_clean, task.noisy_mask_val),
    ):
        assert torch.equal(y != clean, mask)
        assert torch.equal(y[mask], (clean[mask] + 2) % 10)
        assert abs(float(mask.float().mean()) - rate) < 0.06
    assert np.allclose(task.describe()["noise"], T)
    json.dumps(task.describe())  # JSON-ready
    identity = Task.builtin("digits", seed=0, noise=np.eye(10))
    assert not identity.noisy_mask.any() and torch.equal(identity.y_train, identity.y_train_clean)


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (np.eye(2), "shape \\(2, 2\\).*3 classes"),
        (np.full((3, 3), 0.5), "row 0 sums to 1.5"),
        ([[1.2, -0.2, 0.0], [0, 1, 0], [0, 0, 1]], "non-negative"),
        ([[np.nan, 1, 0], [0, 1, 0], [0, 0, 1]], "finite"),
        ([["a", "b", "c"]] * 3, "matrix of numbers"),
    ],
)
def test_bad_transition_matrices(matrix, match):
    with pytest.raises(TaskError, match=match):
        Task.builtin("iris", noise=matrix)


def test_matrix_with_label_noise_and_unknown_models_rejected():
    with pytest.raises(TaskError, match="leave label_noise at 0"):
        Task.builtin("iris", label_noise=0.2, noise=np.eye(3))
    with pytest.raises(TaskError, match="noise must be one of symmetric, pair"):
        Task.builtin("iris", label_noise=0.2, noise="asymmetric")
    with pytest.raises(TaskError, match="for classification"):
        Task.builtin("diabetes", label_noise=0.2, noise="pair")
    with pytest.raises(TaskError, match="for classification"):
        Task.builtin("diabetes", noise=np.eye(2))
    assert check_transition_matrix([[0.5, 0.5], [0.5, 0.5]], 2).dtype == np.float64


# -- heavy-tailed regression noise --------------------------------------------------------


def test_student_t_target_noise():
    base = Task.builtin("friedman1", seed=0)
    task = Task.builtin("friedman1", seed=0, target_noise="student_t", noise_df=2.0, noise_scale=0.5)
    noise = (task.y_train - task.y_train_clean).numpy().ravel()
    assert task.noisy_mask.all() and not task.noisy_mask_val.any()
    assert torch.equal(task.y_train_clean, base.y_train) and torch.equal(task.y_val, base.y_val)
    assert torch.equal(task.y_test, base.y_test)
    assert 0.3 < np.median(np.abs(noise)) / 0.5 < 1.2  # t(2)'s median |t| is 0.82
    assert np.abs(noise).max() > 8 * np.median(np.abs(noise))  # heavy tails, not a Gaussian
    assert task.describe()["target_noise"] == "student_t" and task.describe()["noise_df"] == 2.0
    assert task.describe()["noise_scale"] == 0.5


def test_student_t_on_validation_and_with_outliers():
    task = Task.builtin("diabetes", seed=1, label_noise=0.1, target_noise="student_t", noisy_splits=("train", "val"))
    outliers = Task.builtin("diabetes", seed=1, label_noise=0.1)
    assert task.noisy_mask.all() and task.noisy_mask_val.all()
    assert torch.equal(task.y_val != task.y_val_clean, task.noisy_mask_val.unsqueeze(1))
    # the outliers are the same rows as without target noise, the t noise comes on top
    shifted = (task.y_train - outliers.y_train).abs()
    assert float(shifted[outliers.noisy_mask].max()) < float((task.y_train - task.y_train_clean).abs().max())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"target_noise": "cauchy"}, "target_noise must be None or one of student_t"),
        ({"target_noise": "student_t", "noise_df": 0.5}, "noise_df must be a finite number >= 1"),
        ({"target_noise": "student_t", "noise_scale": 0.0}, "noise_scale must be a finite number > 0"),
        ({"target_noise": "student_t", "noise_scale": float("inf")}, "noise_scale"),
        ({"target_noise": "student_t", "noise_df": True}, "noise_df"),
    ],
)
def test_bad_target_noise(options, match):
    with pytest.raises(TaskError, match=match):
        Task.builtin("sinusoid", **options)


def test_target_noise_is_for_regression():
    with pytest.raises(TaskError, match="target_noise is for regression"):
        Task.builtin("iris", target_noise="student_t")


# -- class imbalance ----------------------------------------------------------------------


def test_imbalance_subsamples_training_rows():
    base = Task.builtin("digits", seed=0)
    task = Task.builtin("digits", seed=0, imbalance=9.0)
    counts = np.bincount(task.y_train.numpy(), minlength=10)
    assert counts.argmax() == 0 and counts.argmin() == 9
    assert abs(counts[0] / counts[9] - 9.0) < 0.6
    assert (np.diff(counts) <= 0).all()  # long-tailed: each class at most the one before
    assert set(task.split_indices["train"]) < set(base.split_indices["train"])
    # validation and test keep the data's own balance (and rows)
    assert torch.equal(task.y_val, base.y_val) and torch.equal(task.y_test, base.y_test)
    assert task.describe()["imbalance"] == 9.0 and task.n_train == counts.sum()
    again = Task.builtin("digits", seed=0, imbalance=9.0)
    assert torch.equal(again.X_train, task.X_train)


def test_imbalance_with_noise_on_the_kept_rows():
    task = Task.builtin("breast_cancer", seed=2, imbalance=4.0, label_noise=0.2, noise="pair")
    counts = np.bincount(task.y_train_clean.numpy())
    assert abs(counts[0] / counts[1] - 4.0) < 0.2
    assert int(task.noisy_mask.sum()) == round(0.2 * task.n_train)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("iris", 0.5, "imbalance must be a finite number >= 1"),
        ("iris", "9", "imbalance must be"),
        ("diabetes", 9.0, "imbalance is for classification"),
    ],
)
def test_bad_imbalance(name, value, match):
    with pytest.raises(TaskError, match=match):
        Task.builtin(name, imbalance=value)


# -- other constructors, devices, options object ------------------------------------------


def test_options_through_other_constructors(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    task = Task.from_arrays(X, y, seed=1, label_noise=0.2, noise="pair", noisy_splits=("train", "val"))
    assert task.noisy_mask_val.any()
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,t\n" + "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y)))
    csv = Task.from_csv(path, target="t", seed=1, label_noise=0.2, noise="pair", noisy_splits=("train", "val"))
    assert torch.equal(csv.y_val, task.y_val) and csv.describe()["noise"] == "pair"


def test_to_moves_the_validation_mask():
    task = Task.builtin("iris", label_noise=0.2, noisy_splits=("train", "val"))
    meta = task.to("meta")
    assert meta.noisy_mask_val.device.type == "meta" and meta.y_val_clean.device.type == "meta"


def test_noise_options_describe_only_what_differs():
    assert NoiseOptions.check(kind="classification", n_classes=3).describe() == {}
    assert NoiseOptions.check(kind="classification", n_classes=3, imbalance=2).describe() == {"imbalance": 2.0}


# -- recorded with a run, and rebuilt from the record ---------------------------------------


@pytest.mark.slow
def test_options_recorded_in_a_runs_pareto_json_and_rebuilt(tmp_path):
    import evomal_sr as es
    from evomal_sr.cli.evaluate import _build_task

    task = Task.builtin("iris", seed=1, model="linear", label_noise=0.2, noise="pair", noisy_splits=("train", "val"))
    es.LossSearch(preset="tiny", population=4, generations=1, out_dir=tmp_path / "run").fit(task)
    recorded = json.loads((tmp_path / "run" / "pareto.json").read_text())["config"]["task"]
    assert recorded["noise"] == "pair" and recorded["noisy_splits"] == ["train", "val"]
    rebuilt = _build_task(recorded, dataset=None, model=None, label_noise=None)
    assert rebuilt.describe() == task.describe() and torch.equal(rebuilt.y_val, task.y_val)
    # --label-noise redefines the noise: the recorded kind is dropped
    assert _build_task(recorded, dataset=None, model=None, label_noise=0.1).describe().get("noise") is None


def test_csv_task_with_options_reopens_without_a_false_changed_file(tmp_path):
    from evomal_sr.cli.evaluate import _build_task

    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    path = tmp_path / "d.csv"
    path.write_text("a,b,t\n" + "".join(f"{a},{b},{int(a > 0)}\n" for a, b in X))
    T = [[0.7, 0.3], [0.1, 0.9]]
    task = Task.from_csv(path, target="t", seed=2, noise=T, imbalance=3.0, noisy_splits=("train", "val"))
    rebuilt = _build_task(task.describe(), dataset=None, model=None, label_noise=None)
    assert rebuilt.describe()["fingerprint"] == task.describe()["fingerprint"]
    assert torch.equal(rebuilt.y_train, task.y_train)
