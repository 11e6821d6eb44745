"""The Python API: ``LossSearch(...).fit(task)`` end to end on iris with the ``tiny`` preset."""

from __future__ import annotations

import math
import random

import deap.creator
import pytest

import evomal_sr as es
from evomal_sr import ConfigError, EngineUnavailableError, ExpressionError, LossSearch
from evomal_sr.core.presets import resolve_preset
from evomal_sr.losses.symbolic import LearnedLoss
from evomal_sr.results.front import FrontEntry, ParetoFront, load_front
from evomal_sr.results.hall_of_fame import HallOfFame

SMALL = {"preset": "tiny", "population": 4, "generations": 2}
BASELINE_IN_SEARCH = "(-1.0 * (y * log(fx)))"  # -(y * log(fx)) with neg spelt in the search grammar


@pytest.fixture(scope="module")
def task():
    return es.Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def fitted(task, tmp_path_factory):
    out = tmp_path_factory.mktemp("search-a")
    random.seed(2024)
    state = random.getstate()
    creator = set(vars(deap.creator))
    search = LossSearch(seed=0, out_dir=out, **SMALL).fit(task)
    search.test_global_random_untouched = random.getstate() == state
    search.test_creator_untouched = set(vars(deap.creator)) == creator
    return search


def test_fit_returns_self_with_fitted_attributes(fitted):
    assert isinstance(fitted, LossSearch)
    assert isinstance(fitted.pareto_front_, ParetoFront)
    assert len(fitted.pareto_front_) >= 1
    assert fitted.pareto_front_.task_kind == "classification"
    assert isinstance(fitted.best_loss_, LearnedLoss)
    assert isinstance(fitted.hall_of_fame_, HallOfFame)
    assert isinstance(fitted.evaluator_, es.Evaluator)


def test_best_loss_is_the_most_accurate_entry(fitted):
    best = fitted.pareto_front_.select("accuracy")
    assert str(fitted.best_loss_.expression) == best.expression
    assert fitted.best_loss_.weights.tolist() == pytest.approx(list(best.weights), abs=1e-6)
    assert fitted.best_loss_.task == "classification"
    assert fitted.best_loss_.metadata["fitness"] == best.fitness


def test_history(fitted):
    history = fitted.history_
    assert len(history) == 2
    assert [h["generation"] for h in history] == [0, 1]
    for h in history:
        assert {
            "best_fitness",
            "median_fitness",
            "evaluations",
            "exact_hits",
            "equivalent_hits",
            "rejected",
            "seconds",
        } <= set(h)
        assert h["best_fitness"] is None or 0.0 <= h["best_fitness"] <= 1.0
        assert h["median_fitness"] is None or h["median_fitness"] >= (h["best_fitness"] or 0.0)
        assert all(
            isinstance(h[k], int) and h[k] >= 0 for k in ("evaluations", "exact_hits", "equivalent_hits", "rejected")
        )
        assert h["seconds"] > 0
    assert history[-1]["totals"]["requested"] == 8  # 2 generations x 4 candidates
    total = sum(h["evaluations"] + h["exact_hits"] + h["equivalent_hits"] + h["rejected"] for h in history)
    assert (
        total
        == fitted.evaluator_.counters["trained"]
        + fitted.evaluator_.counters["exact_hits"]
        + fitted.evaluator_.counters["equivalent_hits"]
        + fitted.evaluator_.counters["rejected"]
    )


def test_hall_of_fame_is_best_per_complexity_and_front_is_its_non_dominated_set(fitted):
    entries = fitted.hall_of_fame_.entries()
    complexities = [e.complexity for e in entries]
    assert complexities == sorted(set(complexities))
    assert all(math.isfinite(e.fitness) for e in entries)
    front = fitted.pareto_front_.entries
    assert set(front) <= set(entries)
    fitness = [e.fitness for e in front]
    assert fitness == sorted(fitness, reverse=True) and len(set(fitness)) == len(fitness)


def test_baseline_guess_was_evaluated_and_in_the_hall_of_fame(fitted):
    results = fitted.evaluator_.evaluate([BASELINE_IN_SEARCH])  # a cache hit: no training
    assert results[0].status == "cached" and results[0].trained
    hof = fitted.hall_of_fame_.entries()
    # the baseline is kept unless a loss of the same complexity beat it
    assert any(e.expression == BASELINE_IN_SEARCH for e in hof) or any(
        e.complexity == results[0].complexity and e.fitness < results[0].fitness for e in hof
    )


def test_config_recorded(fitted):
    config = fitted.pareto_front_.config
    assert config["engine"] == "native" and config["preset"] == "tiny" and config["seed"] == 0
    assert config["settings"]["population"] == 4 and config["settings"]["generations"] == 2
    assert config["task"]["name"] == "iris"
    assert {"evomal_sr", "torch", "python"} <= set(config["versions"])


def test_the_population_interpreter_finds_the_same_front(fitted, task):
    """``program="tensor"`` computes every candidate's loss in one program: the same candidates and fitnesses
    as one compiled tree per candidate, the learned weights equal to float32 round-off."""
    tensor = LossSearch(seed=0, program="tensor", **SMALL).fit(task)
    assert tensor.pareto_front_.config["program"] == "tensor" and fitted.pareto_front_.config["program"] == "per-tree"
    pairs = list(zip(tensor.pareto_front_.entries, fitted.pareto_front_.entries, strict=True))
    assert all((a.expression, a.fitness, a.complexity) == (b.expression, b.fitness, b.complexity) for a, b in pairs)
    assert all(a.weights == pytest.approx(b.weights, rel=1e-4, abs=1e-5) for a, b in pairs)


