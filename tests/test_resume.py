"""Checkpoints and resume: every generation saved, exact continuation, clear errors, SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import evomal_sr as es
from evomal_sr import CheckpointError, ConfigError, LossSearch
from evomal_sr.scoring.evaluator import Evaluator

SMALL = {"preset": "tiny", "population": 4, "generations": 2}
CLI = [sys.executable, "-c", "import sys; from evomal_sr.cli.main import main; sys.argv[0] = 'evomal-sr'; main()"]


@pytest.fixture(scope="module")
def task():
    return es.Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def finished(task, tmp_path_factory):
    """A finished run, with the checkpoint's generation seen after every generation."""
    out = tmp_path_factory.mktemp("finished")
    seen = []

    def watch(record):
        data = json.loads((out / "checkpoint.json").read_text())
        seen.append((record.generation, data["state"]["generation"], len(data["state"]["history"])))

    search = LossSearch(seed=0, out_dir=out, on_generation=watch, **SMALL).fit(task)
    search.test_seen = seen
    return search


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def test_checkpoint_written_after_every_generation(finished):
    assert finished.test_seen == [(0, 1, 1), (1, 2, 2)]
    data = json.loads((finished.out_dir / "checkpoint.json").read_text())
    assert data["format"] == "evomal-sr/checkpoint"
    assert data["signature"]["seed"] == 0 and data["signature"]["engine"] == "native"
    state = data["state"]
    assert len(state["population"]) == len(state["fitness"]) == 4
    assert data["evaluator"]["results"]  # the caches travel with the checkpoint


def test_resume_finished_run_returns_same_front_without_evaluating(finished, task, tmp_path, monkeypatch):
    run = _copy(finished.out_dir, tmp_path / "run")
    (run / "pareto.csv").unlink()

    def refuse(self, expressions):
        raise AssertionError("a finished run must not evaluate anything on resume")

    monkeypatch.setattr(Evaluator, "evaluate", refuse)
    resumed = LossSearch(seed=0, out_dir=run, resume=True, **SMALL).fit(task)
    assert resumed.pareto_front_.entries == finished.pareto_front_.entries
    assert resumed.history_ == finished.history_
    assert (run / "pareto.csv").read_bytes() == (finished.out_dir / "pareto.csv").read_bytes()


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_front(finished, task, tmp_path):
    class Stop(Exception):
        pass

    def stop(record):
        raise Stop

    out = tmp_path / "cut"
    with pytest.raises(Stop):
        LossSearch(seed=0, out_dir=out, on_generation=stop, **SMALL).fit(task)
    assert json.loads((out / "checkpoint.json").read_text())["state"]["generation"] == 1
    assert not (out / "pareto.csv").exists()
    resumed = LossSearch(seed=0, out_dir=out, resume=True, **SMALL).fit(task)
    assert [h["generation"] for h in resumed.history_] == [0, 1]
    assert (out / "pareto.csv").read_bytes() == (finished.out_dir / "pareto.csv").read_bytes()
    assert resumed.hall_of_fame_.to_list() == finished.hall_of_fame_.to_list()


@pytest.mark.parametrize(
    ("changes", "differs"),
    [
        ({"seed": 1}, "seed"),
        ({"population": 5}, "settings"),
        ({"generations": 3}, "settings"),
        ({"train_steps": 7}, "settings"),
        ({"guesses": ["square((fx - y))"]}, "guesses"),
        ({"local_search": False}, "local_search"),
        ({"program": "tensor"}, "program"),
    ],
)
def test_resume_with_other_settings_is_refused(finished, task, tmp_path, changes, differs):
    run = _copy(finished.out_dir, tmp_path / "run")
    options = {"seed": 0, **SMALL, **changes}
    with pytest.raises(CheckpointError, match=differs):
        LossSearch(out_dir=run, resume=True, **options).fit(task)
    assert (run / "checkpoint.json").read_bytes() == (finished.out_dir / "checkpoint.json").read_bytes()


