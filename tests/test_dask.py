"""Scale-out on Dask: same front in-process, on 1-3 workers, after a resume or a killed worker.

The tests start their own LocalCluster (worker processes); everything uses the
``tiny`` preset on iris.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

distributed = pytest.importorskip("distributed")

from clihelpers import assert_one_line_error, invoke  # noqa: E402

import evomal_sr as es  # noqa: E402
import evomal_sr.parallel as parallel  # noqa: E402
from evomal_sr import ConfigError, LossSearch  # noqa: E402
from evomal_sr.core.memory import ALLOCATOR_ENVIRONMENT  # noqa: E402
from evomal_sr.errors import EngineUnavailableError  # noqa: E402
from evomal_sr.parallel import InProcessExecutor, executor_kind, open_executor  # noqa: E402
from evomal_sr.parallel.dask_executor import DaskExecutor, check_workers  # noqa: E402
from evomal_sr.scoring.evaluator import Evaluator  # noqa: E402

SMALL = {"preset": "tiny", "population": 6, "generations": 2, "seed": 1}
CANDIDATES = [
    "-(y * log(fx))",
    "square(fx - y)",
    "aq(y, fx)",
    "-(y * sqrt(fx))",
    "(y + fx)",
    "(square(fx - y) + aq(y, fx))",
    "abs(fx - y)",
    "-(y * fx)",
    "(log(fx) * -(y))",
]


@pytest.fixture(scope="module")
def task():
    return es.Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def reference(task, tmp_path_factory):
    """The in-process run every distributed run must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("in-process")
    LossSearch(out_dir=out, **SMALL).fit(task)
    return (out / "pareto.csv").read_bytes()


def _same(results, others):
    return [(r.expression, r.status, r.fitness, r.weights) for r in results] == [
        (r.expression, r.status, r.fitness, r.weights) for r in others
    ]


# -- the executor setting ---------------------------------------------------------------------
def test_importing_evomal_sr_never_imports_dask():
    code = (
        "import sys, evomal_sr, evomal_sr.parallel, evomal_sr.search.estimator; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "spec, kind",
    [
        (None, "in-process"),
        ("in-process", "in-process"),
        (3, "local"),
        ("local:2", "local"),
        ("local", "local"),
        ("tcp://1.2.3.4:8786", "scheduler"),
        ("10.0.0.1:8786", "scheduler"),
    ],
)
def test_executor_kinds(spec, kind):
    assert executor_kind(spec)[0] == kind


@pytest.mark.parametrize("spec", [0, -2, True, "somewhere", "local:x", 2.5])
def test_bad_executor_settings_are_config_errors(spec):
    with pytest.raises(ConfigError):
        executor_kind(spec)


def test_missing_dask_is_one_error_naming_the_extra(monkeypatch, task):
    monkeypatch.setattr(parallel, "dask_available", lambda: False)
    with pytest.raises(EngineUnavailableError, match=r"evomal-sr\[dask\]"):
        LossSearch(executor=2, **SMALL).fit(task)
    assert_one_line_error(invoke("search", "--dataset", "iris", "--workers", "2"), "evomal-sr[dask]")


@pytest.mark.parametrize("size", [1, 2, 4])
def test_chunking_does_not_change_a_single_bit(task, size):
    whole = Evaluator(task, preset="tiny").evaluate(CANDIDATES)
    chunked = Evaluator(task, preset="tiny", chunk_size=size, executor=InProcessExecutor()).evaluate(CANDIDATES)
    assert _same(whole, chunked)


def test_bad_chunk_size_is_rejected(task):
    for bad in (0, -1, 2.5, True, "half"):
        with pytest.raises(ConfigError, match="chunk_size must be a positive integer or 'balanced'"):
            Evaluator(task, preset="tiny", chunk_size=bad)


class _CountingExecutor(InProcessExecutor):
    """In-process scoring that records the chunk sizes it was handed, as if it had ``n_workers``."""

    def __init__(self, n_workers):
        self.n_workers, self.sizes = n_workers, []

    def score_chunks(self, evaluator, chunks):
        self.sizes.append([len(c) for c in chunks])
        return super().score_chunks(evaluator, chunks)


@pytest.mark.parametrize("workers, sizes", [(1, [8]), (2, [4, 4]), (3, [3, 3, 2]), (20, [1] * 8)])
def test_balanced_chunks_are_one_per_worker_and_change_no_bit(task, workers, sizes):
    whole = Evaluator(task, preset="tiny").evaluate(CANDIDATES)
    executor = _CountingExecutor(workers)
    balanced = Evaluator(task, preset="tiny", chunk_size="balanced", executor=executor).evaluate(CANDIDATES)
    # 8 unique candidates (the last is the first, reordered): ceil(8 / workers) each, at most one per worker
    assert executor.sizes == [sizes]
    assert _same(whole, balanced)
    alone = Evaluator(task, preset="tiny", chunk_size="balanced").evaluate(CANDIDATES)  # no executor: one batch
    assert _same(whole, alone)


