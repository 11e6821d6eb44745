"""Nothing lost, nothing hidden in a run folder.

A run killed before its first checkpoint is started again by ``--resume`` of
the same command; a full disk names the file, keeps the last checkpoint and says
whether ``--resume`` can continue; the command line speaks in flags; the class
names of a CSV target are kept in ``pareto.json`` and shown by ``front``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clihelpers import assert_one_line_error, invoke

from evomal_sr.core import fileio
from evomal_sr.errors import ConfigError
from evomal_sr.results.rundir import RunDir

TINY = ["--preset", "tiny", "--population", "3", "--generations", "2", "--seed", "0", "--quiet"]
CLI = [sys.executable, "-c", "import sys; from evomal_sr.cli.main import main; sys.argv[0] = 'evomal-sr'; main()"]


def _csv(folder: Path) -> Path:
    """A small classification CSV whose classes are named cat and dog."""
    rows = "".join(f"{i},{(i * 7) % 5},{'cat' if i % 2 else 'dog'}\n" for i in range(40))
    path = folder / "pets.csv"
    path.write_text("a,b,label\n" + rows)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run on the CSV: (its folder, the search arguments without --out)."""
    folder = tmp_path_factory.mktemp("trust")
    args = ["--csv", str(_csv(folder)), "--target", "label", *TINY]
    out = folder / "run"
    result = invoke("search", *args, "--out", out)
    assert result.exit_code == 0, result.stderr
    return out, args


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _killed_lock(folder: Path, argv: list[str], cwd: str | None = None) -> Path:
    """The lock a run of ``argv`` leaves when it is killed (its process is gone)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".evomal-sr.lock"
    lock.write_text(
        json.dumps(
            {
                "pid": _dead_pid(),
                "host": socket.gethostname(),
                "start": None,
                "since": 0.0,
                "argv": argv,
                "cwd": cwd or os.getcwd(),
            }
        )
    )
    return lock


# -- item 6: a run killed before its first checkpoint ---------------------------------


def test_the_lock_records_the_command_and_its_folder(tmp_path):
    with RunDir(tmp_path).lock():
        record = json.loads((tmp_path / ".evomal-sr.lock").read_text())
    assert record["argv"] == sys.argv and record["cwd"] == os.getcwd()


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_it_again(finished, tmp_path):
    done, args = finished
    out = tmp_path / "killed"
    _killed_lock(out, ["/usr/bin/evomal-sr", "search", *args, "--out", str(out)])
    result = invoke("search", *args, "--out", out, "--resume")
    assert result.exit_code == 0, result.stderr
    assert "stopped before its first checkpoint" in result.stderr and "nothing was lost" in result.stderr
    assert "starting it from the beginning" in result.stderr
    assert (out / "pareto.csv").read_bytes() == (done / "pareto.csv").read_bytes()  # the same run, all of it
    assert not (out / ".evomal-sr.lock").exists()


def test_its_first_generations_files_without_a_checkpoint_are_replaced(finished, tmp_path):
    done, args = finished
    out = tmp_path / "killed"
    _killed_lock(out, ["evomal-sr", "search", *args, "--out", str(out)])
    (out / "history.csv").write_text("generation\n0\n")  # written just before the first checkpoint
    (out / "notes.txt").write_text("mine")
    result = invoke("search", *args, "--out", out, "--resume")
    assert result.exit_code == 0, result.stderr
    assert (out / "pareto.csv").read_bytes() == (done / "pareto.csv").read_bytes()
    assert len((out / "history.csv").read_text().splitlines()) == 3  # the header and both generations
    assert (out / "notes.txt").read_text() == "mine"


def test_the_same_command_with_options_in_another_order_and_a_relative_path(finished, tmp_path, monkeypatch):
    done, args = finished
    csv_path = Path(args[1])
    monkeypatch.chdir(csv_path.parent)
    out = tmp_path / "killed"
    reordered = [
        "--target",
        "label",
        "--seed",
        "0",
        "--generations",
        "2",
        "--population",
        "3",
        "--preset",
        "tiny",
        "--csv",
        csv_path.name,
    ]
    _killed_lock(out, ["evomal-sr", "search", f"--out={out}", *reordered], cwd=str(csv_path.parent))
    result = invoke("search", *args, "--out", out, "--resume")
    assert result.exit_code == 0, result.stderr
    assert "nothing was lost" in result.stderr


def test_a_killed_run_of_another_command_is_still_refused(finished, tmp_path):
    _, args = finished
    out = tmp_path / "other"
    lock = _killed_lock(out, ["evomal-sr", "search", *args, "--seed", "7", "--out", str(out)])
    result = invoke("search", *args, "--out", out, "--resume")
    assert_one_line_error(
        result, "nothing to resume in", "killed before its first checkpoint", "--seed", "without --resume"
    )
    assert lock.exists() and sorted(p.name for p in out.iterdir()) == [".evomal-sr.lock"]


@pytest.mark.parametrize("argv", [["train.py", "--epochs", "3"], "not a list", None])
def test_a_lock_not_left_by_evomal_sr_search_is_refused(finished, tmp_path, argv):
    _, args = finished
    out = tmp_path / "odd"
    _killed_lock(out, argv)
    assert_one_line_error(invoke("search", *args, "--out", out, "--resume"), "nothing to resume in")


def test_an_empty_or_missing_folder_is_still_refused(finished, tmp_path):
    _, args = finished
    for out in (tmp_path, tmp_path / "missing"):
        assert_one_line_error(
            invoke("search", *args, "--out", out, "--resume"),
            "nothing to resume in",
            "no checkpoint.json",
            "without --resume",
        )
    assert not (tmp_path / "missing").exists()


def test_a_live_run_without_a_checkpoint_yet_is_reported_busy(finished, tmp_path):
    _, args = finished
    with RunDir(tmp_path).lock():
        assert_one_line_error(invoke("search", *args, "--out", tmp_path, "--resume"), "another search")


def test_the_api_says_what_happened_to_a_killed_run(tmp_path):
    from evomal_sr.search.estimator import LossSearch

    _killed_lock(tmp_path, ["evomal-sr", "search"])
    with pytest.raises(ConfigError, match="stopped before its first checkpoint, so nothing was lost"):
        LossSearch(out_dir=tmp_path, resume=True, preset="tiny").fit([[0.0], [1.0]] * 10, [0, 1] * 10)


@pytest.mark.slow
def test_sigkill_before_the_first_checkpoint_then_resume(tmp_path):
    out = tmp_path / "run"
    args = [
        "search",
        "--dataset",
        "iris",
        "--preset",
        "tiny",
        "--population",
        "12",
        "--train-steps",
        "400",
        "--generations",
        "1",
        "--quiet",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if (out / ".evomal-sr.lock").exists() or proc.poll() is not None:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    if (out / "checkpoint.json").exists():
        pytest.skip("the first generation finished before the kill")
    assert (out / ".evomal-sr.lock").exists()
    resumed = subprocess.run([*CLI, *args, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "nothing was lost" in resumed.stderr and (out / "checkpoint.json").exists()


# -- item 7: a full disk ----------------------------------------------------------------


def _disk_full_on(monkeypatch, name: str, call: int) -> dict:
    """Make the ``call``-th atomic write of ``name`` fail with ENOSPC; remember the file's bytes then."""
    original, seen = fileio._write_file, {"calls": 0, "before": None}

    def write(fd, tmp, data):
        if Path(tmp).name.startswith(f".{name}."):
            seen["calls"] += 1
            if seen["calls"] == call:
                target = Path(tmp).parent / name
                seen["before"] = target.read_bytes() if target.exists() else None
                os.close(fd)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(fd, tmp, data)

    monkeypatch.setattr(fileio, "_write_file", write)
    return seen


