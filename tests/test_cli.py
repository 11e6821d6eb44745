"""The ``evomal-sr`` commands: help, search, front, export, plot, doctor, and one-line errors."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import shutil

import pytest
import torch
from clihelpers import assert_one_line_error, invoke

from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.results.front import load_front

COMMANDS = ["show", "search", "front", "export", "plot", "doctor"]
TINY = ["--preset", "tiny", "--population", "4", "--generations", "2", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "iris"
    result = invoke("search", "--dataset", "iris", *TINY, "--out", out)
    assert result.exit_code == 0, result.stderr
    return out, result


# -- help --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Examples" in result.stdout
    assert f"evomal-sr {command}" in result.stdout


def test_group_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout


# -- search and what it writes --------------------------------------------------------------------


def test_search_writes_results_and_prints_the_table(run_dir):
    out, result = run_dir
    for name in ("pareto.csv", "pareto.json", "pareto.png", "history.csv", "checkpoint.json"):
        assert (out / name).stat().st_size > 0, name
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["#", "complexity", "val."]
    front = load_front(out)
    assert f"{len(front)} losses on the front" in result.stdout
    for entry in front:
        assert entry.equation() in result.stdout  # the table shows equations, weights to 4 digits
    assert (out / "pareto.csv").read_text().splitlines()[0] == "Complexity,Loss,Equation"
    assert len((out / "history.csv").read_text().splitlines()) == 3
    assert result.stderr == ""  # --quiet, and not a terminal anyway: no progress bar


def test_front_prints_the_table(run_dir):
    out, _ = run_dir
    result = invoke("front", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == load_front(out).table() + "\n"
    assert invoke("front", out / "pareto.json").stdout == result.stdout


def test_export_torch_file(run_dir, tmp_path):
    out, _ = run_dir
    target = tmp_path / "my_loss.py"
    result = invoke("export", out, "--index", "0", "--format", "torch", "-o", target)
    assert result.exit_code == 0, result.stderr
    assert str(target) in result.stdout
    spec = importlib.util.spec_from_file_location("my_loss", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = load_front(out).best_loss(0)
    logits, labels = torch.randn(10, 3), torch.randint(0, 3, (10,))
    torch.testing.assert_close(module.LearnedLoss()(logits, labels), expected(logits, labels), rtol=0, atol=0)


def test_export_json_to_stdout(run_dir, tmp_path):
    out, _ = run_dir
    result = invoke("export", out, "--index", "0", "--format", "json")
    assert result.exit_code == 0, result.stderr
    loss = LearnedLoss.from_dict(json.loads(result.stdout))
    entry = load_front(out)[0]
    assert str(loss.expression) == entry.expression
    assert loss.weights.tolist() == pytest.approx(list(entry.weights))
    saved = tmp_path / "loss.json"
    assert invoke("export", out, "--index", "0", "-o", saved).exit_code == 0
    assert str(LearnedLoss.load(saved).expression) == entry.expression


def test_export_default_is_most_accurate(run_dir):
    out, _ = run_dir
    result = invoke("export", out)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["expression"] == load_front(out).select("accuracy").expression


@pytest.mark.parametrize("fmt", ["sympy", "latex"])
def test_export_text_formats(run_dir, fmt):
    out, _ = run_dir
    result = invoke("export", out, "--index", "-1", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    text = result.stdout.strip()
    assert text and "\n" not in text
    assert ("f(x)" in text) if fmt == "latex" else ("fx" in text)


def test_plot(run_dir, tmp_path):
    out, _ = run_dir
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "pareto.png").unlink()
    result = invoke("plot", copy)
    assert result.exit_code == 0, result.stderr
    assert (copy / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    svg = tmp_path / "front.svg"
    assert invoke("plot", copy, "-o", svg).exit_code == 0
    assert b"<svg" in svg.read_bytes()[:400]
    result = invoke("plot", copy / "pareto.json", "-o", tmp_path / "from_file.png")
    assert result.exit_code == 0, result.stderr
    (copy / "pareto.png").unlink()
    result = invoke("plot", copy / "pareto.json")  # the file's folder is the run folder
    assert result.exit_code == 0, result.stderr
    assert (copy / "pareto.png").exists()


def test_plot_bad_suffix_and_bad_hall_of_fame(run_dir, tmp_path):
    out, _ = run_dir
    assert_one_line_error(invoke("plot", out, "-o", tmp_path / "front.txt"), "must end in")
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "hall_of_fame.json").write_text("42")
    assert_one_line_error(invoke("plot", copy))


def test_doctor():
    result = invoke("doctor")
    assert result.exit_code == 0, result.stderr
    assert "torch" in result.stdout and torch.__version__ in result.stdout
    assert "engine     native: ok" in result.stdout
    pysr_lines = [line for line in result.stdout.splitlines() if "pysr" in line]
    assert len(pysr_lines) == 1 and ("unavailable" in pysr_lines[0] or ": ok" in pysr_lines[0])
    assert "cuda" in result.stdout


# -- one-line errors ---------------------------------------------------------------------------


@pytest.fixture()
def data_csv(tmp_path):
    path = tmp_path / "data.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["a", "b", "label"])
    for i in range(60):
        writer.writerow([i % 7, (i * 3) % 5, i % 2])
    path.write_text(buffer.getvalue())
    return path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["search", "--dataset", "nope", *TINY], ["unknown dataset", "nope"]),
        (["search", *TINY], ["--dataset"]),
        (["search", "--csv", "missing.csv", "--target", "label", *TINY], ["not found"]),
        (["search", "--dataset", "iris", "--preset", "tiny", "--population", "0"], ["population"]),
        (["search", "--dataset", "iris", "--preset", "tiny", "--generations", "-1"], ["generations"]),
        (["search", "--dataset", "iris", "--preset", "huge"], ["unknown preset"]),
        (["search", "--dataset", "iris", "--engine", "nope", *TINY], ["unknown engine"]),
        (["search", "--dataset", "iris", "--device", "tpu9", *TINY], ["device"]),
        (["search", "--dataset", "iris", "--population", "many"], ["population"]),
        (["search", "--dataset", "iris", "--program", "compiled", *TINY], ["compiled", "per-tree", "tensor"]),
        (["search", "--dataset", "iris", "--no-such-option"], ["no-such-option"]),
        (["export", "{run}", "--format", "onnx"], ["onnx"]),
        (["export", "{run}", "--index", "99"], ["out of range"]),
        (["export", "{missing}"], ["no Pareto front"]),
        (["front", "{missing}"], ["no Pareto front"]),
        (["plot", "{missing}"], ["no Pareto front"]),
        (["show", "__import__('os')"], []),
        (["frobnicate"], ["frobnicate"]),
    ],
)
def test_bad_arguments_give_one_line(run_dir, tmp_path, args, fragments):
    out, _ = run_dir
    args = [a.format(run=out, missing=tmp_path / "nowhere") for a in args]
    assert_one_line_error(invoke(*args), *fragments)


def test_search_takes_the_loss_program(tmp_path):
    result = invoke("search", "--dataset", "iris", *TINY, "--program", "tensor", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert load_front(tmp_path / "run").config["program"] == "tensor"


def test_csv_with_missing_column(data_csv):
    result = invoke("search", "--csv", data_csv, "--target", "nope", *TINY)
    assert_one_line_error(result, "nope", "label")


def test_csv_without_target(data_csv):
    assert_one_line_error(invoke("search", "--csv", data_csv, *TINY), "--target")


def test_dataset_and_csv_together(data_csv):
    assert_one_line_error(
        invoke("search", "--dataset", "iris", "--csv", data_csv, "--target", "label", *TINY), "exactly one"
    )


def test_pysr_engine_unavailable(tmp_path):
    from evomal_sr.engines.pysr import PySREngine

    if PySREngine.status()[0]:
        pytest.skip("PySR and Julia are installed here")
    assert_one_line_error(invoke("search", "--dataset", "iris", "--engine", "pysr", *TINY, "--out", tmp_path))


def test_pysr_engine_refuses_a_native_only_setting_before_julia(tmp_path, monkeypatch):
    from evomal_sr.engines.pysr import PySREngine

    def no_julia(*_args, **_kwargs):
        raise AssertionError("Julia must not start for a setting the engine would ignore")

    monkeypatch.setattr(PySREngine, "prepare", staticmethod(no_julia))
    result = invoke("search", "--dataset", "iris", "--engine", "pysr", "--initial-fill", "variants", *TINY)
    assert_one_line_error(result, "initial_fill='variants'", "native")


def test_resume_with_mismatched_checkpoint(run_dir, tmp_path):
    out, _ = run_dir
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    result = invoke("search", "--dataset", "iris", *TINY[:-3], "--seed", "1", "--out", copy, "--resume")
    assert_one_line_error(result, "checkpoint", "seed")


def test_resume_with_corrupt_checkpoint(run_dir, tmp_path):
    out, _ = run_dir
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    (copy / "checkpoint.json").write_text('{"format": "evomal-sr/checkpoint", "vers')
    assert_one_line_error(invoke("search", "--dataset", "iris", *TINY, "--out", copy, "--resume"), "checkpoint")


def test_out_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_line_error(invoke("search", "--dataset", "iris", *TINY, "--out", target))


def test_export_to_unwritable_place(run_dir, tmp_path):
    out, _ = run_dir
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert_one_line_error(invoke("export", out, "-o", blocker / "loss.json"))


def test_progress_bar_counts_generations_of_a_resumed_run(monkeypatch):
    import sys

    from evomal_sr.cli.progress import SearchProgress
    from evomal_sr.engines.base import GenerationRecord

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = SearchProgress(4, quiet=False)
    for generation in (2, 3):  # generations 0 and 1 came from the checkpoint
        progress(GenerationRecord(generation, 0.25, 0.5, 1, 0, 0, 0, 0.1, totals={"exact_hits": 2}))
    assert progress.bar.n == 4
    progress.close()
    assert "4/4" in terminal.getvalue() and "best=0.2500" in terminal.getvalue()
    quiet = SearchProgress(4, quiet=True)
    assert quiet.bar.disable
    quiet.close()