# -- on workers -------------------------------------------------------------------------------------
def test_workers_score_bit_for_bit_like_this_process(task, client):
    here = Evaluator(task, preset="tiny")
    executor = DaskExecutor(client, default_chunk_size=2)
    there = Evaluator(task, preset="tiny", executor=executor)
    try:
        assert _same(here.evaluate(CANDIDATES), there.evaluate(CANDIDATES))
        assert here.counters == there.counters  # caches and the equivalence index stay on the driver
        more = CANDIDATES + ["tanh(fx - y)"]
        assert _same(here.evaluate(more), there.evaluate(more))
        assert len(executor._plugins) == 1  # the task went out once, not with every chunk
    finally:
        executor.close()
    left = client.run(lambda dask_worker: [n for n in dask_worker.plugins if n.startswith("evomal-sr")])
    assert all(not names for names in left.values())  # close() removed its plugins ...
    assert client.submit(sum, [1, 2]).result() == 3  # ... and left the passed client usable


def test_workers_score_the_standard_presets_fitness_bit_for_bit(task, client):
    # the standard preset's fitness (two initialisations x two lrs, the best step along the run) on a tiny budget
    fitness = {"fitness_seeds": 2, "fitness_lr_grid": 2, "fitness_lr_ratio": 10.0, "fitness_eval_every": 5}
    here = Evaluator(task, preset="tiny", **fitness)
    executor = DaskExecutor(client, default_chunk_size=3)
    try:
        there = Evaluator(task, preset="tiny", executor=executor, **fitness)
        assert _same(here.evaluate(CANDIDATES), there.evaluate(CANDIDATES))
    finally:
        executor.close()


def test_same_pareto_csv_on_a_passed_client(task, client, reference, tmp_path):
    LossSearch(out_dir=tmp_path, executor=client, **SMALL).fit(task)
    assert (tmp_path / "pareto.csv").read_bytes() == reference
    assert client.status == "running"  # a passed client is not closed by the search


def test_cli_balanced_chunks_on_two_workers_give_the_same_pareto_csv(client, tmp_path):
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--population", "6", "--seed", "1", "-q"]
    here = invoke(*args, "--out", tmp_path / "here")
    there = invoke(
        *args, "--scheduler", client.scheduler.address, "--chunk-size", "balanced", "--out", tmp_path / "there"
    )
    assert here.exit_code == 0 and there.exit_code == 0, there.stderr
    assert (tmp_path / "there" / "pareto.csv").read_bytes() == (tmp_path / "here" / "pareto.csv").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 3])
def test_same_pareto_csv_on_1_and_3_local_workers(task, reference, tmp_path, workers):
    LossSearch(out_dir=tmp_path, executor=workers, chunk_size=1, **SMALL).fit(task)
    assert (tmp_path / "pareto.csv").read_bytes() == reference


def test_resume_in_process_after_a_run_on_workers(task, client, reference, tmp_path):
    class Stop(Exception):
        pass

    def stop(record):
        raise Stop

    with pytest.raises(Stop):
        LossSearch(out_dir=tmp_path, executor=client, on_generation=stop, **SMALL).fit(task)
    resumed = LossSearch(out_dir=tmp_path, resume=True, **SMALL).fit(task)
    assert [h["generation"] for h in resumed.history_] == [0, 1]
    assert (tmp_path / "pareto.csv").read_bytes() == reference


def test_cli_scheduler_address_gives_the_same_pareto_csv(client, tmp_path):
    args = ["search", "--dataset", "iris", "--preset", "tiny", "--population", "6", "--seed", "1", "-q"]
    here = invoke(*args, "--out", tmp_path / "here")
    there = invoke(*args, "--scheduler", client.scheduler.address, "--chunk-size", "3", "--out", tmp_path / "there")
    assert here.exit_code == 0 and there.exit_code == 0, there.stderr
    assert (tmp_path / "there" / "pareto.csv").read_bytes() == (tmp_path / "here" / "pareto.csv").read_bytes()