def test_a_full_disk_names_the_file_keeps_the_checkpoint_and_says_resume(finished, tmp_path, monkeypatch):
    _, args = finished
    out = tmp_path / "full"
    command = [*args, "--generations", "3", "--out", out]
    seen = _disk_full_on(monkeypatch, "checkpoint.json", call=2)
    result = invoke("search", *command)
    assert_one_line_error(
        result,
        f"could not write {str(out / 'checkpoint.json')!r}",
        "No space left on device",
        "the last checkpoint (after generation 1 of 3) is intact",
        "free some space",
        "--resume",
    )
    assert (out / "checkpoint.json").read_bytes() == seen["before"]  # the last good checkpoint, untouched
    assert json.loads(seen["before"])["state"]["generation"] == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not (out / ".evomal-sr.lock").exists()
    monkeypatch.undo()
    hint = result.stderr.split("continue with: ")[1].split()
    assert hint[:2] == ["evomal-sr", "search"] and hint[-1] == "--resume"
    resumed = invoke(*hint[1:])
    assert resumed.exit_code == 0, resumed.stderr
    whole = invoke("search", *command[:-1], tmp_path / "whole")
    assert whole.exit_code == 0, whole.stderr
    assert (out / "pareto.csv").read_bytes() == (tmp_path / "whole" / "pareto.csv").read_bytes()


