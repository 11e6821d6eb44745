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
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from evomal_sr.core.presets import resolve_preset
from evomal_sr.engines import get_engine
from evomal_sr.engines import pysr as engine_module
from evomal_sr.engines.base import EngineContext
from evomal_sr.engines.pysr import (
    JULIA_MODULE,
    LOSS_FUNCTION,
    OBJECTIVE_FILE,
    PySREngine,
    availability_problem,
    find_julia,
    julia_source_dir,
    operator_arguments,
    probe_dataset,
    search_budget,
)
from evomal_sr.engines.pysr_bridge import (
    LossCallback,
    canonical_expression,
    front_entries,
    normalize_equation,
    read_hall_of_fame_csv,
    to_pysr_equation,
)
from evomal_sr.errors import ConfigError, EngineUnavailableError, ExpressionError
from evomal_sr.evaluator import FitnessResult
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.operators import OPERATORS, searchable_operators
from evomal_sr.results.front import HallOfFame, ParetoFront

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
    return EngineContext(task=FakeTask(), evaluator=FakeEvaluator(), settings=resolve_preset("quick"),
                         seed=kwargs.get("seed", 3), guesses=kwargs.get("guesses", ["-(y * log(fx))"]),
                         out_dir=kwargs.get("out_dir"), options=options)


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


@pytest.mark.parametrize("options", [{"maxsize": 3}, {"threads": 0}, {"populations": "4"}, {"precision": 16},
                                     {"timeout": -1}])
def test_bad_engine_options_raise_config_error(options):
    with pytest.raises(ConfigError):
        PySREngine.build_regressor_kwargs(make_context(**options))


def test_bad_guess_raises_config_error():
    with pytest.raises(ConfigError, match="guess"):
        PySREngine.build_regressor_kwargs(make_context(guesses=["y / fx"]))


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


# ------------------------------------------------------------------ equation text
CANONICAL_PAIRS = [
    ("y * plog(fx)", "(y * log(fx))"),
    ("-1.0f0 * (y * plog(fx))", "(-1.0 * (y * log(fx)))"),
    ("(y * -0.5f0) + 1.0f-7", "((y * -0.5) + 1e-07)"),
    ("aq(y - fx, psqrt(fx))", "aq((y - fx), sqrt(fx))"),
    ("square(fx - y)", "square((fx - y))"),
    ("max(y, fx) - min(fx, 2.5e10)", "(max(y, fx) - min(fx, 25000000000.0))"),
    ("((((y)))) * (fx - -1.0)", "(y * (fx - -1.0))"),
    ("tanh(sign(abs(y))) * fx", "(tanh(sign(abs(y))) * fx)"),
    ("x1 * plog(x2)", "(y * log(fx))"),
    ("x\u2081 - x\u2082", "(y - fx)"),
    ("aq(fx, (-1.0))", "aq(fx, -1.0)"),
    ("3.0e-5 * y + 100.0f0 * fx", "((3e-05 * y) + (100.0 * fx))"),
]


@pytest.mark.parametrize(("printed", "canonical"), CANONICAL_PAIRS)
def test_pysr_strings_parse_to_the_canonical_expression(printed, canonical):
    assert canonical_expression(printed) == Expression.parse(canonical)
    assert str(canonical_expression(printed)) == canonical


@pytest.mark.parametrize("bad", ["Inf32 * y", "NaN", "{y * fx}", "y / fx", "y ^ 2", "exp(y)", "", "   ",
                                 "__import__('os')", "y; fx", "x3 * y", "y.real", "y @ fx", "lambda: y",
                                 "plog(fx, y)", "y fx", "2x"])
def test_bad_strings_raise_expression_error(bad):
    with pytest.raises(ExpressionError):
        canonical_expression(bad)


def test_normalize_equation_only_translates_numbers_and_feature_names():
    assert normalize_equation("aq(x1, 1.5f0)") == "aq(y, 1.5e0)"
    assert normalize_equation("plog(fx)") == "plog(fx)"
    with pytest.raises(ExpressionError):
        normalize_equation(42)