def test_fit_writes_the_run_folder(fitted):
    out = fitted.out_dir
    for name in ("pareto.csv", "pareto.json", "pareto.png", "history.csv", "checkpoint.json", "hall_of_fame.json"):
        assert (out / name).stat().st_size > 0, name
    assert load_front(out).entries == fitted.pareto_front_.entries
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 2
    assert not list(out.glob(".*"))  # no temporary files


def test_no_global_side_effects(fitted):
    assert fitted.test_global_random_untouched
    assert fitted.test_creator_untouched


@pytest.mark.slow
def test_same_seed_same_pareto_csv(fitted, task, tmp_path):
    again = LossSearch(seed=0, out_dir=tmp_path, **SMALL).fit(task)
    assert (tmp_path / "pareto.csv").read_bytes() == (fitted.out_dir / "pareto.csv").read_bytes()
    assert again.hall_of_fame_.to_list() == fitted.hall_of_fame_.to_list()


def test_without_out_dir_nothing_is_written(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    search = LossSearch(seed=1, preset="tiny", population=3, generations=1, train_steps=5, meta_iterations=1).fit(task)
    assert len(search.history_) == 1
    assert list(tmp_path.iterdir()) == []


def test_explicit_guesses_seed_the_search(task):
    search = LossSearch(
        seed=0,
        preset="tiny",
        population=3,
        generations=1,
        train_steps=5,
        meta_iterations=1,
        guesses=["square((fx - y))"],
    ).fit(task)
    (result,) = search.evaluator_.evaluate(["square((fx - y))"])
    assert result.status == "cached"  # evaluated during the search, so now a cache hit


def test_bad_guess_is_an_expression_error(task):
    with pytest.raises(ExpressionError):
        LossSearch(guesses=["exec('x')"], **SMALL).fit(task)


# -- constructor and validation -------------------------------------------------------------------


def test_constructor_only_stores_parameters():
    search = LossSearch(engine="nope", preset="nope", seed=-1, device="tpu", population=0, generations=-3)
    assert search.engine == "nope" and search.preset == "nope" and search.seed == -1
    assert search.overrides == {"population": 0, "generations": -3}
    assert not hasattr(search, "pareto_front_")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"engine": "nope"}, "unknown engine"),
        ({"engine": None}, "unknown engine"),
        ({"preset": "nope"}, "unknown preset"),
        ({"population": 0}, "population"),
        ({"generations": 0}, "generations"),
        ({"population": 2.5}, "population"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"device": "tpu"}, "device"),
        ({"resume": True}, "out_dir"),
        ({"program": "compiled"}, "program must be one of per-tree, tensor"),
    ],
)
def test_bad_values_raise_config_error_at_fit(task, kwargs, match):
    options = {"preset": "tiny", **kwargs}
    search = LossSearch(**options)
    with pytest.raises(ConfigError, match=match):
        search.fit(task)


def test_pysr_engine_unavailable_here(task, tmp_path):
    from evomal_sr.engines.pysr import PySREngine

    ok, message = PySREngine.status()
    if ok:
        pytest.skip(f"PySR and Julia are installed here: {message}")
    with pytest.raises(EngineUnavailableError) as info:
        LossSearch(engine="pysr", out_dir=tmp_path, **SMALL).fit(task)
    assert str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # failed before writing anything


def test_preset_object_accepted(task):
    preset = resolve_preset("tiny", population=3, generations=1, train_steps=5, meta_iterations=1)
    search = LossSearch(preset=preset, seed=2).fit(task)
    assert search.pareto_front_.config["preset"] == "custom"
    assert search.pareto_front_.config["settings"]["population"] == 3


def test_front_entries_rebuild_losses(fitted):
    for e in fitted.pareto_front_:
        again = FrontEntry.from_dict(e.to_dict())
        assert again == e
        assert isinstance(e.loss("classification"), LearnedLoss)


# -- the scikit-learn estimator contract -------------------------------------------------------------


def test_unknown_keyword_is_a_type_error_at_construction():
    with pytest.raises(TypeError, match="colour"):
        LossSearch(colour="red")


def test_clone_get_params_set_params_and_repr():
    import sklearn.base

    search = sklearn.base.clone(LossSearch(population=7, preset="tiny"))
    assert search.get_params()["population"] == 7 and search.get_params()["generations"] is None
    assert search.set_params(generations=3).generations == 3
    assert repr(LossSearch(population=7)) == "LossSearch(population=7)"


def test_every_preset_field_is_a_constructor_keyword():
    import dataclasses
    import inspect

    from evomal_sr.core.presets import Preset

    params = inspect.signature(LossSearch).parameters
    assert all(params[f.name].default is None for f in dataclasses.fields(Preset))


def test_fit_accepts_arrays(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = (X[:, 0] > 0).astype(int)
    search = LossSearch(preset="tiny", population=3, generations=1, train_steps=5, meta_iterations=1).fit(X, y)
    assert search.pareto_front_.task_kind == "classification"
    with pytest.raises(ConfigError, match="needs y"):
        LossSearch(preset="tiny").fit(X)


def test_config_records_how_the_model_ran(fitted):
    assert fitted.pareto_front_.config["model_execution"]["execution"] in ("batched", "one-at-a-time")


def test_best_loss_is_frozen(fitted):
    assert all(not p.requires_grad for p in fitted.best_loss_.parameters())