def test_a_full_disk_before_any_checkpoint_says_resume_cannot_continue(finished, tmp_path, monkeypatch):
    _, args = finished
    out = tmp_path / "full"
    _disk_full_on(monkeypatch, "pareto.json", call=1)  # after history.csv, before the first checkpoint
    result = invoke("search", *args, "--out", out)
    assert_one_line_error(
        result,
        f"could not write {str(out / 'pareto.json')!r}",
        "No space left on device",
        "no checkpoint was written, so --resume cannot continue",
        "--force",
    )
    monkeypatch.undo()
    assert invoke("search", *args, "--out", out, "--force").exit_code == 0


def test_a_full_disk_at_the_first_write_says_nothing_was_saved(finished, tmp_path, monkeypatch):
    _, args = finished
    _disk_full_on(monkeypatch, "history.csv", call=1)
    result = invoke("search", *args, "--out", tmp_path / "full")
    assert_one_line_error(result, "history.csv", "nothing was saved", "run the command again")


def test_a_full_disk_on_export_names_the_file(finished, tmp_path, monkeypatch):
    done, _ = finished
    target = tmp_path / "loss.py"
    target.write_text("old")
    _disk_full_on(monkeypatch, "loss.py", call=1)
    result = invoke("export", done, "--format", "torch", "-o", target)
    assert_one_line_error(result, f"could not write {str(target)!r}", "No space left on device")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["loss.py"]


def test_an_atomic_write_that_fails_keeps_the_old_file_and_names_the_target(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    fileio.atomic_write_text(target, "old")
    _disk_full_on(monkeypatch, "a.json", call=1)
    with pytest.raises(OSError) as caught:
        fileio.atomic_write_text(target, "new")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


# -- item 8: flags, not keyword arguments; class names; validation before output ---------


def test_a_folder_holding_a_run_names_the_flags_only(finished, tmp_path):
    done, args = finished
    result = invoke("search", *args, "--out", done)
    assert_one_line_error(result, "already holds a run", "add --resume to continue it or --force to start it over")
    assert "=True" not in result.stderr


def test_resume_and_force_together_name_the_flags(finished, tmp_path):
    _, args = finished
    result = invoke("search", *args, "--out", tmp_path, "--resume", "--force")
    assert_one_line_error(result, "--resume continues the run in --out and --force replaces it; choose one")


def test_class_names_of_a_csv_target_are_stored_and_shown(finished):
    done, _ = finished
    config = json.loads((done / "pareto.json").read_text())["config"]
    assert config["task"]["classes"] == ["cat", "dog"]
    for extra in ([], ["--index", "0"]):
        result = invoke("front", done, *extra)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[0] == "classes: 0=cat, 1=dog"


def test_an_unknown_baseline_is_refused_before_any_output(finished):
    done, _ = finished
    result = invoke("evaluate", done, "--baselines", "sce,nosuchloss", "--steps", "5", "--seeds", "1")
    assert_one_line_error(result, "unknown classification loss 'nosuchloss'")
    assert result.stdout == ""