@pytest.mark.parametrize("text", ["-(y * log(fx))", "aq(square((fx - y)), sqrt(y))", "max(-1.0, min(y, fx))",
                                  "((y + 1e-07) * tanh(fx))", "-abs((y - fx))"])
def test_guess_text_round_trips(text):
    import numpy as np

    original = Expression.parse(text)
    guess = to_pysr_equation(original)
    assert "log(" not in guess.replace("plog(", "") and "sqrt(" not in guess.replace("psqrt(", "")
    back = canonical_expression(guess)
    y, fx = np.linspace(-2, 2, 7), np.linspace(0.1, 0.9, 7)
    np.testing.assert_allclose(back.evaluate_numpy(y, fx), original.evaluate_numpy(y, fx))


# ------------------------------------------------------------------ the callback
def test_callback_memoises_on_text_and_canonical_form():
    evaluator = FakeEvaluator()
    with LossCallback(evaluator) as callback:
        first = callback("y * plog(fx)")
        again = [callback("y * plog(fx)"), callback("(y * log(fx))"), callback("((y) * plog(fx))")]
    assert evaluator.requested == ["(y * log(fx))"]
    assert first == fake_fitness("(y * log(fx))") and again == [first] * 3
    assert callback.stats.calls == 4 and callback.stats.memo_hits == 3 and callback.stats.batches == 1
    assert callback.result_for("y * plog(fx)").weights == evaluator.result("(y * log(fx))").weights


@pytest.mark.parametrize("kind", ["bad string", "incomplete", "evaluator raises", "nan fitness", "not a str"])
def test_callback_returns_inf_on_every_failure(kind):
    target = "(y * log(fx))"
    evaluator = FakeEvaluator(fail_on={target} if kind == "evaluator raises" else (),
                              nan_on={target} if kind == "nan fitness" else ())
    text = {"bad string": "y / fx", "incomplete": "plog(fx)", "not a str": 3.5}.get(kind, "y * plog(fx)")
    with LossCallback(evaluator) as callback:
        assert callback(text) == math.inf
        assert callback(text) == math.inf  # and memoised
        assert callback("fx - y") == fake_fitness("(fx - y)")  # other candidates are unaffected
    if kind in ("bad string", "incomplete", "not a str"):
        assert target not in evaluator.requested


def test_a_failing_batch_is_retried_one_by_one():
    evaluator = FakeEvaluator(delay=0.05, fail_on={"(y * fx)"})
    texts = ["y * fx", "y - fx", "y + fx", "aq(y, fx)"]
    with LossCallback(evaluator, window=0.2) as callback:
        tickets = [callback.submit(t) for t in texts]
        deadline = time.monotonic() + 10
        values = [math.nan] * len(texts)
        while any(math.isnan(v) for v in values) and time.monotonic() < deadline:
            values = [callback.poll(t) if math.isnan(v) else v for t, v in zip(tickets, values)]
            time.sleep(0.01)
    assert values[0] == math.inf
    assert values[1:] == [fake_fitness(str(canonical_expression(t))) for t in texts[1:]]
    assert evaluator.batches[0] == [str(canonical_expression(t)) for t in texts]


def test_callback_survives_an_evaluator_returning_the_wrong_length():
    class Short(FakeEvaluator):
        def evaluate(self, expressions):
            return super().evaluate(expressions)[:-1]

    with LossCallback(Short()) as callback:
        assert callback("y * fx") == math.inf


EXPRESSIONS = [f"(y * {c}.0) - aq(fx, y)" for c in range(1, 33)]


