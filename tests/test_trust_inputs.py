"""Nothing silently wrong in the inputs.

No split holds an ``inf`` after the float32 cast (the column and rows are
named); a CSV's errors all name file lines; the command line names its flags and
the operators of the grammar in use.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clihelpers import assert_one_line_error, invoke

from evomal_sr.data.tasks import Task
from evomal_sr.errors import TaskError


def _features(n: int = 60) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 3))


def _row_in(split: str, y, **options) -> int:
    """A data row that lands in ``split`` (the split depends only on the targets and the seed)."""
    return int(Task.from_arrays(_features(len(y)), y, seed=0, **options).split_indices[split][0])


# -- item 1: every split finite after the float32 cast -----------------------------------


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_huge_feature_outside_the_training_rows_is_refused(split):
    y = np.arange(60) % 2
    row = _row_in(split, y)
    X = _features()
    X[row, 1] = 1e308
    with pytest.raises(TaskError, match=rf"feature 'x1' .*overflow float32.*data row {row} \({split} split\)"):
        Task.from_arrays(X, y, seed=0)


def test_a_huge_feature_in_a_training_row_is_refused_too():
    y = np.arange(60) % 2
    X = _features()
    X[_row_in("train", y), 2] = 1e308
    with pytest.raises(TaskError, match="feature 'x2'"):
        Task.from_arrays(X, y, seed=0)


def test_a_value_that_overflows_only_once_standardised_is_refused():
    """1e37 is a float32, but divided by the training rows' spread (1e-3) it is not."""
    y = np.arange(60) % 2
    row = _row_in("test", y)
    X = _features() * 1e-3
    X[row, 0] = 1e37
    with pytest.raises(TaskError, match=rf"feature 'x0' has 1 value\(s\) that overflow.*data row {row} \(test"):
        Task.from_arrays(X, y, seed=0)


def test_a_huge_regression_target_outside_the_training_rows_is_refused():
    y = np.linspace(0.0, 1.0, 60)
    row = _row_in("val", y)
    y[row] = 1e300  # finite once standardised in float64, infinite in float32
    with pytest.raises(TaskError, match=rf"target 'target 0' .*data row {row} \(val split\)"):
        Task.from_arrays(_features(), y, seed=0)


def test_every_split_of_a_valid_task_is_finite():
    task = Task.from_arrays(_features() * 1e30, np.arange(60) % 2, seed=0)  # large but representable
    for tensor in (task.X_train, task.X_val, task.X_test):
        assert torch.isfinite(tensor).all()


def _write_csv(tmp_path, cells: dict[int, tuple[str, str]] | None = None, n: int = 40):
    """``a,b,label`` rows; ``cells`` maps a data row to replaced ``(column, text)``; returns the path."""
    lines = []
    for i in range(n):
        row = {"a": str(i), "b": str((i * 7) % 5 + 0.5), "label": "cat" if i % 2 else "dog"}
        if cells and i in cells:
            row[cells[i][0]] = cells[i][1]
        lines.append(",".join(row.values()))
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_huge_csv_value_in_any_split_is_refused_naming_its_line(tmp_path, split):
    row = int(Task.from_csv(_write_csv(tmp_path), target="label").split_indices[split][0])
    path = _write_csv(tmp_path, {row: ("b", "1e308")})
    with pytest.raises(TaskError, match=rf"d.csv, line {row + 2}: feature 'b' has the value '1e308', beyond"):
        Task.from_csv(path, target="label")


def test_a_huge_csv_regression_target_is_refused_naming_its_line(tmp_path):
    path = _write_csv(tmp_path, {5: ("b", "-1e300")})
    with pytest.raises(TaskError, match=r"line 7: target 'b' has the value '-1e300'"):
        Task.from_csv(path, target="b", features=["a"])


# -- item 8: a CSV's errors count file lines, all of them ----------------------------------


@pytest.mark.parametrize("column, text", [("a", "nan"), ("b", "inf"), ("b", "-Infinity")])
def test_a_non_finite_csv_value_names_its_file_line_as_an_empty_cell_does(tmp_path, column, text):
    path = _write_csv(tmp_path, {7: (column, text)})
    with pytest.raises(TaskError, match=rf"d.csv, line 9: feature '{column}' has a NaN or infinite value"):
        Task.from_csv(path, target="label")
    empty = _write_csv(tmp_path, {7: (column, "")})
    with pytest.raises(TaskError, match=rf"d.csv, line 9: empty value in column '{column}'"):
        Task.from_csv(empty, target="label")


def test_a_non_finite_csv_target_names_its_file_line(tmp_path):
    path = _write_csv(tmp_path, {3: ("b", "nan")})
    with pytest.raises(TaskError, match=r"line 5: target 'b' has a NaN or infinite value \('nan'\)"):
        Task.from_csv(path, target="b", features=["a"])


# -- item 8: the command line speaks in flags ------------------------------------------------


def test_a_non_numeric_regression_target_names_the_kind_flag(tmp_path):
    result = invoke(
        "search", "--csv", _write_csv(tmp_path), "--target", "label", "--kind", "regression", "--out", tmp_path / "run"
    )
    assert_one_line_error(result, "use --kind classification")
    assert "kind='" not in result.stderr


def test_an_ambiguous_integer_target_names_the_kind_flag(tmp_path):
    path = tmp_path / "ints.csv"
    path.write_text("a,label\n" + "".join(f"{i},{i % 12}\n" for i in range(100)))
    result = invoke("search", "--csv", path, "--target", "label", "--out", tmp_path / "run")
    assert_one_line_error(result, "pass --kind classification or --kind regression")


def test_the_api_keeps_its_own_words():
    from evomal_sr.cli.messages import cli_words

    path_free = "cannot tell ...; pass kind='classification' or kind='regression'"
    assert cli_words(path_free).endswith("pass --kind classification or --kind regression")
    assert cli_words("resume=True needs out_dir: the folder") == "--resume needs --out: the folder"
    assert cli_words("label_noise must be in [0, 1)") == "--label-noise must be in [0, 1)"
    assert cli_words("task 'label_noise' must be a number") == "task 'label_noise' must be a number"  # a file's field
    assert cli_words("no pareto.json in '/tmp/out_dir/x'") == "no pareto.json in '/tmp/out_dir/x'"  # a path
    assert (
        cli_words("give the feature columns (features / --features) or the columns to drop (drop / --drop)")
        == "give the feature columns (--features) or the columns to drop (--drop)"
    )


def test_an_unknown_operator_lists_the_grammars_operators():
    result = invoke("show", "foo(y, fx)")
    assert_one_line_error(
        result,
        "unknown operator 'foo'",
        "the default (paper) grammar has abs, aq, log",
        "the extended set adds exp",
        "the robust set adds huber, pow",
    )
    default = result.stderr.split("grammar has ")[1].split(";")[0]
    assert "exp" not in default and "neg" not in result.stderr


def test_class_names_are_in_the_description_only_when_they_say_something(tmp_path):
    assert Task.from_csv(_write_csv(tmp_path), target="label").describe()["classes"] == ["cat", "dog"]
    assert "classes" not in Task.builtin("iris").describe()  # 0, 1, 2: nothing to add (nor to a checkpoint)
    labelled = Task.from_arrays(_features(), np.where(np.arange(60) % 2, 3, 7), seed=0)
    assert labelled.describe()["classes"] == [3, 7]
