"""The scripts in examples/ run, on a tiny budget, and write what their docstrings promise."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))


def run_example(name: str, out: Path, *args: str, timeout: float = 180) -> str:
    """Run ``examples/<name>`` with ``--tiny --out out`` in a fresh process; its stdout."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--tiny", "--out", str(out), *args],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_there_are_at_least_four_examples():
    assert len(SCRIPTS) >= 4, [s.name for s in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_example_says_what_it_shows_and_how_long_it_takes(script):
    doc = ast.get_docstring(ast.parse(script.read_text()))
    assert doc and "What it shows" in doc and "How long" in doc, script.name
    text = script.read_text()
    assert '"--tiny"' in text and '"--out"' in text and 'if __name__ == "__main__":' in text


@pytest.mark.slow
def test_quick_search_and_torch_export(tmp_path):
    out = tmp_path / "ex1"
    stdout = run_example("01_quick_search.py", out, "--dataset", "iris")
    assert "best loss:" in stdout
    for name in ("pareto.csv", "pareto.json", "pareto.png", "history.csv"):
        assert (out / "run" / name).stat().st_size > 0, name
    source = (out / "my_loss.py").read_text()
    assert "class LearnedLoss(torch.nn.Module)" in source and "from my_loss import LearnedLoss" in source


@pytest.mark.slow
def test_own_data_and_model_factory(tmp_path):
    out = tmp_path / "ex2"
    stdout = run_example("02_own_data_and_model.py", out)
    assert "model='custom'" in stdout and "splits=540/180/180" in stdout
    assert (out / "pareto.csv").read_text().startswith("Complexity,Loss,Equation")
    assert (out / "best_loss.json").stat().st_size > 0


@pytest.mark.slow
def test_fair_meta_test_with_plots(tmp_path):
    import evomal_sr as es

    out = tmp_path / "ex3"
    stdout = run_example("03_fair_meta_test.py", out, "--loss", "abs(y - fx)")
    assert "lowest early-stopped test error:" in stdout
    for name in ("curves.png", "test_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = es.MetaTestReport.load(out / "report.json")
    assert report.tune_lr
    assert [r.method for r in report.methods if r.baseline] == ["cross-entropy"]
    assert {r.method for r in report.methods} == {"learned", "cross-entropy", "label-smoothing", "sce", "mae"}
    assert all(len(r.early_errors) == 2 for r in report.methods)


@pytest.mark.slow
def test_dask_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "ex4"
    stdout = run_example("04_dask_local_cluster.py", out)
    assert "cluster: 2 workers" in stdout
    assert "same pareto.csv on Dask and in-process: True" in stdout
