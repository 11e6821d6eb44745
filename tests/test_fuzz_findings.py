"""One test per finding of a fuzz and fault-injection run over the public API and the CLI (robustness)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from clihelpers import assert_one_line_error, invoke

import evomal_sr as es
from evomal_sr import CheckpointError, Expression, LossSearch
from evomal_sr.core.fileio import read_json, read_regular_bytes
from evomal_sr.errors import ExpressionError, LossFileError, TaskError
from evomal_sr.results.front import FrontEntry, ParetoFront
from evomal_sr.scoring.evaluator import Evaluator

SMALL = {"preset": "tiny", "population": 4, "generations": 2}


@pytest.fixture(scope="module")
def task():
    return es.Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def finished(task, tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    LossSearch(seed=0, out_dir=out, **SMALL).fit(task)
    return out


@pytest.mark.parametrize("text", ["-(tanh(fx) * y)", "-tanh((y - fx))", "-y"])
def test_show_takes_expressions_starting_with_minus(text):
    for args in (["show", text], ["show", "--", text]):
        result = invoke(*args)
        assert result.exit_code == 0 and result.stdout.startswith("expression"), result.stdout
    assert "Usage" in invoke("show", "-h").stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("name", ["pareto.json", "checkpoint.json", "loss.json", "data.csv"])
def test_a_fifo_or_dev_zero_is_refused_without_hanging(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)  # no writer: an ordinary open() would block forever
    with pytest.raises(LossFileError, match="named pipe"):
        read_json(fifo, LossFileError, "file")
    with pytest.raises(TaskError, match="named pipe"):
        read_regular_bytes(fifo, TaskError, "CSV file")
    zero = tmp_path / f"zero-{name}"
    zero.symlink_to("/dev/zero")
    with pytest.raises(LossFileError, match="not a regular file"):
        read_json(zero, LossFileError, "file")


def test_cli_refuses_a_fifo_front_loss_and_csv(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "pareto.json")
    assert_one_line_error(invoke("front", run), "named pipe")
    os.mkfifo(tmp_path / "loss.json")
    assert_one_line_error(invoke("evaluate", tmp_path / "loss.json", "--dataset", "iris"), "named pipe")
    os.mkfifo(tmp_path / "d.csv")
    assert_one_line_error(
        invoke("search", "--csv", tmp_path / "d.csv", "--target", "y", "--preset", "tiny"), "named pipe"
    )
    (tmp_path / "z.csv").symlink_to("/dev/zero")
    assert_one_line_error(
        invoke("search", "--csv", tmp_path / "z.csv", "--target", "y", "--preset", "tiny"), "not a regular file"
    )


def test_bounded_read_stops_at_the_limit(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(ValueError, match="larger than 100 bytes"):
        read_regular_bytes(big, ValueError, "file", limit=100)
    assert read_regular_bytes(big, ValueError, "file", limit=101) == b"x" * 101


@pytest.mark.parametrize(
    "change",
    [
        {"task": "iris"},
        {"task": ["iris"]},
        {"task": {"name": "iris", "label_noise": "abc"}},
        {"task": {"name": "iris", "seed": "zz"}},
        {"seed": "zz"},
        {"seed": "@1e400"},
        {"settings": {"lr": 10**400}},
        {"task": {"name": "iris", "seed": 10**400}},
        {"settings": {"train_steps": [1]}},
    ],
)
def test_wrong_typed_config_or_metadata_is_one_line(finished, tmp_path, change):
    data = json.loads((finished / "pareto.json").read_text())
    data["config"].update(change)
    front = tmp_path / "pareto.json"
    front.write_text(json.dumps(data).replace('"@1e400"', "1e400"))  # a literal json.dumps cannot write
    assert_one_line_error(invoke("evaluate", front, "--seeds", "1", "--steps", "2"), "config")
    loss = ParetoFront.from_dict(json.loads((finished / "pareto.json").read_text())).best_loss().to_dict()
    loss["metadata"].update(change)
    path = tmp_path / "loss.json"
    path.write_text(json.dumps(loss).replace('"@1e400"', "1e400"))
    assert_one_line_error(invoke("evaluate", path, "--seeds", "1", "--steps", "2"), "metadata")


def test_flat_loss_metadata_is_checked(tmp_path):
    from evomal_sr.losses.taylorglo import TaylorGLOLoss

    loss = TaylorGLOLoss("classification", parameters=[0.0] * TaylorGLOLoss.N_PARAMETERS).to_dict()
    loss["metadata"] = {"task": "iris"}
    with pytest.raises(LossFileError, match="'task' must be an object"):
        TaylorGLOLoss.from_dict(loss)


def _corrupt(finished, tmp_path, edit):
    run = shutil.copytree(finished, tmp_path / "run")
    path = run / "checkpoint.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data).replace('"@1e400"', "1e400"))  # a literal json.dumps cannot write
    return run


@pytest.mark.parametrize(
    "name,edit",
    [
        ("generation 1e400", lambda d: d["state"].update(generation="@1e400")),
        ("fitness 10**400", lambda d: d["state"]["fitness"].__setitem__(0, 10**400)),
        ("cached fitness 10**400", lambda d: d["evaluator"]["results"][0].update(fitness=10**400)),
        ("rng word 2**64", lambda d: d["state"]["rng_state"][1].__setitem__(0, 2**64)),
        ("counters []", lambda d: d["evaluator"].update(counters=[])),
        ("totals {}", lambda d: d["state"]["history"][-1].update(totals={})),
        ("totals string", lambda d: d["state"]["history"][-1].update(totals="x")),
        ("cached weights []", lambda d: d["evaluator"]["results"][0].update(weights=[])),
        ("population int", lambda d: d["state"]["population"].__setitem__(0, 3)),
    ],
)
def test_malformed_checkpoint_is_one_checkpoint_error(finished, tmp_path, task, name, edit):
    run = _corrupt(finished, tmp_path, edit)
    with pytest.raises(CheckpointError, match="corrupt"):
        LossSearch(seed=0, out_dir=run, resume=True, **SMALL).fit(task)


def test_malformed_checkpoint_on_the_cli(finished, tmp_path):
    run = _corrupt(finished, tmp_path, lambda d: d["state"].update(generation="@1e400"))
    result = invoke(
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--population",
        "4",
        "--generations",
        "2",
        "--quiet",
        "--out",
        run,
        "--resume",
    )
    assert_one_line_error(result, "corrupt")


CE, OVERFLOWING = "-(y * log(fx))", "(-(y * log(fx)) + 1e39)"


@pytest.mark.parametrize(
    "batches", [[[CE]], [[OVERFLOWING], [CE]], [[OVERFLOWING, CE]], [[CE], [OVERFLOWING]], [[CE, OVERFLOWING]]]
)
def test_cross_entropy_fitness_does_not_depend_on_evaluation_order(task, batches):
    alone = {text: Evaluator(task, preset="tiny").evaluate([text])[0] for text in (CE, OVERFLOWING)}
    evaluator = Evaluator(task, preset="tiny")
    results = [r for batch in batches for r in evaluator.evaluate(batch)]
    for result in results:
        reference = alone[CE if result.requested == CE else OVERFLOWING]
        assert result.fitness == reference.fitness
        assert result.reused_from is None  # the overflowing loss is never a twin, nor has one


@pytest.mark.parametrize("fitness", [-5, -1e400, 1e400])
def test_front_entries_with_impossible_fitness_are_refused(fitness):
    data = {"expression": "square((fx - y))", "weights": [1.0, 1.0, 1.0], "fitness": fitness, "complexity": 4}
    with pytest.raises(LossFileError, match="fitness"):
        FrontEntry.from_dict(data)


def test_front_entries_with_float32_overflowing_weights_are_refused():
    data = {"expression": "square((fx - y))", "weights": [1e300, 1.0, 1.0], "fitness": 0.2, "complexity": 4}
    with pytest.raises(LossFileError, match="weights"):
        FrontEntry.from_dict(data)


@pytest.mark.parametrize("text", ["ｙ * log(fx)", "-(y * log(𝑓𝑥))", "-(y * ⅼog(fx))", "y *\u00a0fx"])
def test_unicode_lookalikes_are_refused(text):
    with pytest.raises(ExpressionError, match="non-ASCII character"):
        Expression.parse(text)
    assert_one_line_error(invoke("show", text), "non-ASCII")
