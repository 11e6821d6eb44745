"""The Python API one can trust: a fitted search pickles, long calls show progress, Ctrl-C is clean.

Everything runs the ``tiny`` preset on iris.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings

import joblib
import pytest
import torch
from sklearn.base import clone

import evomal_sr as es
from evomal_sr import ConfigError, LossSearch
from evomal_sr._version import __version__

SMALL = {"preset": "tiny", "population": 4, "generations": 2, "seed": 0}


@pytest.fixture(scope="module")
def task():
    return es.Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def fitted(task, tmp_path_factory):
    return LossSearch(out_dir=tmp_path_factory.mktemp("search"), verbose=0, **SMALL).fit(task)


# -- item 2: pickling a fitted search --------------------------------------------------------------
def _same_results(a: LossSearch, b: LossSearch, task) -> None:
    assert repr(b.best_loss_) == repr(a.best_loss_) and repr(b.best_learned_loss_) == repr(a.best_learned_loss_)
    out, target = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    for loss in ("best_loss_", "best_learned_loss_"):
        assert torch.equal(getattr(b, loss)(out, target), getattr(a, loss)(out, target))
    assert b.pareto_front_.to_csv_text() == a.pareto_front_.to_csv_text()
    assert b.pareto_front_.to_dict() == a.pareto_front_.to_dict()
    assert b.history_ == a.history_ and b.settings_ == a.settings_
    assert b.hall_of_fame_.to_list() == a.hall_of_fame_.to_list()
    assert (b.selection_ and b.selection_.to_dict()) == (a.selection_ and a.selection_.to_dict())


def test_a_fitted_search_pickles_and_keeps_its_results(fitted, task):
    restored = pickle.loads(pickle.dumps(fitted))
    _same_results(fitted, restored, task)
    assert "evaluator_" not in vars(restored)  # rebuilt on first use only


def test_a_fitted_search_round_trips_through_joblib(fitted, task, tmp_path):
    joblib.dump(fitted, tmp_path / "search.joblib")
    restored = joblib.load(tmp_path / "search.joblib")
    _same_results(fitted, restored, task)
    restored.pareto_front_.to_csv(tmp_path / "pareto.csv")
    fitted.pareto_front_.to_csv(tmp_path / "pareto-before.csv")
    assert (tmp_path / "pareto.csv").read_bytes() == (tmp_path / "pareto-before.csv").read_bytes()


def test_the_reloaded_evaluator_is_rebuilt_with_its_caches(fitted):
    restored = pickle.loads(pickle.dumps(fitted))
    again = pickle.loads(pickle.dumps(restored))  # pickled again before its evaluator was ever built
    size, counters = fitted.evaluator_.cache_size, dict(fitted.evaluator_.counters)
    known = fitted.hall_of_fame_.entries()[0].expression
    [before] = fitted.evaluator_.evaluate([known])
    for search in (restored, again):
        evaluator = search.evaluator_
        assert evaluator.cache_size == size > 0 and evaluator.counters == counters
        [after] = evaluator.evaluate([known])
        assert evaluator.counters["exact_hits"] == counters["exact_hits"] + 1  # a cache hit: nothing retrained
        assert (after.status, after.fitness, after.weights) == (before.status, before.fitness, before.weights)
        assert search.evaluator_ is evaluator


def test_an_unfitted_search_still_pickles_and_clones():
    search = LossSearch(preset="tiny", population=5)
    restored = pickle.loads(pickle.dumps(search))
    assert restored.get_params() == search.get_params() and clone(restored).population == 5
    assert not hasattr(restored, "evaluator_")
    with pytest.raises(AttributeError, match="evaluator_"):
        restored.evaluator_  # noqa: B018


def test_a_pickle_of_another_version_loads_with_a_warning(fitted):
    state = fitted.__getstate__()
    state["_evomal_sr_version"] = "0.0.1"
    restored = LossSearch.__new__(LossSearch)
    with pytest.warns(UserWarning, match=f"pickled by evomal-sr 0.0.1; this is {__version__}"):
        restored.__setstate__(state)
    assert repr(restored.best_loss_) == repr(fitted.best_loss_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(fitted))  # the same version: no warning


# -- item 3: progress ----------------------------------------------------------------------------------
def test_fit_shows_a_progress_bar_and_logs_each_generation(task, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="evomal_sr.search"):
        LossSearch(final_selection="none", **SMALL).fit(task)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "generations" in captured.err and "2/2" in captured.err and "best=" in captured.err
    lines = [r.getMessage() for r in caplog.records if r.name == "evomal_sr.search"]
    assert [line.split("  ")[0] for line in lines] == ["generation 1/2", "generation 2/2"]


def test_verbose_0_prints_and_logs_nothing(task, capsys, caplog):
    with caplog.at_level(logging.INFO):
        search = LossSearch(verbose=0, **SMALL).fit(task)
        es.meta_test(search.best_loss_, task, seeds=1, steps=10, verbose=0)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
    assert not [r for r in caplog.records if r.name.startswith("evomal_sr")]


def test_meta_test_and_the_final_selection_show_progress(task, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="evomal_sr.evaluation"):
        es.meta_test(es.LearnedLoss("-(y * log(fx))"), task, seeds=1, steps=10)
    captured = capsys.readouterr()
    assert "meta-test" in captured.err and "20/20" in captured.err and captured.out == ""
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "meta-test: selection run done",
        "meta-test: final run done",
    ]
    LossSearch(final_selection="fair", selection_steps=10, **SMALL).fit(task)
    assert "final selection" in capsys.readouterr().err


def test_a_user_callback_still_runs_beside_the_bar(task, capsys):
    seen = []
    LossSearch(on_generation=lambda r: seen.append(r.generation), final_selection="none", **SMALL).fit(task)
    assert seen == [0, 1] and "2/2" in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [-1, 0.5, "yes", None])
def test_a_bad_verbose_is_one_config_error(task, verbose):
    with pytest.raises(ConfigError, match="verbose must be 0"):
        LossSearch(verbose=verbose, **SMALL).fit(task)
    with pytest.raises(ConfigError, match="verbose must be 0"):
        es.meta_test(None, task, seeds=1, steps=5, verbose=verbose)


def test_the_cli_shows_its_own_progress_only(tmp_path):
    from clihelpers import invoke

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
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # no bar of the API under the CLI's --quiet


# -- item 4: Ctrl-C on local Dask workers ---------------------------------------------------------------
def test_local_workers_ignore_sigint_and_the_driver_keeps_its_handler():
    pytest.importorskip("distributed")
    from evomal_sr.parallel.dask_executor import DaskExecutor

    before = signal.getsignal(signal.SIGINT)
    with DaskExecutor.local(1) as executor:
        answers = executor.client.run(lambda: signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
        assert list(answers.values()) == [True]
        assert executor.ignore_sigint
    assert signal.getsignal(signal.SIGINT) is before


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted_search(out) -> tuple[subprocess.Popen, str]:
    """A search on two local workers, sent Ctrl-C (SIGINT to its process group) mid-generation."""
    code = "import sys; from evomal_sr.cli.main import cli; sys.exit(cli(prog_name='evomal-sr'))"
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--generations", "200", "--workers", "2"]
    # its own process group, as a terminal's foreground job: Ctrl-C sends SIGINT to every process of it
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # SIGINT at its default, as in a terminal's foreground job: a process started in the background of
        # a non-interactive shell (nohup, `&`) inherits it ignored, and Python keeps an inherited SIG_IGN
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 180
        while not (out / "checkpoint.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.3)  # mid-generation: chunks on the workers
        os.killpg(proc.pid, signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, output


@pytest.mark.slow
def test_ctrl_c_under_two_workers_is_one_clean_message_and_the_workers_stop(tmp_path):
    pytest.importorskip("distributed")
    # Up to three tries, each a fresh run: a Ctrl-C was seen lost (the run finishing with status 0)
    # about one time in five on a loaded 2-core machine. One cause found: pytest itself started in the
    # background of a non-interactive shell, whose children inherit SIGINT ignored (every try lost);
    # the search this test starts has SIGINT at its default (_default_sigint), as a terminal job does.
    for attempt in range(3):
        proc, output = _interrupted_search(tmp_path / f"run{attempt}")
        if proc.returncode != 0:
            break
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "Task exception" not in output, output
    assert "Interrupted after generation" in output and "--resume" in output, output
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("generation ")]
    assert len(lines) == 2, output  # the message and the command that continues the run
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # every worker process of the group is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes outlived the interrupted search")


def test_a_resumed_run_s_bar_starts_part_way(caplog):
    import io
    from types import SimpleNamespace

    from evomal_sr.core.progress import GenerationProgress

    stream = io.StringIO()
    progress = GenerationProgress(10, stream=stream)
    with caplog.at_level(logging.INFO, logger="evomal_sr.search"):
        for generation in (3, 4):  # the checkpoint held generations 0-2
            progress(
                SimpleNamespace(
                    generation=generation,
                    best_fitness=0.5 - generation / 100,
                    evaluations=4,
                    exact_hits=1,
                    equivalent_hits=1,
                    rejected=0,
                    totals={},
                )
            )
    progress.close()
    assert "5/10" in stream.getvalue() and "best=0.4600" in stream.getvalue()
    assert [r.getMessage().split("  ")[:2] for r in caplog.records] == [
        ["generation 4/10", "best so far 0.4700"],
        ["generation 5/10", "best so far 0.4600"],
    ]