@pytest.mark.parametrize(("changes", "resumable"), [({}, True), ({"fitness_seeds": 2}, False)])
def test_a_checkpoint_from_before_a_setting_existed_resumes_at_its_default(
    finished, task, tmp_path, changes, resumable
):
    run = _copy(finished.out_dir, tmp_path / "run")
    data = json.loads((run / "checkpoint.json").read_text())
    added_since = ("fitness_seeds", "selection_metric", "local_search_scale", "selection_uncertainty")
    for name in added_since:  # settings added after the checkpoint was written
        del data["signature"]["settings"][name]
    del data["signature"]["program"]  # and the loss program, added to the signature later
    (run / "checkpoint.json").write_text(json.dumps(data))
    search = LossSearch(seed=0, out_dir=run, resume=True, **SMALL, **changes)
    if resumable:
        assert search.fit(task).pareto_front_.entries == finished.pareto_front_.entries
    else:
        with pytest.raises(CheckpointError, match=r"settings \(fitness_seeds saved 1, now 2\)"):
            search.fit(task)


def test_resume_on_another_task_is_refused(finished, tmp_path):
    run = _copy(finished.out_dir, tmp_path / "run")
    with pytest.raises(CheckpointError, match="task"):
        LossSearch(seed=0, out_dir=run, resume=True, **SMALL).fit(es.Task.builtin("wine", seed=0))
    with pytest.raises(CheckpointError, match="task"):
        LossSearch(seed=0, out_dir=run, resume=True, **SMALL).fit(es.Task.builtin("iris", seed=0, label_noise=0.2))


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit(change):
    def apply(path: Path):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return apply


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        lambda p: p.write_text(""),
        lambda p: p.write_bytes(b"\xff\xfe\x00garbage"),
        lambda p: p.write_text("[1, 2, 3]"),
        lambda p: p.write_text(json.dumps({"format": "evomal-sr/pareto-front", "version": 1})),
        _edit(lambda d: d.update(version=99)),
        _edit(lambda d: d.pop("signature")),
        _edit(lambda d: d.pop("evaluator")),
        _edit(lambda d: d["evaluator"].update(results=[{"expression": "(y * fx)"}])),
        _edit(lambda d: d["state"].update(rng_state=[3, [0] * 10, None])),
        _edit(lambda d: d["state"].update(population=["os.system('x')"] * 4)),
        _edit(lambda d: d["state"].update(fitness="fast")),
    ],
    ids=[
        "truncated",
        "empty",
        "binary",
        "list",
        "other-format",
        "version",
        "no-signature",
        "no-evaluator",
        "bad-cache",
        "bad-rng",
        "bad-population",
        "bad-fitness",
    ],
)
def test_corrupt_checkpoint_is_an_error_not_a_restart(finished, task, tmp_path, damage):
    run = _copy(finished.out_dir, tmp_path / "run")
    damage(run / "checkpoint.json")
    broken = (run / "checkpoint.json").read_bytes()
    with pytest.raises(CheckpointError) as info:
        LossSearch(seed=0, out_dir=run, resume=True, **SMALL).fit(task)
    assert "checkpoint" in str(info.value) and "\n" not in str(info.value)
    assert (run / "checkpoint.json").read_bytes() == broken  # left for the user to inspect


