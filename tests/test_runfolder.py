"""Run-folder safety: no run overwritten, nothing resumed from nothing, one search per folder,
Ctrl-C says how to continue, partial fronts, the user's umask, progress lines and history columns."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import assert_one_line_error, invoke

from evomal_sr.cli.progress import SearchProgress
from evomal_sr.engines.base import GenerationRecord
from evomal_sr.errors import ConfigError
from evomal_sr.results.front import load_front
from evomal_sr.results.lock import RunLock
from evomal_sr.results.rundir import RUN_FILES, RunDir

TINY = ["--dataset", "iris", "--preset", "tiny", "--population", "4", "--generations", "2", "--seed", "0"]
CLI = [sys.executable, "-c", "import sys; from evomal_sr.cli.main import main; sys.argv[0] = 'evomal-sr'; main()"]


def _hashes(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "iris"
    result = invoke("search", *TINY, "--quiet", "--out", out)
    assert result.exit_code == 0, result.stderr
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(src, dst))


def test_search_into_a_finished_run_is_refused_and_changes_nothing(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    before = _hashes(run)
    result = invoke("search", *TINY, "--quiet", "--out", run)
    assert_one_line_error(result, "already holds a run", "--resume", "--force")
    assert _hashes(run) == before


def test_force_replaces_only_the_runs_own_files(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    (run / "pareto.csv").write_text("stale")
    result = invoke("search", *TINY, "--quiet", "--force", "--out", run)
    assert result.exit_code == 0, result.stderr
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "pareto.csv").read_bytes() == (finished / "pareto.csv").read_bytes()


def test_resume_with_nothing_to_resume_is_an_error(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        result = invoke("search", *TINY, "--quiet", "--resume", "--out", folder)
        assert_one_line_error(result, "nothing to resume in")
    assert not (tmp_path / "missing").exists()


def test_resume_and_force_together_are_refused(tmp_path):
    assert_one_line_error(invoke("search", *TINY, "--resume", "--force", "--out", tmp_path), "choose one")


def test_a_live_lock_refuses_and_a_stale_one_is_taken_over(tmp_path):
    lock = tmp_path / ".evomal-sr.lock"
    with RunLock(lock), pytest.raises(ConfigError, match="another search"):
        RunLock(lock).acquire()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "start": None}))
    with RunLock(lock):  # the killed holder's lock is stale
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "start": None}))
    with pytest.raises(ConfigError, match="elsewhere.example"):
        RunLock(lock).acquire()  # another host's lock cannot be checked: respected


@pytest.mark.slow
def test_two_concurrent_searches_one_refuses_the_other_finishes(tmp_path):
    out = tmp_path / "shared"
    args = [*TINY, "--generations", "40", "--quiet", "--out", str(out)]
    first = subprocess.Popen([*CLI, "search", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # wait until the first holds the folder
            if (out / ".evomal-sr.lock").exists():
                break
            first.poll()
            assert first.returncode is None, first.communicate()
            import time

            time.sleep(0.05)
        second = subprocess.run([*CLI, "search", *args], capture_output=True, text=True, timeout=300)
    finally:
        stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert second.returncode == 2 and "another search" in second.stderr, second.stderr
    assert load_front(out).partial is None and len(load_front(out)) >= 1
    assert not (out / ".evomal-sr.lock").exists()


def test_a_folder_in_use_is_refused_and_left_intact(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    before = _hashes(run)
    with RunDir(run).lock():  # this live process holds it, as a running search would
        for extra in ([], ["--force"], ["--resume"]):
            assert_one_line_error(invoke("search", *TINY, "--quiet", *extra, "--out", run), "another search")
        assert {k: v for k, v in _hashes(run).items() if k != ".evomal-sr.lock"} == before


def test_files_follow_the_umask(tmp_path):
    out = tmp_path / "run"
    old = os.umask(0o022)
    try:
        result = invoke("search", *TINY, "--quiet", "--out", out)
        assert result.exit_code == 0, result.stderr
        export = invoke("export", out, "--format", "torch", "-o", tmp_path / "my_loss.py")
        assert export.exit_code == 0, export.stderr
    finally:
        os.umask(old)
    written = RunDir(out).run_files()  # selection.json only with final_selection="fair"
    assert {p.name for p in written} >= set(RUN_FILES) - {"selection.json"}
    for path in [*written, tmp_path / "my_loss.py"]:
        assert oct(path.stat().st_mode & 0o777) == oct(0o644), path


def test_a_log_gets_one_line_per_generation(tmp_path):
    """Not a terminal (a file, as under nohup): one line per generation."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [*CLI, "search", *TINY, "--generations", "3", "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("generation ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    for word in ("best so far", "evaluated", "cache hits", "rejected", "elapsed", "ETA"):
        assert word in lines[-1]
    quiet = subprocess.run(
        [*CLI, "search", *TINY, "--quiet", "--out", str(tmp_path / "q")], capture_output=True, text=True, timeout=300
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def _record(generation, best):
    return GenerationRecord(
        generation=generation,
        best_fitness=best,
        median_fitness=best,
        evaluations=1,
        exact_hits=0,
        equivalent_hits=0,
        rejected=0,
        seconds=0.1,
        best_expression="y",
    )


def test_progress_lines_report_best_so_far():
    stream = io.StringIO()
    progress = SearchProgress(3, quiet=False, stream=stream)
    for generation, best in enumerate((0.5, 0.7, 0.2)):
        progress(_record(generation, best))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("best so far ")[1].split()[0] for line in lines] == ["0.5000", "0.5000", "0.2000"]


def test_history_has_best_so_far_and_best_of_generation(tmp_path):
    RunDir(tmp_path).write_history([_record(0, 0.5), _record(1, 0.7), _record(2, 0.2)])
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    assert [float(r["best_so_far"]) for r in rows] == [0.5, 0.5, 0.2]
    assert [float(r["best_of_generation"]) for r in rows] == [0.5, 0.7, 0.2]


def test_interrupt_prints_the_resume_command_and_leaves_a_partial_front(tmp_path, monkeypatch):
    from evomal_sr.engines.native import NativeEngine

    out = tmp_path / "run"
    original = NativeEngine._evaluate
    calls = []

    def interrupt_second(self, population, hall_of_fame):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, population, hall_of_fame)

    monkeypatch.setattr(NativeEngine, "_evaluate", interrupt_second)
    result = invoke("search", *TINY, "--generations", "3", "--quiet", "--out", out)
    assert result.exit_code == 130
    assert "Interrupted after generation 1 of 3; continue with:" in result.stderr
    command = result.stderr.strip().splitlines()[-1].strip()
    assert command.startswith("evomal-sr search ") and command.endswith(f"--out {out} --resume")
    assert "--generations 3" in command and "--dataset iris" in command
    assert not (out / ".evomal-sr.lock").exists()
    front = invoke("front", out)
    assert front.exit_code == 0 and "partial front" in front.stderr and "generation 1 of 3" in front.stderr
    assert invoke("plot", out).exit_code == 0 and invoke("export", out).exit_code == 0
    monkeypatch.setattr(NativeEngine, "_evaluate", original)
    resumed = invoke(*command.split()[1:])
    assert resumed.exit_code == 0, resumed.stderr
    assert load_front(out).partial is None


def test_no_front_yet_suggests_resume(tmp_path):
    (tmp_path / "checkpoint.json").write_text("{}")
    assert_one_line_error(invoke("front", tmp_path), "--resume")
    assert_one_line_error(invoke("front", tmp_path / "nothing"), "--resume")
