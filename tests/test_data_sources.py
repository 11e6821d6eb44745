"""Data a user has: own splits, npz, torch Datasets, CSV columns; bad input; evaluate re-opening data."""

import json
import os

import numpy as np
import pytest
import torch
from clihelpers import assert_one_line_error, invoke
from torch.utils.data import Dataset, TensorDataset

import evomal_sr as es
from evomal_sr.errors import TaskError


def rows(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0).astype(int)


def write(path, text):
    path.write_text(text)
    return path


def csv_text(n=60, sep=","):
    lines = [sep.join(["id", "a", "b", "label"])]
    lines += [sep.join([str(1000 + i), str(i % 7), str((i * 3) % 5), "xy"[i % 2]]) for i in range(n)]
    return "\n".join(lines) + "\n"


# -- own split --------------------------------------------------------------------------
def test_from_arrays_with_own_split():
    X, y = rows()
    split = (np.arange(0, 40), np.arange(40, 50), np.arange(50, 60))
    task = es.Task.from_arrays(X, y, split=split)
    assert task.split_indices["val"].tolist() == list(range(40, 50))
    assert task.n_train == 40 and len(task.y_test) == 10
    np.testing.assert_allclose(task.feature_mean, X[:40].mean(axis=0))


@pytest.mark.parametrize(
    "split, text",
    [
        (([0, 1, 2], [2, 3], [4]), "in both train and val"),
        (([0, 1, 2], [3], [60]), "out of range"),
        (([0, 1], [], [4]), "non-empty"),
        (([0, 1],), "three sequences"),
    ],
)
def test_bad_split_is_one_task_error(split, text):
    X, y = rows()
    with pytest.raises(TaskError, match=text):
        es.Task.from_arrays(X, y, split=split)


# -- npz ------------------------------------------------------------------------------------
def test_from_npz_images_and_own_test(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "imgs.npz"
    np.savez(
        path,
        X=rng.normal(size=(40, 1, 6, 6)),
        y=np.arange(40) % 2,
        X_test=rng.normal(size=(10, 1, 6, 6)),
        y_test=np.arange(10) % 2,
    )
    task = es.Task.from_npz(path, model="lenet5")
    assert task.input_shape == (1, 6, 6) and len(task.y_test) == 10 and task.n_train == 30
    assert task.split_indices["test"].tolist() == list(range(40, 50))
    assert task.make_model(seed=0)(task.X_val).shape == (10, 2)


def test_npz_without_X_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((4, 2)), y=np.arange(4))
    with pytest.raises(TaskError, match="has no array 'X'"):
        es.Task.from_npz(path)


# -- torch Datasets -------------------------------------------------------------------------
def test_from_dataset_materialises_and_uses_given_splits():
    gen = torch.Generator().manual_seed(0)
    train = TensorDataset(torch.randn(50, 2, 3, generator=gen), torch.arange(50) % 2)
    val = TensorDataset(torch.randn(12, 2, 3, generator=gen), torch.arange(12) % 2)
    test = TensorDataset(torch.randn(14, 2, 3, generator=gen), torch.arange(14) % 2)
    task = es.Task.from_dataset(train, val, test)
    assert (task.n_train, len(task.y_val), len(task.y_test)) == (50, 12, 14)
    assert task.input_shape == (2, 3)
    torch.testing.assert_close(task.X_test.shape, torch.Size([14, 6]))