# -- faults and bad input --------------------------------------------------------------------------
@pytest.mark.slow
def test_a_worker_killed_mid_generation_changes_nothing(task, reference, tmp_path):
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    )
    killed = []
    with distributed.Client(cluster) as c:
        pids = c.run(os.getpid)

        def assassin():  # SIGKILL the first worker seen scoring a chunk
            deadline = time.monotonic() + 60
            while not killed and time.monotonic() < deadline:
                for address, keys in c.processing().items():
                    if any("score_chunk" in str(k) for k in keys) and address in pids:
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        break
                time.sleep(0.005)

        thread = threading.Thread(target=assassin, daemon=True)
        thread.start()
        LossSearch(out_dir=tmp_path, executor=c, chunk_size=1, **SMALL).fit(task)
        thread.join(timeout=5)
    cluster.close()
    assert killed, "no worker was caught scoring a chunk"
    assert (tmp_path / "pareto.csv").read_bytes() == reference


def test_an_unreachable_scheduler_is_one_error_within_the_timeout(monkeypatch):
    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT_S", 1.0)
    tick = time.monotonic()
    result = invoke("search", "--dataset", "iris", "--preset", "tiny", "--scheduler", "tcp://127.0.0.1:9")
    assert time.monotonic() - tick < 15
    assert_one_line_error(result, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not both"),
        (["--workers", "2", "--chunk-size", "0"], "--chunk-size must be a positive integer or 'balanced'"),
        (["--workers", "2", "--chunk-size", "even"], "got 'even'"),
        (["--scheduler", "nowhere"], "scheduler address"),
    ],
)
def test_cli_bad_executor_options(args, fragment):
    assert_one_line_error(invoke("search", "--dataset", "iris", *args), fragment)


class _FakeClient:
    def __init__(self, answers):
        self.answers = answers

    def run(self, function, on_error):
        return self.answers


@pytest.mark.parametrize(
    "answers, fragment",
    [
        ({"tcp://w:1": "missing: No module named 'evomal_sr'"}, "cannot import evomal_sr"),
        ({"tcp://w:1": ModuleNotFoundError("No module named 'evomal_sr'")}, "install evomal-sr"),
        ({"tcp://w:1": "0.0.0-other"}, "same version"),
        ({}, "no workers"),
    ],
)
def test_a_worker_without_evomal_sr_is_named(answers, fragment):
    with pytest.raises(EngineUnavailableError, match=fragment):
        check_workers(_FakeClient(answers))


def test_real_workers_pass_the_check(client):
    assert check_workers(client) == 2


def test_local_workers_keep_freed_memory_as_the_command_line_does(tmp_path):
    # Dask's nannies would start workers with MALLOC_TRIM_THRESHOLD_=65536 (costly page faults for
    # the evaluator's short-lived tensors); they get evomal_sr.core.memory's settings instead. A fresh
    # process, since a nanny leaks them into its parent.
    script = tmp_path / "env.py"
    script.write_text(
        "import os\n"
        "from evomal_sr.parallel.dask_executor import DaskExecutor\n"
        "names = ('MALLOC_TRIM_THRESHOLD_', 'MALLOC_TOP_PAD_', 'MALLOC_MMAP_THRESHOLD_')\n"
        "if __name__ == '__main__':\n"
        "    with DaskExecutor.local(1) as ex:\n"
        "        print(list(ex.client.run(lambda: {n: os.environ.get(n) for n in names}).values()))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str([ALLOCATOR_ENVIRONMENT])


def test_open_executor_closes_what_it_started():
    with open_executor("local:1") as executor:
        client = executor.client
        assert executor.n_workers == 1
    assert client.status == "closed"


# -- the PySR engine's callback (to the Julia boundary) ----------------------------------------------
def test_pysr_callback_batches_go_through_the_executor(task, client):
    from concurrent.futures import ThreadPoolExecutor

    from evomal_sr.engines.pysr.bridge import LossCallback

    texts = ["(y * plog(fx))", "((fx - y) * (fx - y))", "(y + fx)", "aq(y, fx)", "(y * psqrt(fx))"]
    sent = []

    class Spy:  # counts what reaches the workers
        default_chunk_size = 2

        def __init__(self, inner):
            self.inner = inner

        def score_chunks(self, evaluator, chunks):
            sent.extend(chunks)
            return self.inner.score_chunks(evaluator, chunks)

    def fitnesses(executor):
        evaluator = Evaluator(task, preset="tiny", repair=False, executor=executor)
        with LossCallback(evaluator, window=0.05) as callback, ThreadPoolExecutor(4) as pool:  # Julia's threads
            return list(pool.map(callback, texts))

    executor = DaskExecutor(client)
    try:
        assert fitnesses(Spy(executor)) == fitnesses(None)
    finally:
        executor.close()
    assert sent and max(len(chunk) for chunk in sent) <= 2
