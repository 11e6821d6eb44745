"""`evomal-sr evaluate`: a loss file, a run folder, transfer, and one-line errors with status 2."""

from __future__ import annotations

import json

import pytest
from clihelpers import assert_one_line_error, invoke

from evomal_sr import LearnedLoss, Task
from evomal_sr.results.front import FrontEntry, ParetoFront

FAST = ["--seeds", "2", "--steps", "10", "--preset", "tiny"]


def _invoke(*args):
    return invoke("evaluate", *args)


@pytest.fixture
def loss_file(tmp_path):
    return LearnedLoss("-(y * log(fx))", weights=[1.0, 1.1, 0.9, 1.0]).save(tmp_path / "loss.json")


@pytest.fixture
def run_dir(tmp_path):
    task = Task.builtin("iris", seed=1, model="linear", label_noise=0.1)
    entries = [
        FrontEntry("square((y - fx))", (1.0, 1.0, 1.0), 0.4, 4),
        FrontEntry("-(y * log(fx))", (1.0, 1.0, 1.0, 1.0), 0.2, 5),
    ]
    ParetoFront(entries, task_kind="classification", config={"task": task.describe(), "preset": "tiny"}).to_json(
        tmp_path / "run" / "pareto.json"
    )
    return tmp_path / "run"


def test_evaluate_a_loss_file_writes_table_and_files(loss_file, tmp_path):
    out = tmp_path / "out"
    result = _invoke(loss_file, "--dataset", "iris", "--model", "linear", *FAST, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert "learned" in result.stdout and "cross-entropy" in result.stdout and "±" in result.stdout
    assert "2 seeds x 10 SGD steps" in result.stdout
    assert {p.name for p in out.iterdir()} == {"metatest.csv", "metatest.json", "curves.png", "report.md"}
    data = json.loads((out / "metatest.json").read_text())
    assert data["task"]["name"] == "iris" and data["steps"] == 10
    assert [m["method"] for m in data["methods"]] == ["learned", "cross-entropy"]


def test_evaluate_a_run_folder_uses_the_runs_task(run_dir):
    result = _invoke(run_dir, *FAST)
    assert result.exit_code == 0, result.stderr
    assert "name='iris'" in result.stdout and "label_noise=0.1" in result.stdout and "seed=1" in result.stdout
    assert "model='linear'" in result.stdout
    assert "-(y * log(fx))" in result.stdout  # the most accurate entry by default
    first = _invoke(run_dir, "--index", "0", *FAST, "--quiet")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith("method")  # --quiet: only the table


@pytest.mark.parametrize(
    "summary, shown",
    [
        ({"winner": "gce", "winner_kind": "known"}, "gce"),
        ({"winner": "learned #2", "winner_kind": "learned"}, "square((y - fx))"),  # the second most accurate
    ],
)
def test_evaluate_a_run_folder_tests_what_its_final_selection_returned(run_dir, summary, shown):
    (run_dir / "selection.json").write_text(json.dumps(summary))
    result = _invoke(run_dir, *FAST)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"loss:  {shown}")
    picked = _invoke(run_dir, "--index", "1", *FAST)  # --index still picks from the front
    assert picked.stdout.splitlines()[0].startswith("loss:  -(y * log(fx))"), picked.stdout


@pytest.mark.parametrize(
    "summary", [{"winner": "learned #9", "winner_kind": "learned"}, {"winner": "nope", "winner_kind": "known"}, []]
)
def test_a_selection_file_naming_no_loss_of_the_run_is_refused(run_dir, summary):
    (run_dir / "selection.json").write_text(json.dumps(summary))
    assert_one_line_error(_invoke(run_dir, *FAST), "selection.json" if summary != {} else "winner")


def test_transfer_to_another_dataset_and_model(run_dir):
    result = _invoke(run_dir, "--dataset", "wine", "--model", "mlp", *FAST)
    assert result.exit_code == 0, result.stderr
    assert "name='wine'" in result.stdout and "label_noise=0.0" in result.stdout and "model='mlp'" in result.stdout


def test_transfer_to_a_regression_task_is_refused(run_dir):
    assert_one_line_error(_invoke(run_dir, "--dataset", "diabetes", *FAST), "cannot transfer a classification loss")


