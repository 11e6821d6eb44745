"""Tests of the evaluator: fitness of batches of candidate losses.

All evaluations use the ``tiny`` preset (or smaller overrides) on small tasks,
so the whole file runs in well under a minute on two CPU cores.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from evomal_sr import ConfigError, LossFileError
from evomal_sr.core.seeding import derive_seed
from evomal_sr.data.tasks import Task
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import initial_weights
from evomal_sr.scoring.evaluator import Evaluator, FitnessResult, Status

CE = "-(y * log(fx))"
SQ = "square(fx - y)"
FAST = dict(meta_iterations=2, train_steps=10, rejection_steps=30)


@pytest.fixture(scope="module")
def iris():
    return Task.builtin("iris", seed=0)


@pytest.fixture(scope="module")
def digits():
    return Task.builtin("digits", seed=0)


@pytest.fixture(scope="module")
def sinusoid():
    return Task.builtin("sinusoid", seed=0)


def by_expression(results):
    return {r.expression: r for r in results}


def assert_same_results(a, b, *, exact=False):
    """Same statuses, fitnesses and weights (bit-for-bit when ``exact``)."""
    assert [r.expression for r in a] == [r.expression for r in b]
    assert [r.status for r in a] == [r.status for r in b]
    for x, y in zip(a, b):
        if exact:
            assert x.fitness == y.fitness and x.weights == y.weights, x.expression
        else:
            assert x.fitness == pytest.approx(y.fitness, rel=1e-5, abs=1e-6), x.expression
            assert x.weights == pytest.approx(y.weights, rel=1e-5, abs=1e-6), x.expression


# -- the pipeline ------------------------------------------------------------------------------
def test_cross_entropy_at_initial_weights_beats_a_constant_loss_on_digits(digits):
    ev = Evaluator(digits, preset="tiny", local_search=False, train_steps=60, lr=0.2)
    ce, constant, squared = ev.evaluate([CE, "(y + fx)", SQ])
    assert ce.status == "ok" and ce.weights == (1.0,) * 4  # no local search: the symbolic loss itself
    assert ce.fitness < 0.2  # digits error rate after 60 steps; chance is 0.9
    # (y + fx) sums to 1 over the classes: a constant loss, zero gradient w.r.t. the logits
    assert constant.status == "rejected" and constant.fitness == math.inf
    assert constant.reason.startswith("rejection protocol")
    assert squared.status == "ok" and ce.fitness < squared.fitness
    assert set(ce.seconds) == {"rejection", "local_search", "training"}
    assert all(v >= 0 for v in ce.seconds.values())
    assert ce.trained and not constant.trained


def test_fx_alone_is_rejected_without_repair(iris):
    ev = Evaluator(iris, preset="tiny", repair=False, **FAST)
    fx, y, ce = ev.evaluate(["fx", "square(y)", CE])
    for result in (fx, y):
        assert result.status == "rejected" and result.fitness == math.inf
        assert result.reason == "expression lacks y or fx"
        assert result.expression == result.requested
    assert fx.weights == () and y.weights == (1.0,)
    assert ce.status == "ok"
    assert ev.counters["rejected"] == 2


def test_fx_alone_is_repaired_by_default(iris):
    ev = Evaluator(iris, preset="tiny", **FAST)
    (result,) = ev.evaluate(["fx"])
    expr = Expression.parse(result.expression)
    assert result.requested == "fx" and expr.is_complete() and expr.variables == {"y", "fx"}
    assert result.status in ("ok", "rejected", "diverged")
    assert len(result.weights) == expr.size - 1 and result.complexity == expr.complexity
    # the repair is seeded: a fresh evaluator with the same seed repairs it the same way
    again = Evaluator(iris, preset="tiny", **FAST).evaluate([Expression.parse("fx")])[0]
    assert again.expression == result.expression and again.requested == "fx"
    assert ev.evaluate(["fx"])[0].status == "cached"  # cached under the repaired expression


def test_zero_gradient_complete_loss_is_rejected(iris):
    ev = Evaluator(iris, preset="tiny", **FAST)
    results = ev.evaluate(["(y + fx)", "sign(fx - y)", "(y - fx)"])
    assert [r.status for r in results] == ["rejected", "rejected", "rejected"]
    assert all(r.reason.startswith("rejection protocol") for r in results)
    assert all(r.fitness == math.inf and not r.trained for r in results)


def test_batched_equals_unbatched(iris):
    candidates = [CE, "(y + fx)", SQ, "aq(y, fx)", "(log(fx) * y)", "-(y * sqrt(fx))", "(log(fx) * -(y))"]
    batched = Evaluator(iris, preset="tiny", meta_iterations=3, train_steps=15).evaluate(candidates)
    unbatched = Evaluator(iris, preset="tiny", meta_iterations=3, train_steps=15, batched=False).evaluate(candidates)
    assert [r.status for r in batched] == ["ok", "rejected", "ok", "ok", "rejected", "ok", "equivalent"]
    assert_same_results(batched, unbatched)
    for r in batched:  # local search moved every trained candidate's weights off their seeded start
        if r.status == "ok":
            start = initial_weights(
                len(r.weights), generator=torch.Generator().manual_seed(derive_seed(0, "edge-init", r.expression))
            )
            assert not torch.allclose(torch.tensor(r.weights), start, rtol=0, atol=1e-7), r.expression


def test_equivalent_forms_cost_one_evaluation(iris):
    ev = Evaluator(iris, preset="tiny", **FAST)
    forms = ["(y * log(fx))", "(log(fx) * y)", "-(-(y * log(fx)))"]
    first, second, third = ev.evaluate(forms)
    origin = first.expression
    assert first.status in ("ok", "rejected", "diverged") and first.reused_from is None
    for result in (second, third):
        assert result.status == "equivalent" and result.reused_from == origin
        assert result.fitness == first.fitness and result.reason == first.reason and not result.trained
    assert ev.counters["equivalent_hits"] == 2 and ev.counters["exact_hits"] == 0
    assert ev.counters["rejected"] + ev.counters["trained"] == 1  # one evaluation
    assert ev.cache_size == 3

    # a trained family: the origin is trained once, its twins share its fitness
    ce_forms = [CE, "(log(fx) * -(y))", "-(log(fx) * y)"]
    results = ev.evaluate(ce_forms)
    assert [r.status for r in results] == ["ok", "equivalent", "equivalent"]
    assert [r.reused_from for r in results] == [None, CE, CE]
    assert len({r.fitness for r in results}) == 1
    assert ev.counters["trained"] == 1 and ev.counters["equivalent_hits"] == 4


def test_duplicates_are_cached_in_one_batch_and_across_calls(iris):
    ev = Evaluator(iris, preset="tiny", **FAST)
    results = ev.evaluate([CE, SQ, CE, "(log(fx) * -(y))", CE])
    assert [r.status for r in results] == ["ok", "ok", "cached", "equivalent", "cached"]
    assert results[2].reused_from == CE and results[2].fitness == results[0].fitness
    assert results[2].weights == results[0].weights and results[2].trained and results[2].seconds == {}
    counted = {k: ev.counters[k] for k in ("requested", "exact_hits", "equivalent_hits", "rejected", "trained")}
    assert counted == {"requested": 5, "exact_hits": 2, "equivalent_hits": 1, "rejected": 0, "trained": 2}
    again = ev.evaluate(["-(y*log(fx))", SQ, "(log(fx) * -(y))"])  # any spelling of a seen expression
    assert [r.status for r in again] == ["cached", "cached", "equivalent"]
    assert again[0].requested == "-(y*log(fx))" and again[0].expression == CE
    assert again[1].fitness == results[1].fitness and again[1].weights == results[1].weights
    # a repeat of an equivalent is an exact-cache hit that still points at its twin (never trained itself)
    assert again[2].reused_from == CE and not again[2].trained and again[2].fitness == results[0].fitness
    assert ev.counters["exact_hits"] == 5 and ev.counters["equivalent_hits"] == 1
    assert ev.counters["trained"] == 2 and ev.cache_size == 3


def test_same_seed_gives_identical_results(iris):
    candidates = [CE, SQ, "aq(y, fx)", "(y + fx)", "-(y * sqrt(fx))"]
    a = Evaluator(iris, preset="tiny", seed=3, **FAST).evaluate(candidates)
    b = Evaluator(iris, preset="tiny", seed=3, **FAST).evaluate(candidates)
    assert_same_results(a, b, exact=True)
    c = Evaluator(iris, preset="tiny", seed=4, **FAST).evaluate(candidates)
    assert [r.weights for r in c if r.status == "ok"] != [r.weights for r in a if r.status == "ok"]


def test_diverging_candidate_is_masked_out_without_changing_the_others(sinusoid):
    settings = dict(preset="tiny", meta_iterations=2, train_steps=20)
    blowup = "(1000000.0 * square(fx - y))"  # passes rejection (Adam is scale-free), explodes under SGD
    candidates = [SQ, blowup, "abs(fx - y)"]
    ev = Evaluator(sinusoid, **settings)
    together = ev.evaluate(candidates)
    assert [r.status for r in together] == ["ok", "diverged", "ok"]
    assert ev.counters["diverged"] == 1 and ev.counters["trained"] == 3
    assert not together[1].fitness < together[0].fitness  # a diverged loss never wins (inf or huge)
    for result in (together[0], together[2]):
        (alone,) = Evaluator(sinusoid, **settings).evaluate([result.expression])
        assert alone.status == "ok"
        assert result.fitness == pytest.approx(alone.fitness, rel=1e-5)
        assert result.weights == pytest.approx(alone.weights, rel=1e-5, abs=1e-6)


def test_regression_with_squared_error(sinusoid):
    ev = Evaluator(sinusoid, preset="tiny", meta_iterations=2, train_steps=150, lr=0.05)
    sq, negated = ev.evaluate([SQ, "(-1.0 * square(fx - y))"])
    assert sq.status == "ok" and math.isfinite(sq.fitness)
    assert sq.fitness < 0.5  # MSE of standardised targets: the trivial predictor scores about 1
    assert negated.status == "rejected"
    learned = sq.to_loss("regression")
    assert learned.task == "regression" and learned.weights.detach().tolist() == pytest.approx(list(sq.weights))


# -- persistence ---------------------------------------------------------------------------
def test_state_dict_round_trip_restores_the_caches(iris):
    candidates = [CE, "(y + fx)", SQ, "(log(fx) * -(y))"]
    ev = Evaluator(iris, preset="tiny", **FAST)
    first = ev.evaluate(candidates)
    state = json.loads(json.dumps(ev.state_dict()))  # JSON-ready
    restored = Evaluator(iris, preset="tiny", **FAST)
    restored.load_state_dict(state)
    assert restored.counters == ev.counters and restored.cache_size == ev.cache_size == 4
    again = restored.evaluate(candidates)
    assert [r.status for r in again] == ["cached", "cached", "cached", "equivalent"]
    assert again[3].reused_from == CE
    for old, new in zip(first, again):
        assert (new.fitness, new.weights) == (old.fitness, old.weights)
    assert restored._index.keys() == ev._index.keys()  # rebuilt in the order first matches are searched
    (twin,) = restored.evaluate(["-(log(fx) * y)"])  # the equivalence index was rebuilt
    assert twin.status == "equivalent" and twin.reused_from == CE and twin.fitness == first[0].fitness
    assert restored.counters["equivalent_hits"] == 2


def test_state_without_index_order_still_loads(iris):
    ev = Evaluator(iris, preset="tiny", repair=False, **FAST)
    ev.evaluate(["fx", CE, "(y + fx)", "(log(fx) * -(y))"])
    state = ev.state_dict()
    state.pop("equivalence_order", None)  # a checkpoint written before the order was saved
    restored = Evaluator(iris, preset="tiny", repair=False, **FAST)
    restored.load_state_dict(state)
    assert "fx" not in restored._index.keys() and sorted(restored._index.keys()) == sorted(ev._index.keys())
    assert [r.status for r in restored.evaluate(["-(log(fx) * y)", "fx"])] == ["equivalent", "cached"]


def test_state_dict_round_trip_keeps_incomplete_expressions_out_of_the_index(iris):
    # "fx" is rejected before probing; a complete loss with fx's gradient must not become its twin
    ev = Evaluator(iris, preset="tiny", repair=False, **FAST)
    ev.evaluate(["fx"])
    fresh = Evaluator(iris, preset="tiny", repair=False, **FAST)
    fresh.evaluate(["fx"])
    restored = Evaluator(iris, preset="tiny", repair=False, **FAST)
    restored.load_state_dict(ev.state_dict())
    (a,) = fresh.evaluate(["(fx + (y - y))"])
    (b,) = restored.evaluate(["(fx + (y - y))"])
    assert a.status == b.status == "rejected" and a.reason == b.reason
    assert b.reason.startswith("rejection protocol") and b.reused_from is None


def test_fitness_result_round_trip():
    ok = FitnessResult(CE, 0.125, "ok", (1.0, 0.5, 2.0, 1.0), 5, requested="-(y*log(fx))", seconds={"training": 0.25})
    rejected = FitnessResult("(y + fx)", math.inf, "rejected", (1.0, 1.0), 3, reason="rejection protocol")
    twin = FitnessResult("(log(fx) * -(y))", 0.125, "equivalent", (1.0,) * 4, 6, reused_from=CE)
    for result in (ok, rejected, twin):
        data = json.loads(json.dumps(result.to_dict()))
        assert FitnessResult.from_dict(data) == result
    assert rejected.to_dict()["fitness"] is None
    assert ok.to_loss("classification").weights.detach().tolist() == [1.0, 0.5, 2.0, 1.0]


@pytest.mark.parametrize(
    "change", [{"status": "great"}, {"expression": "y +"}, {"weights": None}, {"fitness": "x"}, {"surprise": 1}]
)
def test_malformed_fitness_record_raises_loss_file_error(change):
    data = FitnessResult(CE, 0.125, "ok", (1.0,) * 4, 5).to_dict()
    data.update(change)
    with pytest.raises(LossFileError):
        FitnessResult.from_dict(data)
    with pytest.raises(LossFileError):
        FitnessResult.from_dict({k: v for k, v in data.items() if k != "status"})


def test_statuses_are_the_documented_ones():
    assert [s.value for s in Status] == ["ok", "rejected", "diverged", "cached", "equivalent"]


# -- configuration -------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_device_without_cuda_is_a_config_error(iris):
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Evaluator(iris, device=device)


@pytest.mark.parametrize("device", ["gpu", "nonsense:3", 7.5])
def test_unknown_device_is_a_config_error(iris, device):
    with pytest.raises(ConfigError, match="device"):
        Evaluator(iris, device=device)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preset": "huge"},
        {"preset": None},
        {"train_steps": -1},
        {"train_steps": 2.5},
        {"lr": float("nan")},
        {"lr": "fast"},
        {"rejection_margin": 2.0},
        {"no_such_setting": 1},
        {"meta_iterations": -1},
    ],
)
def test_bad_preset_or_override_is_a_config_error(iris, kwargs):
    with pytest.raises(ConfigError):
        Evaluator(iris, **kwargs)


def test_overrides_reach_the_settings(iris):
    ev = Evaluator(iris, preset="tiny", train_steps=7, lr=0.5, meta_iterations=0)
    assert (ev.settings.train_steps, ev.settings.lr, ev.settings.meta_iterations) == (7, 0.5, 0)
    (result,) = ev.evaluate([CE])
    assert result.status == "ok" and result.weights == (1.0,) * 4  # no meta-iterations: weights stay put


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch.cuda.is_available() is False")
def test_cuda_matches_cpu(iris):
    candidates = [CE, "(y + fx)", SQ, "aq(y, fx)", "(log(fx) * -(y))"]
    on_gpu = Evaluator(iris, preset="tiny", device="cuda", **FAST)
    gpu = on_gpu.evaluate(candidates)
    cpu = Evaluator(iris, preset="tiny", **FAST).evaluate(candidates)
    assert [r.status for r in gpu] == [r.status for r in cpu]
    for g, c in zip(gpu, cpu):
        assert g.fitness == pytest.approx(c.fitness, abs=0.05)  # different kernels: error rates may differ by a row
        assert g.weights == pytest.approx(c.weights, rel=1e-3, abs=1e-4)
    assert on_gpu._stacked.initial_params()["0.weight"].device.type == "cuda"
    with pytest.raises(ConfigError, match="GPU"):
        Evaluator(iris, device=f"cuda:{torch.cuda.device_count()}")
