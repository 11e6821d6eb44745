"""The pure scorer and the Evaluator driving it: the executor is an argument of the call."""

from __future__ import annotations

import math

import pytest
import torch

import evomal_sr as es
from evomal_sr.core.presets import resolve_preset
from evomal_sr.errors import ConfigError
from evomal_sr.losses.base import same_targets
from evomal_sr.losses.program import LossProgram
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.parallel import InProcessExecutor
from evomal_sr.scoring.evaluator import BoundEvaluator
from evomal_sr.scoring.scorer import Scorer
from evomal_sr.training.loop import CandidateLosses

CE, SQ = "-(y * log(fx))", "square((fx - y))"
CANDIDATES = [CE, SQ, "(log(fx) * y)", "((y - fx) * tanh(fx))", "(aq(fx, y) - (y * log(fx)))"]


@pytest.fixture(scope="module")
def iris():
    return es.Task.builtin("iris", seed=0)


class RecordingExecutor(InProcessExecutor):
    """The in-process executor, remembering what it was handed."""

    def __init__(self):
        self.calls = []

    def score_chunks(self, scorer, chunks):
        self.calls.append((scorer, [list(c) for c in chunks]))
        return super().score_chunks(scorer, chunks)


def key(results):
    return [(r.expression, str(r.status), r.fitness, r.weights) for r in results]


def test_the_scorer_keeps_no_cache_and_matches_the_evaluator(iris):
    scorer = Scorer(iris, resolve_preset("tiny"))
    first, again = scorer.score_unique(CANDIDATES), scorer.score_unique(CANDIDATES)
    assert key(first) == key(again)  # nothing cached: the same work, the same answer
    assert not hasattr(scorer, "counters") and not hasattr(scorer, "_results")
    assert key(es.Evaluator(iris, preset="tiny").score_unique(CANDIDATES)) == key(first)


def test_the_executor_is_an_argument_of_the_call(iris):
    plain = es.Evaluator(iris, preset="tiny").evaluate(CANDIDATES)
    ev = es.Evaluator(iris, preset="tiny", chunk_size=2)
    executor = RecordingExecutor()
    results = ev.evaluate(CANDIDATES, executor=executor)
    assert key(results) == key(plain)
    assert ev.executor is None  # nothing was set on the evaluator
    ((scorer, chunks),) = executor.calls
    assert scorer is ev.scorer and [len(c) for c in chunks] == [2, 2, 1]
    ev.evaluate(["(fx - y)"])  # later calls run in this process again
    assert len(executor.calls) == 1


def test_the_constructor_executor_is_only_a_default(iris):
    default, other = RecordingExecutor(), RecordingExecutor()
    ev = es.Evaluator(iris, preset="tiny", executor=default)
    ev.evaluate([CE])
    ev.evaluate([SQ], executor=other)
    assert len(default.calls) == 1 and len(other.calls) == 1 and ev.executor is default


def test_a_bound_evaluator_shares_caches_and_counters(iris):
    ev = es.Evaluator(iris, preset="tiny")
    executor = RecordingExecutor()
    bound = ev.on(executor)
    assert isinstance(bound, BoundEvaluator)
    (first,) = bound.evaluate([CE])
    (again,) = ev.evaluate([CE])
    assert str(again.status) == "cached" and again.fitness == first.fitness
    assert bound.counters is ev.counters and bound.cache_size == 1 and bound.settings is ev.settings
    assert bound.state_dict() == ev.state_dict() and len(executor.calls) == 1
    empty = BoundEvaluator.__new__(BoundEvaluator)  # as unpickling makes it: no recursion in __getattr__
    with pytest.raises(AttributeError):
        getattr(empty, "counters")  # noqa: B009


def test_an_in_process_search_calls_evaluate_with_the_plain_signature(iris, monkeypatch):
    # code that times a search wraps `Evaluator.evaluate(self, expressions)` (the side-by-side harness does)
    calls = []
    original = es.Evaluator.evaluate

    def timed(self, expressions):
        expressions = list(expressions)
        calls.append(len(expressions))
        return original(self, expressions)

    monkeypatch.setattr(es.Evaluator, "evaluate", timed)
    es.LossSearch(preset="tiny", seed=0, population=4, generations=1, guesses=[], final_selection="none").fit(iris)
    assert calls and sum(calls) >= 4


def test_program_setting_is_checked(iris):
    with pytest.raises(ConfigError, match="program must be one of per-tree, tensor"):
        es.Evaluator(iris, preset="tiny", program="fused")
    assert es.Evaluator(iris, preset="tiny").program == "per-tree"  # the interpreter is opt-in


def test_dask_workers_get_the_program(iris):
    pytest.importorskip("distributed")
    from evomal_sr.parallel.dask_executor import ScorerSpec

    ev = es.Evaluator(iris, preset="tiny", program="tensor")
    spec = ScorerSpec.from_evaluator(ev.scorer)
    assert spec.program == "tensor" and spec.build().program == "tensor"


@pytest.mark.parametrize("overrides", [{}, {"fitness_lr_grid": 2, "fitness_eval_every": 5}])
def test_the_tensor_program_gives_the_per_tree_results(iris, overrides):
    reference = es.Evaluator(iris, preset="tiny", **overrides).evaluate(CANDIDATES)
    program = es.Evaluator(iris, preset="tiny", program="tensor", **overrides).evaluate(CANDIDATES)
    assert [r.status for r in program] == [r.status for r in reference]
    for a, b in zip(program, reference):
        assert a.fitness == b.fitness or (math.isinf(a.fitness) and math.isinf(b.fitness))
        assert a.weights == pytest.approx(b.weights, rel=1e-5, abs=1e-6)


def test_candidate_losses_take_a_program():
    losses = [CompiledLoss(es.Expression.parse(t)) for t in (CE, SQ, "(y * fx)")]
    weights = 1 + 0.01 * torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    outputs = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    for targets in (same_targets(torch.tensor([0, 1, 2, 3, 0]), 3), torch.randint(4, (3, 5))):
        a = CandidateLosses(losses, weights, "classification").per_copy(outputs, targets)
        b = CandidateLosses(LossProgram(losses), weights, "classification").per_copy(outputs, targets)
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
        (ga,), (gb,) = torch.autograd.grad(a.sum(), [outputs]), torch.autograd.grad(b.sum(), [outputs])
        torch.testing.assert_close(gb, ga, rtol=1e-12, atol=1e-12)
