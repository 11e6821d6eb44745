"""Tests of the PySR engine up to the Julia boundary (no Julia needed), plus
``@pytest.mark.julia`` tests that run a real search where Julia is installed.

Nothing here imports ``pysr`` or ``juliacall`` outside the Julia tests: importing
PySR starts Julia. PySR's constructor is read from its source with ``ast``.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import re
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from juliahelpers import julia_skip_reason

from evomal_sr.core.presets import resolve_preset
from evomal_sr.engines.base import EngineContext
from evomal_sr.engines.pysr import (
    JULIA_MODULE,
    LOSS_FUNCTION,
    OBJECTIVE_FILE,
    PySREngine,
    julia_source_dir,
    operator_arguments,
    probe_dataset,
    search_budget,
)
from evomal_sr.engines.pysr import engine as engine_module
from evomal_sr.engines.pysr.bridge import CandidateTimeoutWarning, LossCallback
from evomal_sr.engines.pysr.text import canonical_expression
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.operators import OPERATOR_SETS, OPERATORS, searchable_operators
from evomal_sr.scoring.evaluator import FitnessResult

JULIA_DIR = Path(__file__).resolve().parents[1] / "julia"


# ------------------------------------------------------------------ fakes
class FakeTask:
    kind = "classification"
    n_outputs = 3

    def describe(self):
        return {"name": "fake", "kind": self.kind}


def fake_fitness(expression: str) -> float:
    """A deterministic, expression-specific fitness."""
    return (sum(map(ord, expression)) % 997) / 1000


class FakeEvaluator:
    """Scores canonical texts with :func:`fake_fitness`; records every batch."""

    def __init__(self, *, delay=0.0, fail_on=(), nan_on=(), raise_all=False, fitness=None):
        self.batches: list[list[str]] = []
        self.fitness = dict(fitness or {})
        self.delay = delay
        self.fail_on = set(fail_on)
        self.nan_on = set(nan_on)
        self.raise_all = raise_all
        self.lock = threading.Lock()

    def evaluate(self, expressions):
        texts = [str(e) for e in expressions]
        with self.lock:
            self.batches.append(texts)
        if self.delay:
            time.sleep(self.delay)
        if self.raise_all or any(t in self.fail_on for t in texts):
            raise RuntimeError("evaluator failure")
        return [self.result(t) for t in texts]

    def result(self, text):
        expr = Expression.parse(text)
        fitness = math.nan if text in self.nan_on else self.fitness.get(text, fake_fitness(text))
        weights = tuple(0.5 + 0.01 * i for i in range(expr.size - 1))
        return FitnessResult(text, fitness, "ok", weights, expr.complexity)

    @property
    def requested(self):
        return [t for batch in self.batches for t in batch]


def make_context(**options):
    kwargs = {k: options.pop(k) for k in ("guesses", "out_dir", "seed") if k in options}
    return EngineContext(
        task=FakeTask(),
        evaluator=FakeEvaluator(),
        settings=resolve_preset("quick"),
        seed=kwargs.get("seed", 3),
        guesses=kwargs.get("guesses", ["-(y * log(fx))"]),
        out_dir=kwargs.get("out_dir"),
        options=options,
    )


def pysr_init_parameters() -> set[str]:
    """Keyword names of the installed ``PySRRegressor.__init__``, read with ``ast``."""
    spec = importlib.util.find_spec("pysr")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pysr is not installed")
    source = Path(list(spec.submodule_search_locations)[0]) / "sr.py"
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == "PySRRegressor":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    return {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs} - {"self"}
    pytest.fail(f"PySRRegressor.__init__ not found in {source}")


# ------------------------------------------------------------------ PySR keyword arguments
@pytest.mark.parametrize("options", [{}, {"deterministic": True}, {"threads": 3, "maxsize": 20, "timeout": 60}])
def test_kwargs_are_accepted_by_installed_pysr(options):
    kwargs = PySREngine.build_regressor_kwargs(make_context(**options))
    unknown = set(kwargs) - pysr_init_parameters()
    assert not unknown, f"PySRRegressor does not accept {sorted(unknown)}"


def test_kwargs_fit_an_expensive_objective():
    kwargs = PySREngine.build_regressor_kwargs(make_context())
    assert kwargs["loss_function"] == LOSS_FUNCTION == f"{JULIA_MODULE}.objective"
    assert kwargs["should_optimize_constants"] is False and kwargs["batching"] is False
    assert kwargs["parallelism"] == "multithreading" and kwargs["deterministic"] is False
    assert kwargs["random_state"] is None
    assert kwargs["tournament_selection_n"] < kwargs["population_size"]
    assert 7 <= kwargs["maxsize"] and kwargs["maxdepth"] == resolve_preset("quick").height_limit + 1
    assert kwargs["max_evals"] > kwargs["populations"] * kwargs["population_size"]
    assert kwargs["guesses"] == ["(-1.0 * (y * plog(fx)))"]
    assert kwargs["temp_equation_file"] is True and "output_directory" not in kwargs


def test_deterministic_kwargs_and_output_directory(tmp_path):
    kwargs = PySREngine.build_regressor_kwargs(make_context(deterministic=True, seed=11, out_dir=tmp_path))
    assert kwargs["parallelism"] == "serial"
    assert kwargs["deterministic"] is True and kwargs["random_state"] == 11
    assert kwargs["output_directory"] == str(tmp_path / "pysr") and kwargs["temp_equation_file"] is False


@pytest.mark.parametrize(
    "options", [{"maxsize": 3}, {"threads": 0}, {"populations": "4"}, {"precision": 16}, {"timeout": -1}]
)
def test_bad_engine_options_raise_config_error(options):
    with pytest.raises(ConfigError):
        PySREngine.build_regressor_kwargs(make_context(**options))


def test_bad_guess_raises_config_error():
    with pytest.raises(ConfigError, match="guess"):
        PySREngine.build_regressor_kwargs(make_context(guesses=["y / fx"]))


def test_the_estimator_refuses_a_native_only_setting_for_pysr():
    from evomal_sr.data.tasks import Task
    from evomal_sr.search.estimator import LossSearch

    # raised while validating, before the engine checks for Julia: the same error with or without it
    with pytest.raises(ConfigError, match="initial_fill='variants' is the native engine's"):
        LossSearch(engine="pysr", preset="tiny", initial_fill="variants").fit(Task.builtin("iris", seed=0))


def test_budget_scales_with_the_preset():
    paper, tiny = resolve_preset("paper"), resolve_preset("tiny")
    big = search_budget(paper, {"populations": 5})
    assert big["population_size"] == paper.population and big["niterations"] == 10
    small = search_budget(tiny, {"deterministic": True})
    assert small["populations"] == 2 and small["tournament_selection_n"] < small["population_size"]
    assert small["niterations"] >= 1 and small["ncycles_per_iteration"] >= 1


def test_operators_come_from_the_registry():
    args = operator_arguments()
    searchable = searchable_operators()
    assert len(args["binary_operators"]) + len(args["unary_operators"]) == len(searchable)
    for op in searchable:
        listed = args["binary_operators"] if op.arity == 2 else args["unary_operators"]
        assert any(entry in (op.infix, op.julia, op.julia_name) for entry in listed), op.name
    # `square` is SymbolicRegression's own export: a second definition in Main would clash.
    assert "square" in args["unary_operators"]
    assert "plog(x) = log(max(abs(x), oftype(x, 1e-7)))" in args["unary_operators"]
    import sympy

    a, b = sympy.symbols("a b", real=True)
    for julia_name, mapping in args["extra_sympy_mappings"].items():
        op = OPERATORS[{"plog": "log", "psqrt": "sqrt"}.get(julia_name, julia_name)]
        symbols = (a, b)[: op.arity]
        assert sympy.simplify(mapping(*symbols) - op.sympy(sympy, *symbols)) == 0
        assert re.match(rf"{julia_name}\(", op.julia), "definition must name the function PySR prints"


def test_pysr_torch_export_covers_every_sympy_head():
    """PySR's default torch table maps every SymPy function our mappings produce."""
    spec = importlib.util.find_spec("pysr")
    if spec is None:
        pytest.skip("pysr is not installed")
    import sympy

    source = (Path(list(spec.submodule_search_locations)[0]) / "export_torch.py").read_text(encoding="utf-8")
    covered = set(re.findall(r"sympy\.(\w+):", source))
    a, b = sympy.symbols("a b", real=True)
    heads = set()
    for op in searchable_operators():
        for node in sympy.preorder_traversal(op.sympy(sympy, *(a, b)[: op.arity])):
            if not node.is_Atom:
                heads.add(node.func.__name__)
    assert heads <= covered, f"add extra_torch_mappings for {sorted(heads - covered)}"