def test_resume_without_checkpoint_is_refused(task, tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume in"):
        LossSearch(
            seed=0,
            out_dir=tmp_path / "new",
            resume=True,
            preset="tiny",
            population=3,
            generations=1,
            train_steps=5,
            meta_iterations=1,
        ).fit(task)
    assert not (tmp_path / "new").exists()


def test_stale_temporary_files_are_cleaned_on_resume(finished, task, tmp_path, monkeypatch):
    run = _copy(finished.out_dir, tmp_path / "run")
    stale = [run / ".checkpoint.json.abc123.tmp", run / ".pareto.csv.x_y.tmp", run / ".pareto.k2j3.png"]
    for path in stale:
        path.write_text("half written")
    mine = run / ".notes.txt"
    mine.write_text("user file")
    monkeypatch.setattr(Evaluator, "evaluate", lambda self, e: pytest.fail("finished run re-evaluated"))
    LossSearch(seed=0, out_dir=run, resume=True, **SMALL).fit(task)
    assert not any(p.exists() for p in stale)
    assert mine.exists()


# -- the real thing: a search process killed with SIGKILL -------------------------------------------


def _search(out: Path, *extra) -> subprocess.Popen:
    args = [
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--generations",
        "4",
        "--population",
        "6",
        "--seed",
        "0",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    # one torch thread each: the processes overlap on a small machine; hash seeds differ on purpose
    env = {**os.environ, "PYTHONHASHSEED": "random", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _generation(path: Path) -> int:
    try:
        return json.loads(path.read_text())["state"]["generation"]
    except (OSError, ValueError, KeyError):
        return -1


@pytest.mark.slow
def test_sigkill_then_resume_gives_byte_identical_front(tmp_path):
    dir1, dir2 = tmp_path / "uninterrupted", tmp_path / "killed"
    uninterrupted = _search(dir1)
    victim = _search(dir2)
    deadline = time.monotonic() + 400
    while _generation(dir2 / "checkpoint.json") < 1:
        assert victim.poll() is None, f"search ended before it could be killed: {victim.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    killed_at = _generation(dir2 / "checkpoint.json")
    assert 1 <= killed_at < 4, "the run must have been cut short"
    assert not (dir2 / "pareto.csv").exists()

    resumed = _search(dir2, "--resume")  # overlaps with the uninterrupted run, which may still be going
    out, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err
    out1, err1 = uninterrupted.communicate(timeout=400)
    assert uninterrupted.returncode == 0, err1
    assert "complexity" in out and "complexity" in out1

    assert (dir2 / "pareto.csv").read_bytes() == (dir1 / "pareto.csv").read_bytes()
    assert (
        json.loads((dir2 / "pareto.json").read_text())["entries"]
        == json.loads((dir1 / "pareto.json").read_text())["entries"]
    )
    history = (dir2 / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 4 and [row.split(",")[0] for row in history[1:]] == ["0", "1", "2", "3"]
    assert not list(dir2.glob(".*.tmp")) and not list(dir2.glob(".*"))


def test_a_cli_run_under_another_fitness_resumes_with_the_saved_values_named_in_the_refusal(tmp_path):
    from clihelpers import invoke

    out = tmp_path / "run"
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--population", "4", "--generations", "2", "-q"]
    assert invoke(*args, "--fitness-seeds", "2", "--out", out).exit_code == 0
    refused = invoke(*args, "--out", out, "--resume")
    assert refused.exit_code != 0 and "fitness_seeds saved 2, now 1" in refused.output + refused.stderr
    resumed = invoke(*args, "--fitness-seeds", "2", "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output + resumed.stderr


def test_a_run_begun_with_the_old_robust_prior_is_refused_naming_the_setting(finished, task, tmp_path):
    """The standard preset's prior became "robust-classes"; a run saved with "robust" says how to finish it."""
    run = _copy(finished.out_dir, tmp_path / "run")
    data = json.loads((run / "checkpoint.json").read_text())
    data["signature"]["settings"]["selection_prior"] = "robust"
    (run / "checkpoint.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"selection_prior saved 'robust', now 'robust-classes'"):
        LossSearch(seed=0, out_dir=run, resume=True, **SMALL, selection_prior="robust-classes").fit(task)
    search = LossSearch(seed=0, out_dir=run, resume=True, **SMALL, selection_prior="robust").fit(task)
    assert search.pareto_front_.entries == finished.pareto_front_.entries