@pytest.mark.parametrize("use_tickets", [False, True])
def test_concurrent_requests_are_served_in_batches(use_tickets):
    evaluator = FakeEvaluator(delay=0.05)
    answers: dict[int, float] = {}
    start = threading.Barrier(len(EXPRESSIONS))

    def worker(i, callback):
        start.wait()
        if not use_tickets:
            answers[i] = callback(EXPRESSIONS[i])
            return
        ticket = callback.submit(EXPRESSIONS[i])  # how the Julia objective asks
        while math.isnan(value := callback.poll(ticket)):
            time.sleep(0.002)
        answers[i] = value

    with LossCallback(evaluator, window=0.02) as callback:
        threads = [threading.Thread(target=worker, args=(i, callback)) for i in range(len(EXPRESSIONS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    sizes = callback.stats.batch_sizes
    assert sum(sizes) == len(EXPRESSIONS) and len(sizes) < len(EXPRESSIONS) / 2 and max(sizes) > 1
    for i, text in enumerate(EXPRESSIONS):
        assert answers[i] == fake_fitness(str(canonical_expression(text)))


def test_poll_and_close_semantics():
    evaluator = FakeEvaluator(delay=0.2)
    callback = LossCallback(evaluator)
    ticket = callback.submit("y * fx")
    assert math.isnan(callback.poll(ticket))  # pending
    assert callback.poll(10_000) == math.inf  # unknown ticket
    callback.close()
    assert callback.poll(ticket) == fake_fitness("(y * fx)")  # the batch in progress finished
    assert callback("y - fx") == math.inf  # closed
    assert not callback._worker.is_alive()


def test_waiting_too_long_gives_inf():
    with LossCallback(FakeEvaluator(delay=0.5)) as callback:
        assert callback("y * fx", timeout=0.01) == math.inf
        assert callback("y * fx") == fake_fitness("(y * fx)")


def test_on_batch_errors_are_kept_not_raised():
    def hook(results, seconds):
        raise ValueError("progress bar broke")

    with LossCallback(FakeEvaluator(), on_batch=hook) as callback:
        assert callback("y * fx") == fake_fitness("(y * fx)")
    assert isinstance(callback.error, ValueError)


@pytest.mark.slow
def test_callback_with_the_real_evaluator():
    from evomal_sr.data.tasks import Task
    from evomal_sr.evaluator import Evaluator

    evaluator = Evaluator(Task.builtin("iris", seed=0), preset="tiny", repair=False)
    with LossCallback(evaluator) as callback:
        cross_entropy = callback("-1.0f0 * (y * plog(fx))")
        assert math.isfinite(cross_entropy) and 0.0 <= cross_entropy <= 1.0
        assert callback("plog(fx)") == math.inf  # lacks y: rejected before training
    result = callback.result_for("(-1.0 * (y * log(fx)))")
    assert result.trained and len(result.weights) == Expression.parse(result.expression).size - 1


# ------------------------------------------------------------------ hall of fame import
HALL_OF_FAME = '''Complexity,Loss,Equation
1,Inf32,"fx"
3,0.45f0,"y - fx"
4,0.3f0,"square(fx - y)"
5,0.5f0,"aq(y, fx) + -2.5f-1"
6,0.25,"-1.0f0 * (y * plog(fx))"
8,0.25f0,"(-1.0f0 * (y * plog(fx))) * 1.0f0"
'''


def test_hall_of_fame_csv_imports_into_a_pareto_front(tmp_path):
    path = tmp_path / "hall_of_fame.csv"
    path.write_text(HALL_OF_FAME, encoding="utf-8")
    rows = read_hall_of_fame_csv(path)
    assert [r.complexity for r in rows] == [1, 3, 4, 5, 6, 8]
    assert rows[0].loss == math.inf and rows[2].loss == pytest.approx(0.3)

    twin, copy = "(-1.0 * (y * log(fx)))", "((-1.0 * (y * log(fx))) * 1.0)"
    evaluator = FakeEvaluator(fitness={"square((fx - y))": 0.3, twin: 0.25, "(aq(y, fx) + -0.25)": 0.5})
    with LossCallback(evaluator) as callback:
        for row in rows:
            callback(row.equation)
    results = callback.results()
    # Let the complexity-8 row share the complexity-6 row's fitness, as the
    # evaluator's gradient-equivalence cache would, and reject another.
    results[copy] = FitnessResult(copy, 0.25, "equivalent", (1.0,) * 7, 8, reused_from=twin)
    results["(y - fx)"] = FitnessResult("(y - fx)", math.inf, "rejected", (1.0, 1.0), 3)

    entries = front_entries(rows, results.get)
    assert [e.expression for e in entries] == ["square((fx - y))", "(aq(y, fx) + -0.25)", twin, twin]
    for entry in entries:
        assert entry.weights == results[entry.expression].weights  # learned, not unit, weights
    front = ParetoFront(HallOfFame(entries).entries(), task_kind="classification")
    assert [(e.complexity, e.expression, e.fitness) for e in front] == [
        (4, "square((fx - y))", 0.3), (6, twin, 0.25)]
    assert front.to_csv_text().startswith("Complexity,Loss,Equation\n")


def test_hall_of_fame_csv_must_have_pysr_columns(tmp_path):
    path = tmp_path / "hall_of_fame.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Complexity"):
        read_hall_of_fame_csv(path)


def test_probe_dataset_is_fixed_and_fits_the_task_kind():
    X, y = probe_dataset("classification", 16, seed=0)
    assert X.shape == (16, 2) and y.shape == (16,)
    assert set(X[:, 0]) <= {0.0, 1.0} and ((X[:, 1] > 0) & (X[:, 1] < 1)).all()
    X2, _ = probe_dataset("classification", 16, seed=0)
    assert (X == X2).all()
    assert probe_dataset("regression", 8, seed=1)[0].shape == (8, 2)


# ------------------------------------------------------------------ run() with a simulated Julia
PRINTED = ["-1.0f0 * (y * plog(fx))", "square(fx - y)", "plog(fx)", "aq(y, fx) + -2.5f-1", "y * fx",
           "(y * plog(fx)) * -1.0f0", "max(y, fx) - fx", "square(fx - y)"]


class SimulatedJulia:
    """Stands for juliacall's ``Main``; its ``EvomalPySR`` keeps the installed callback."""

    def __init__(self):
        self.included: list[str] = []
        self.EvomalPySR = types.SimpleNamespace(callback=None)
        self.EvomalPySR.install_callback = lambda cb: setattr(self.EvomalPySR, "callback", cb)
        self.EvomalPySR.remove_callback = lambda: setattr(self.EvomalPySR, "callback", None)
        self.Main = self
        self.Base = types.SimpleNamespace(include=lambda module, path: self.included.append(path))

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
            threads = [threading.Thread(target=lambda t=t: losses.setdefault(t, objective(callback, t)))
                       for t in PRINTED]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            self.output_directory_, self.run_id_ = str(out_dir), "run"
            (out_dir / "run").mkdir(parents=True)
            rows = [f'{canonical_expression(t).complexity},{losses[t]},"{t}"' for t in PRINTED[:2]]
            (out_dir / "run" / "hall_of_fame.csv").write_text(
                "Complexity,Loss,Equation\n" + "\n".join(rows) + "\n", encoding="utf-8")
            return self

    return types.SimpleNamespace(PySRRegressor=PySRRegressor)


def test_run_drives_the_callback_and_imports_the_hall_of_fame(monkeypatch, tmp_path):
    julia = SimulatedJulia()
    monkeypatch.setattr(engine_module, "availability_problem", lambda: None)
    monkeypatch.setattr(engine_module, "import_pysr", lambda threads=None: simulated_pysr(julia, tmp_path))
    monkeypatch.setitem(sys.modules, "juliacall", types.SimpleNamespace(Main=julia))
    records = []
    context = make_context(batch_window=0.05)
    context.evaluator = FakeEvaluator(delay=0.05)
    context.on_generation = records.append
    result = PySREngine().run(context)

    assert julia.included == [str(julia_source_dir() / OBJECTIVE_FILE)]
    assert julia.EvomalPySR.callback is None  # removed after the search
    evaluated = context.evaluator.requested
    assert "log(fx)" not in evaluated and len(evaluated) == len(set(evaluated)) == 6
    assert len(context.evaluator.batches) < len(evaluated)
    entries = {e.expression: e for e in result.hall_of_fame.entries()}
    best = min(entries.values(), key=lambda e: e.fitness)
    assert best.weights == context.evaluator.result(best.expression).weights
    assert sum(r.evaluations for r in result.history) == 6 and records == result.history


# ------------------------------------------------------------------ availability
def test_engine_is_registered():
    assert get_engine("pysr") is PySREngine and PySREngine.name == "pysr"


def assert_one_sentence(message: str):
    assert "\n" not in message and message.endswith(".")
    assert re.search(r"[.!?]\s+[A-Z]", message) is None, message
    assert "pip install evomal-sr[pysr]" in message


def test_check_available_raises_one_sentence_here():
    if find_julia() is not None and importlib.util.find_spec("pysr") is not None:
        pytest.skip("Julia and pysr are installed here")
    with pytest.raises(EngineUnavailableError) as info:
        PySREngine.check_available()
    assert_one_sentence(str(info.value))
    ok, message = PySREngine.status()
    assert ok is False and message == str(info.value)


@pytest.mark.parametrize("missing", ["pysr", "juliacall"])
def test_missing_package_message(monkeypatch, missing):
    real = importlib.util.find_spec
    monkeypatch.setattr(engine_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else real(name, *a))
    message = availability_problem()
    assert f"`{missing}`" in message
    assert_one_sentence(message)


def test_old_pysr_and_missing_julia_messages(monkeypatch):
    monkeypatch.setattr(engine_module.importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(engine_module.importlib.metadata, "version", lambda name: "2.1.0")
    assert "pysr >= 2.2.0 (found 2.1.0)" in availability_problem()
    assert_one_sentence(availability_problem())
    monkeypatch.setattr(engine_module.importlib.metadata, "version", lambda name: "2.7.2")
    monkeypatch.setattr(engine_module, "find_julia", lambda: None)
    assert "needs Julia" in availability_problem()
    assert_one_sentence(availability_problem())


def test_find_julia_honours_pythons_juliapkg_exe(monkeypatch, tmp_path):
    fake = tmp_path / "julia"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(fake))
    assert find_julia() == str(fake)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(tmp_path / "absent"))
    assert find_julia() is None


def test_importing_the_engine_starts_no_julia():
    code = ("import sys, evomal_sr.engines.pysr_bridge; assert 'torch' not in sys.modules; "
            "import evomal_sr, evomal_sr.engines.pysr; "
            "assert not {'pysr', 'juliacall'} & set(sys.modules), sorted({'pysr', 'juliacall'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_run_refuses_resume_and_missing_julia():
    context = make_context()
    context.resume = True
    with pytest.raises((ConfigError, EngineUnavailableError)):
        PySREngine().run(context)


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
    for entry in operator_arguments()["binary_operators"] + operator_arguments()["unary_operators"]:
        assert _syntax_problems(entry.encode()) == [], entry


def test_julia_objective_matches_the_python_side():
    source = (JULIA_DIR / OBJECTIVE_FILE).read_text(encoding="utf-8")
    assert f"module {JULIA_MODULE}" in source
    for needle in ("function objective(tree, dataset::Dataset{T,L}, options)::L where {T,L}",
                   "PythonCall.GIL.@lock", "string_tree(", "ReentrantLock()", "L(Inf)",
                   "function install_callback(", "function remove_callback(", ".submit(", ".poll("):
        assert needle in source, needle
    assert callable(LossCallback.submit) and callable(LossCallback.poll)


# ------------------------------------------------------------------ real searches (Julia)
def _julia_skip_reason() -> str | None:
    if importlib.util.find_spec("pysr") is None:
        return "pysr is not installed"
    if find_julia() is None:
        return "Julia is not installed"
    return None


needs_julia = pytest.mark.skipif(_julia_skip_reason() is not None, reason=_julia_skip_reason() or "")


@pytest.mark.julia
@needs_julia
@pytest.mark.parametrize("options", [{"deterministic": True}, {"threads": 2, "populations": 2}])
def test_real_pysr_search_on_a_tiny_budget(options, tmp_path):
    from evomal_sr.data.tasks import Task
    from evomal_sr.evaluator import Evaluator

    task = Task.builtin("iris", seed=0)
    settings = resolve_preset("tiny", generations=2)
    evaluator = Evaluator(task, preset=settings, seed=0, repair=False)
    records = []
    context = EngineContext(task=task, evaluator=evaluator, settings=settings, seed=0,
                            guesses=[task.baseline_expression], out_dir=tmp_path, on_generation=records.append,
                            options={**options, "timeout": 300})
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
    fronts = [LossSearch(engine="pysr", preset="tiny", seed=1, engine_options={"deterministic": True})
              .fit(task).pareto_front_.to_csv_text() for _ in range(2)]
    assert fronts[0] == fronts[1]