def test_probe_dataset_is_fixed_and_fits_the_task_kind():
    X, y = probe_dataset("classification", 16, seed=0)
    assert X.shape == (16, 2) and y.shape == (16,)
    assert set(X[:, 0]) <= {0.0, 1.0} and ((X[:, 1] > 0) & (X[:, 1] < 1)).all()
    X2, _ = probe_dataset("classification", 16, seed=0)
    assert (X == X2).all()
    assert probe_dataset("regression", 8, seed=1)[0].shape == (8, 2)


# ------------------------------------------------------------------ run() with a simulated Julia
PRINTED = [
    "-1.0 * (y * plog(fx))",
    "square(fx - y)",
    "plog(fx)",
    "aq(y, fx) + -0.25",
    "y * fx",
    "(y * plog(fx)) * -1.0f-7",
    "max(y, fx) - fx",
    "square(fx - y)",
]


class SimulatedJulia:
    """Stands for juliacall's ``Main``; its ``EvomalPySR`` keeps the installed callback."""

    def __init__(self, threads=4):
        self.included: list[str] = []
        self.poll_limits: list[float] = []
        self.EvomalPySR = types.SimpleNamespace(callback=None)
        self.EvomalPySR.install_callback = self._install
        self.EvomalPySR.remove_callback = lambda: setattr(self.EvomalPySR, "callback", None)
        self.Main = self
        self.Base = types.SimpleNamespace(include=lambda module, path: self.included.append(path))
        self.Threads = types.SimpleNamespace(nthreads=lambda: threads)

    def _install(self, callback, poll_limit):
        self.EvomalPySR.callback = callback
        self.poll_limits.append(poll_limit)

    def seval(self, code):
        assert code == f"isdefined(Main, :{JULIA_MODULE})"
        return bool(self.included)