@pytest.mark.parametrize(
    "args, text",
    [
        (["missing-folder"], "no such run folder or loss file"),
        (["--index", "7"], "index 7 out of range"),
        (["--seeds", "0"], "--seeds"),
        (["--dataset", "nope"], "nope"),
        (["--device", "nonsense"], "device"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_dir, args, text):
    if args[0] == "missing-folder":
        result = _invoke(run_dir.parent / "missing-folder", *FAST)
    else:
        result = _invoke(run_dir, *FAST, *args)
    assert_one_line_error(result, text)


def test_loss_file_needs_a_dataset_and_takes_no_index(loss_file):
    assert_one_line_error(_invoke(loss_file, *FAST), "--dataset")
    assert_one_line_error(_invoke(loss_file, "--dataset", "iris", "--index", "0", *FAST), "--index")


def test_a_file_that_is_no_loss_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert_one_line_error(_invoke(bad, "--dataset", "iris", *FAST), "not a saved loss")


def test_help_has_examples():
    result = _invoke("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "--dataset wine --model linear" in result.stdout


# -- the fair protocol from the command line --------------------------------------------------------


def test_evaluate_zoo_tuned_writes_report_and_curves(run_dir, tmp_path):
    out = tmp_path / "fair"
    result = _invoke(
        run_dir, "--baselines", "zoo", "--tune-lr", "--seeds", "2", "--steps", "30", "--eval-every", "10", "--out", out
    )
    assert result.exit_code == 0, result.stderr
    for name in ("gce", "sce", "poly1", "squared-error", "learned"):
        assert name in result.stdout
    assert (out / "report.md").read_text().count("|") > 20
    assert (out / "curves.png").stat().st_size > 5000
    data = json.loads((out / "metatest.json").read_text())
    assert all(m["lr"] in m["lr_grid"] and len(m["early_errors"]) == 2 for m in data["methods"])
    assert "meta-test: selection run" in result.stderr  # a log line per phase when stderr is no terminal


def test_evaluate_comma_list_of_baselines(run_dir):
    result = _invoke(run_dir, "--baselines", "standard,gce", "--seeds", "1", "--steps", "10")
    assert result.exit_code == 0, result.stderr
    assert "gce" in result.stdout and "cross-entropy" in result.stdout and "mae" not in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--baselines", "hubert"], "cross-entropy, label-smoothing"),
        (["--baselines", "huber"], "regression loss"),
        (["--baselines", ","], "empty"),
        (["--tune-lr", "--lr-grid", "0.1,-2"], "positive"),
        (["--tune-lr", "--lr-grid", "a,b"], "comma list"),
        (["--lr-grid", "0.1"], "needs --tune-lr"),
        (["--steps", "10", "--eval-every", "20"], "eval-every"),
    ],
)
def test_evaluate_bad_fair_options(run_dir, tmp_path, args, fragment):
    out = tmp_path / "never"
    result = _invoke(run_dir, "--seeds", "1", "--steps", "10", *args, "--out", out)
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_lr_extend_needs_tune_lr_and_reaches_the_meta_test(loss_file, tmp_path):
    base = [loss_file, "--dataset", "iris", "--model", "linear", *FAST, "--steps", "30", "--eval-every", "10"]
    assert_one_line_error(_invoke(*base, "--lr-extend", "1"), "--lr-extend needs --tune-lr")
    result = _invoke(*base, "--tune-lr", "--lr-grid", "0.001,0.003", "--lr-extend", "1", "--out", tmp_path / "a")
    assert result.exit_code == 0, result.stderr
    data = json.loads((tmp_path / "a" / "metatest.json").read_text())
    assert data["lr_extend"] == 1 and all(len(m["lr_grid"]) == 3 for m in data["methods"])  # 30 steps: top edge
    result = _invoke(*base, "--tune-lr", "--lr-grid", "0.001,0.003", "--lr-extend", "0", "--out", tmp_path / "b")
    data = json.loads((tmp_path / "b" / "metatest.json").read_text())
    assert data["lr_extend"] == 0 and all(m["lr_grid"] == [0.001, 0.003] for m in data["methods"])


def test_lr_fallback_needs_tune_lr_and_reaches_the_meta_test(loss_file, tmp_path):
    base = [loss_file, "--dataset", "iris", "--model", "linear", *FAST, "--steps", "30", "--eval-every", "10"]
    assert_one_line_error(_invoke(*base, "--no-lr-fallback"), "--lr-fallback/--no-lr-fallback needs --tune-lr")
    for flag, expected in (("--no-lr-fallback", False), ("--lr-fallback", True)):
        out = tmp_path / flag
        result = _invoke(*base, "--tune-lr", "--lr-grid", "0.01,0.03", flag, "--out", out)
        assert result.exit_code == 0, result.stderr
        assert json.loads((out / "metatest.json").read_text())["lr_fallback"] is expected