def test_dataset_with_inconsistent_items_is_refused():
    class Ragged(Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return torch.zeros(3 if i < 10 else 4), i % 2

    with pytest.raises(TaskError, match="item 10 has shapes x \\[4\\]"):
        es.Task.from_dataset(Ragged())


# -- CSV ------------------------------------------------------------------------------------
def test_csv_semicolon_drop_and_features(tmp_path):
    path = write(tmp_path / "semi.csv", csv_text(sep=";"))
    dropped = es.Task.from_csv(path, target="label", drop=["id"])
    assert dropped.feature_names == ["a", "b"]
    chosen = es.Task.from_csv(path, target="label", features="b")
    assert chosen.feature_names == ["b"]
    with pytest.raises(TaskError, match="feature column 'nope' not found"):
        es.Task.from_csv(path, target="label", features=["nope"])


def test_csv_multi_output_regression(tmp_path):
    text = "x,y1,y2\n" + "".join(f"{i * 0.1},{i * 0.37},{-i * 0.21}\n" for i in range(40))
    task = es.Task.from_csv(write(tmp_path / "multi.csv", text), target="y1,y2")
    assert task.kind == "regression" and task.n_outputs == 2 and tuple(task.y_test.shape) == (8, 2)


def test_csv_duplicate_header_is_refused(tmp_path):
    path = write(tmp_path / "dup.csv", "a,label,label\n" + "1,2,3\n" * 20)
    with pytest.raises(TaskError, match="repeats the column name 'label'"):
        es.Task.from_csv(path, target="label")


def test_csv_symlink_to_a_system_file_quotes_no_contents(tmp_path):
    secret = tmp_path / "secret"  # stands in for /etc/passwd: no csv suffix, one long first line
    first_line = "root:x:0:0:root:/root:/bin/bash-" + "s3cr3t" * 5
    secret.write_text(first_line + "\n" + "daemon:x:1:1\n")
    link = tmp_path / "data.csv"
    os.symlink(secret, link)
    with pytest.raises(TaskError) as info:
        es.Task.from_csv(link, target="label")
    assert "s3cr3t" not in str(info.value) and "root:x" not in str(info.value)


# -- fuzz findings ----------------------------------------------------------------------------
def test_huge_values_whose_standardisation_overflows_are_refused():
    X, y = rows()
    X[:, 1] = np.where(np.arange(60) % 2, 1e308, -1e308)
    with pytest.raises(TaskError, match="feature 'x1' cannot be standardised"):
        es.Task.from_arrays(X, y)
    with pytest.raises(TaskError, match="target 'target 0' cannot be standardised"):
        es.Task.from_arrays(X[:, :1], np.where(np.arange(60) % 2, 1.7e308, -1.6e308), kind="regression")


def test_ragged_lists_are_a_task_error():
    with pytest.raises(TaskError, match="ragged"):
        es.Task.from_arrays([[1.0, 2.0], [3.0]] * 10, [0, 1] * 10)


def test_complex_features_are_refused():
    X, y = rows()
    with pytest.raises(TaskError, match="complex"):
        es.Task.from_arrays(X + 1j, y)


def test_mixed_type_target_is_refused():
    X, _ = rows(30)
    with pytest.raises(TaskError, match="missing values"):
        es.Task.from_arrays(X, [1, "a", None] * 10)
    with pytest.raises(TaskError, match="mixes value types"):
        es.Task.from_arrays(X, [1, "a", "b"] * 10)


# -- CLI --------------------------------------------------------------------------------------
def test_search_help_lists_the_paper_models():
    text = invoke("search", "--help").stdout
    for name in ("lenet5", "allcnnc", "vgg11", "vgg16", "resnet18", "--npz", "--features", "--drop"):
        assert name in text


def test_cli_unknown_feature_column_exits_2_and_writes_nothing(tmp_path):
    path = write(tmp_path / "d.csv", csv_text())
    out = tmp_path / "run"
    result = invoke(
        "search", "--csv", path, "--target", "label", "--features", "a,zz", "--preset", "tiny", "--out", out, "-q"
    )
    assert_one_line_error(result, "'zz' not found")
    assert not out.exists()


@pytest.mark.slow
def test_evaluate_a_csv_run_named_like_a_builtin_uses_the_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    lines = ["p,q,label"] + [f"{a:.4f},{b:.4f},{int(a > 0)}" for a, b in X]
    path = write(tmp_path / "iris.csv", "\n".join(lines) + "\n")  # same stem as the built-in iris
    out = tmp_path / "run"
    result = invoke("search", "--csv", path, "--target", "label", "--preset", "tiny", "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    config = json.loads((out / "pareto.json").read_text())["config"]["task"]
    assert config["source"]["type"] == "csv" and config["n_features"] == 2
    result = invoke("evaluate", out, "--seeds", "1", "--steps", "3", "-q")
    assert result.exit_code == 0, result.stderr
    assert "n_features=2" in invoke("evaluate", out, "--seeds", "1", "--steps", "3").stdout  # not iris's 4
    path.rename(tmp_path / "moved.csv")
    assert_one_line_error(invoke("evaluate", out, "--seeds", "1", "--steps", "3"), "no longer exists")
    moved = invoke(
        "evaluate",
        out,
        "--csv",
        tmp_path / "moved.csv",
        "--target",
        "label",
        "--model",
        "linear",
        "--seeds",
        "1",
        "--steps",
        "3",
        "-q",
    )
    assert moved.exit_code == 0, moved.stderr


@pytest.mark.slow
def test_search_with_lenet5_on_digits_runs(tmp_path):
    result = invoke(
        "search", "--model", "lenet5", "--dataset", "digits", "--preset", "tiny", "--out", tmp_path / "run", "-q"
    )
    assert result.exit_code == 0, result.stderr