def simulated_pysr(julia: SimulatedJulia, out_dir: Path):
    """A ``pysr`` module whose ``fit`` calls the callback the way ``loss_objective.jl`` does."""

    def objective(callback, text):  # submit, then poll until the fitness is ready
        ticket = callback.submit(text)
        while math.isnan(value := callback.poll(ticket)):
            time.sleep(0.001)
        return value

    class PySRRegressor:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def fit(self, X, y, *, variable_names):
            assert variable_names == ["y", "fx"] and X.shape[1] == 2
            callback = julia.EvomalPySR.callback
            losses = {}
            threads = [
                threading.Thread(target=lambda t=t: losses.setdefault(t, objective(callback, t))) for t in PRINTED
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            self.output_directory_, self.run_id_ = str(out_dir), "run"
            (out_dir / "run").mkdir(parents=True)
            rows = [f'{canonical_expression(t).complexity},{losses[t]},"{t}"' for t in PRINTED[:2]]
            (out_dir / "run" / "hall_of_fame.csv").write_text(
                "Complexity,Loss,Equation\n" + "\n".join(rows) + "\n", encoding="utf-8"
            )
            return self

    return types.SimpleNamespace(PySRRegressor=PySRRegressor)


def simulate_julia(monkeypatch, tmp_path, julia=None) -> SimulatedJulia:
    """Make ``PySREngine.run`` use a simulated PySR and Julia (and a found Julia)."""
    julia = julia or SimulatedJulia()
    monkeypatch.setattr(engine_module, "availability_problem", lambda: None)
    monkeypatch.setattr(engine_module, "start_julia", lambda threads=None: simulated_pysr(julia, tmp_path))
    monkeypatch.setitem(sys.modules, "juliacall", types.SimpleNamespace(Main=julia))
    return julia


def test_run_drives_the_callback_and_imports_the_hall_of_fame(monkeypatch, tmp_path):
    julia = simulate_julia(monkeypatch, tmp_path)
    records = []
    context = make_context(batch_window=0.05, candidate_timeout=120)
    context.evaluator = FakeEvaluator(delay=0.05)
    context.on_generation = records.append
    result = PySREngine().run(context)

    assert julia.included == [str(julia_source_dir() / OBJECTIVE_FILE)]
    assert julia.EvomalPySR.callback is None  # removed after the search
    assert julia.poll_limits == [120 + engine_module.JULIA_POLL_GRACE]  # the Julia loop is bounded too
    evaluated = context.evaluator.requested
    assert "log(fx)" not in evaluated and len(evaluated) == len(set(evaluated)) == 6
    assert len(context.evaluator.batches) < len(evaluated)
    entries = {e.expression: e for e in result.hall_of_fame.entries()}
    best = min(entries.values(), key=lambda e: e.fitness)
    assert best.weights == context.evaluator.result(best.expression).weights
    assert sum(r.evaluations for r in result.history) == 6 and records == result.history


def test_run_ends_when_the_evaluator_never_answers(monkeypatch, tmp_path):
    from test_pysr_callback import NeverAnswers

    simulate_julia(monkeypatch, tmp_path)
    context = make_context(candidate_timeout=0.3)
    context.evaluator = NeverAnswers()
    tick = time.monotonic()
    try:
        with pytest.warns(CandidateTimeoutWarning) as caught:
            result = PySREngine().run(context)
    finally:
        context.evaluator.release.set()
    assert time.monotonic() - tick < 10
    assert result.hall_of_fame.entries() == []
    assert any("left running" in str(w.message) for w in caught)


def test_run_logs_its_settings_and_counts(monkeypatch, tmp_path, caplog):
    simulate_julia(monkeypatch, tmp_path, SimulatedJulia(threads=3))
    caplog.set_level("INFO", logger="evomal_sr.engines.pysr.engine")
    PySREngine().run(make_context(threads=3, populations=2, candidate_timeout=90))
    start, done = [r.getMessage() for r in caplog.records if r.name == "evomal_sr.engines.pysr.engine"]
    assert "3 Julia threads, parallelism=multithreading, 2 populations of" in start
    assert "search releases the GIL: yes" in start and "candidate timeout 90 s" in start
    assert re.search(r"done: 8 fitness requests \(1 memo hits, 1 invalid, 0 timed out\); 6 candidates", done), done


def test_a_multithreaded_run_on_one_julia_thread_warns(monkeypatch, tmp_path):
    simulate_julia(monkeypatch, tmp_path, SimulatedJulia(threads=1))
    with pytest.warns(UserWarning, match="only 1 Julia thread"):
        PySREngine().run(make_context())


def test_log_to_stderr_writes_to_the_current_stderr_once(capsys):
    logger = engine_module._LOG
    handlers, level = list(logger.handlers), logger.level
    try:
        engine_module.log_to_stderr()
        engine_module.log_to_stderr()
        logger.info("hello %s", "there")
        assert capsys.readouterr().err == "evomal-sr: hello there\n"
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


# ------------------------------------------------------------------ Julia sources
def julia_files() -> list[Path]:
    files = sorted(JULIA_DIR.glob("*.jl"))
    assert files, f"no Julia files in {JULIA_DIR}"
    return files


def test_julia_source_dir_is_found():
    assert (julia_source_dir() / OBJECTIVE_FILE).is_file()


def _syntax_problems(source: bytes) -> list[str]:
    ts = pytest.importorskip("tree_sitter")
    ts_julia = pytest.importorskip("tree_sitter_julia")
    tree = ts.Parser(ts.Language(ts_julia.language())).parse(source)
    problems, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            problems.append(f"{node.type} at line {node.start_point[0] + 1}: {node.text[:60]!r}")
        stack.extend(node.children)
    return problems


@pytest.mark.parametrize("path", julia_files(), ids=lambda p: p.name)
def test_julia_files_parse_without_errors(path):
    assert _syntax_problems(path.read_bytes()) == []


def test_registry_julia_definitions_parse():
    for args in map(operator_arguments, OPERATOR_SETS):  # every set's, the robust set's pow and huber included
        for entry in args["binary_operators"] + args["unary_operators"]:
            assert _syntax_problems(entry.encode()) == [], entry


def test_julia_objective_matches_the_python_side():
    source = (JULIA_DIR / OBJECTIVE_FILE).read_text(encoding="utf-8")
    assert f"module {JULIA_MODULE}" in source
    for needle in (
        "function objective(tree, dataset::Dataset{T,L}, options)::L where {T,L}",
        "PythonCall.GIL.@lock",
        "string_tree(",
        "ReentrantLock()",
        "L(Inf)",
        "function install_callback(callback, poll_limit::Real=",
        "function remove_callback(",
        ".submit(",
        ".poll(",
        "POLL_LIMIT[] = Float64(poll_limit)",
        "if time() - started > limit",
        "@warn ",
    ):
        assert needle in source, needle
    assert callable(LossCallback.submit) and callable(LossCallback.poll)


# ------------------------------------------------------------------ real searches (Julia)
needs_julia = pytest.mark.skipif(julia_skip_reason() is not None, reason=julia_skip_reason() or "")


@pytest.mark.julia
@needs_julia
@pytest.mark.parametrize("options", [{"deterministic": True}, {"threads": 2, "populations": 2}])
def test_real_pysr_search_on_a_tiny_budget(options, tmp_path):
    from evomal_sr.data.tasks import Task
    from evomal_sr.scoring.evaluator import Evaluator

    task = Task.builtin("iris", seed=0)
    settings = resolve_preset("tiny", generations=2)
    evaluator = Evaluator(task, preset=settings, seed=0, repair=False)
    records = []
    context = EngineContext(
        task=task,
        evaluator=evaluator,
        settings=settings,
        seed=0,
        guesses=[task.baseline_expression],
        out_dir=tmp_path,
        on_generation=records.append,
        options={**options, "timeout": 300},
    )
    result = PySREngine().run(context)
    entries = result.hall_of_fame.entries()
    assert entries, "the search trained no loss"
    for entry in entries:
        assert len(entry.weights) == Expression.parse(entry.expression).size - 1
    assert result.history and records == result.history
    assert list((tmp_path / "pysr").glob("*/hall_of_fame.csv"))


@pytest.mark.julia
@needs_julia
def test_deterministic_pysr_search_is_reproducible():
    from evomal_sr.data.tasks import Task
    from evomal_sr.search.estimator import LossSearch

    task = Task.builtin("iris", seed=0)
    fronts = [
        LossSearch(engine="pysr", preset="tiny", seed=1, engine_options={"deterministic": True})
        .fit(task)
        .pareto_front_.to_csv_text()
        for _ in range(2)
    ]
    assert fronts[0] == fronts[1]
