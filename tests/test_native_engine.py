"""The native GP engine: grammar conversions, scoped randomness, variation limits, guesses.

Most tests drive the engine with a stand-in evaluator (fitness from a hash of the
expression), so they check the genetic programming itself in milliseconds.
"""

from __future__ import annotations

import json
import random
import zlib

import deap.creator
import pytest
from deap import gp
from hypothesis import given, settings
from strategies import searchable_expressions

from evomal_sr import CheckpointError
from evomal_sr.core.presets import resolve_preset
from evomal_sr.engines import ENGINES, get_engine
from evomal_sr.engines.base import EngineContext
from evomal_sr.engines.checkpoint import SearchState
from evomal_sr.engines.native import LossGrammar, NativeEngine, scoped_random
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import Node
from evomal_sr.grammar.operators import searchable_operators
from evomal_sr.results.hall_of_fame import HallOfFame
from evomal_sr.scoring.evaluator import FitnessResult


class FakeEvaluator:
    """Deterministic fitness from the expression text; records every batch it is given."""

    device = "cpu"
    local_search = True
    program = "per-tree"

    def __init__(self):
        self.counters = dict.fromkeys(
            ("requested", "exact_hits", "equivalent_hits", "rejected", "trained", "diverged"), 0
        )
        self.batches: list[list[str]] = []

    def evaluate(self, expressions):
        batch = [str(Expression.parse(e)) for e in expressions]
        self.batches.append(batch)
        self.counters["requested"] += len(batch)
        results = []
        for text in batch:
            expr = Expression.parse(text)
            code = zlib.crc32(text.encode())
            if code % 5 == 0:
                self.counters["rejected"] += 1
                results.append(FitnessResult(text, float("inf"), "rejected", (1.0,) * (expr.size - 1), expr.complexity))
                continue
            self.counters["trained"] += 1
            weights = tuple(1.0 + (code % 7) / 100 for _ in range(expr.size - 1))
            results.append(FitnessResult(text, (code % 1000) / 1000, "ok", weights, expr.complexity))
        return results

    def state_dict(self):
        return {"counters": dict(self.counters)}

    def load_state_dict(self, state):
        self.counters.update(state["counters"])


class FakeTask:
    kind = "classification"

    def describe(self):
        return {"name": "fake"}


def run_engine(*, seed=0, guesses=("-(y * log(fx))",), out_dir=None, resume=False, on_generation=None, **overrides):
    options = {"population": 12, "generations": 6, **overrides}
    evaluator = FakeEvaluator()
    ctx = EngineContext(
        task=FakeTask(),
        evaluator=evaluator,
        settings=resolve_preset("tiny", **options),
        seed=seed,
        guesses=list(guesses),
        out_dir=out_dir,
        resume=resume,
        on_generation=on_generation,
    )
    return NativeEngine().run(ctx), evaluator


# -- grammar ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(searchable_expressions(max_depth=6))
def test_grammar_round_trip(expr):
    grammar = LossGrammar("robust")  # the set holding every searchable operator
    tree = grammar.to_deap(expr.root)
    assert isinstance(tree, gp.PrimitiveTree)
    assert len(tree) == expr.size
    assert tree.height == expr.depth - 1  # DEAP counts edges, Expression counts nodes
    assert grammar.to_expression(tree) == expr
    assert grammar.to_expression(gp.PrimitiveTree(list(tree))) == expr


def test_grammar_has_every_searchable_operator_and_terminal():
    grammar = LossGrammar()
    names = {grammar._op_by_deap[p.name] for p in grammar.pset.primitives[grammar.pset.ret]}
    assert names == {op.name for op in searchable_operators()}
    assert "neg" not in names
    terminals = {t.value for t in grammar.pset.terminals[grammar.pset.ret]}
    assert terminals == {"y", "fx", 1.0, -1.0}


@pytest.mark.parametrize(
    ("guess", "converted"),
    [
        ("-(y * log(fx))", "(-1.0 * (y * log(fx)))"),
        ("-(fx)", "(-1.0 * fx)"),
        ("aq(-(y), -(square(fx)))", "aq((-1.0 * y), (-1.0 * square(fx)))"),
        ("(y * -2.0)", "(y * -2.0)"),  # a negative constant is a constant, not neg
        ("(y + 0.25)", "(y + 0.25)"),  # constants outside the terminal set survive
    ],
)
def test_neg_guesses_become_times_minus_one(guess, converted):
    grammar = LossGrammar()
    back = grammar.to_expression(grammar.to_deap(Expression.parse(guess).root))
    assert str(back) == converted
    assert "neg" not in {n.value for n in back.nodes()}


# -- randomness ------------------------------------------------------------------------------


def test_scoped_random_is_deterministic_and_restores_global_state():
    random.seed(1234)
    before = random.getstate()
    draws = []
    for _ in range(2):
        rng = random.Random(7)
        with scoped_random(rng):
            first = [random.random() for _ in range(3)]
        with scoped_random(rng):  # continues rng's stream
            second = [random.random() for _ in range(3)]
        draws.append((first, second))
        assert random.getstate() == before
    assert draws[0] == draws[1]
    assert draws[0][0] != draws[0][1]
    reference = random.Random(7)
    assert draws[0][0] + draws[0][1] == [reference.random() for _ in range(6)]


def test_scoped_random_restores_on_error():
    random.seed(5)
    before = random.getstate()
    with pytest.raises(RuntimeError):
        with scoped_random(random.Random(0)):
            random.random()
            raise RuntimeError("boom")
    assert random.getstate() == before


def test_run_leaves_global_random_and_deap_creator_untouched():
    random.seed(99)
    state = random.getstate()
    creator_before = set(vars(deap.creator))
    run_engine()
    assert random.getstate() == state
    assert set(vars(deap.creator)) == creator_before
    assert get_engine("native") is NativeEngine and "native" in ENGINES


def test_same_seed_same_run_different_seed_different_run():
    (a, ev_a), (b, ev_b), (_, ev_c) = run_engine(seed=3), run_engine(seed=3), run_engine(seed=4)
    assert ev_a.batches == ev_b.batches
    assert a.hall_of_fame.to_list() == b.hall_of_fame.to_list()
    assert [r.best_fitness for r in a.history] == [r.best_fitness for r in b.history]
    assert ev_a.batches != ev_c.batches


def test_unrelated_global_random_use_does_not_change_the_run():
    _, first = run_engine(seed=1)
    random.seed(0)
    _, second = run_engine(seed=1, on_generation=lambda record: random.random())
    assert first.batches == second.batches


# -- variation ---------------------------------------------------------------------------------


def test_each_generation_is_one_batch_of_population_size():
    result, ev = run_engine(population=10, generations=5)
    assert len(ev.batches) == 5 and all(len(b) == 10 for b in ev.batches)
    assert [r.generation for r in result.history] == list(range(5))
    assert all(Expression.parse(text).is_complete() for batch in ev.batches for text in batch)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_offspring_respect_height_limit(seed):
    limit = 3
    _, ev = run_engine(
        seed=seed, population=30, generations=12, height_limit=limit, init_max_height=2, mutation_max_height=2
    )
    grammar = LossGrammar()
    heights = [[grammar.to_deap(Expression.parse(t).root).height for t in batch] for batch in ev.batches]
    assert max(max(h) for h in heights[1:]) <= limit, heights
    assert len({t for batch in ev.batches[1:] for t in batch}) > 10  # variation happened at all


def test_variation_does_change_trees():
    _, ev = run_engine(population=20, generations=4, crossover_prob=0.0, mutation_prob=1.0)
    assert set(ev.batches[1]) - set(ev.batches[0])


def test_reproduction_only_copies_selected_trees():
    _, ev = run_engine(population=16, generations=4, crossover_prob=0.0, mutation_prob=0.0)
    for parents, children in zip(ev.batches, ev.batches[1:]):
        assert set(children) <= set(parents)


def test_guesses_appear_in_generation_zero():
    guesses = ["-(y * log(fx))", "square((fx - y))", "aq(y, fx)"]
    _, ev = run_engine(guesses=guesses, population=8, generations=1)
    assert ev.batches[0][:3] == ["(-1.0 * (y * log(fx)))", "square((fx - y))", "aq(y, fx)"]
    assert len(ev.batches[0]) == 8


def _names(text):
    return {node.value for node in Expression.parse(text).nodes()}  # operators, variables and constants


@pytest.mark.parametrize("seed", [0, 1])
def test_initial_fill_variants_are_crossovers_of_the_guesses(seed):
    guesses = ["-(y * log(fx))", "square((fx - y))", "abs((fx - y))"]
    options = dict(guesses=guesses, population=16, generations=1, crossover_prob=1.0, mutation_prob=0.0)
    _, random_fill = run_engine(seed=seed, **options)
    _, ev = run_engine(seed=seed, initial_fill="variants", **options)
    allowed = set().union(*(_names(text) for text in ev.batches[0][:3]))
    filled = ev.batches[0][3:]
    # a variant that lost y or fx is repaired with a random subtree, so most (not all) hold only the guesses' parts
    assert len(filled) == 13 and sum(_names(text) <= allowed for text in filled) >= 7
    assert sum(_names(text) <= allowed for text in random_fill.batches[0][3:]) <= 2  # the default fills at random
    assert len(set(filled) - set(ev.batches[0][:3])) >= 3  # crossover makes new trees, not only copies


def test_initial_fill_variants_mutate_within_the_height_limit_and_repeat_with_the_seed():
    options = dict(guesses=["-(y * log(fx))"], population=20, generations=2, initial_fill="variants")
    options.update(crossover_prob=0.0, mutation_prob=1.0, height_limit=4, mutation_max_height=2)
    (_, first), (_, again) = run_engine(**options), run_engine(**options)
    assert first.batches == again.batches
    grammar = LossGrammar()
    assert max(grammar.to_deap(Expression.parse(t).root).height for t in first.batches[0]) <= 4
    assert len(set(first.batches[0])) > 5  # mutations of the one guess, not copies of it


def test_initial_fill_variants_stay_within_the_height_limit_after_repair():
    # variants of an incomplete guess (no y) are repaired, which can add a level: checked after repair
    options = dict(guesses=["log(fx)"], population=24, generations=1, initial_fill="variants")
    options.update(crossover_prob=0.0, mutation_prob=1.0, height_limit=3, mutation_max_height=2, init_max_height=3)
    (_, run), grammar = run_engine(**options), LossGrammar()
    heights = [grammar.to_deap(Expression.parse(t).root).height for t in run.batches[0]]
    assert max(heights) <= 3
    assert all("y" in Expression.parse(t).variables for t in run.batches[0])


def test_initial_fill_is_a_checked_setting():
    with pytest.raises(ConfigError, match="initial_fill must be one of random, variants"):
        resolve_preset("standard", initial_fill="zoo")


def test_more_guesses_than_population_and_incomplete_guesses():
    _, ev = run_engine(guesses=["log(fx)", "(y * fx)", "(y - fx)", "(y + fx)"], population=3, generations=1)
    assert len(ev.batches[0]) == 3
    first = Expression.parse(ev.batches[0][0])
    assert first.is_complete() and "log" in str(first)  # repaired, not dropped
    assert ev.batches[0][1:] == ["(y * fx)", "(y - fx)"]


def test_hall_of_fame_and_history():
    result, ev = run_engine(population=12, generations=4)
    entries = result.hall_of_fame.entries()
    assert entries and len({e.complexity for e in entries}) == len(entries)
    seen = {}
    for batch in ev.batches:
        for r in FakeEvaluator().evaluate(batch):
            if r.trained and (r.complexity not in seen or r.fitness < seen[r.complexity]):
                seen[r.complexity] = r.fitness
    assert {e.complexity: e.fitness for e in entries} == seen
    best = [r.best_fitness for r in result.history]
    assert all(h.evaluations >= 0 and h.rejected >= 0 and h.seconds >= 0 for h in result.history)
    assert result.history[-1].totals["requested"] == 48
    assert len(best) == 4


# -- checkpoints (with the stand-in evaluator) -----------------------------------------------------


def test_checkpoint_each_generation_and_resume_matches(tmp_path):
    seen = []

    def watch(record):
        data = json.loads((tmp_path / "full" / "checkpoint.json").read_text())
        seen.append(data["state"]["generation"])

    full, _ = run_engine(out_dir=tmp_path / "full", on_generation=watch)
    assert seen == [1, 2, 3, 4, 5, 6]

    class Stop(Exception):
        pass

    def stop_after_three(record):
        if record.generation == 2:
            raise Stop

    with pytest.raises(Stop):
        run_engine(out_dir=tmp_path / "cut", on_generation=stop_after_three)
    resumed, ev = run_engine(out_dir=tmp_path / "cut", resume=True)
    assert len(ev.batches) == 3  # generations 3, 4, 5 only
    assert resumed.hall_of_fame.to_list() == full.hall_of_fame.to_list()
    assert [r.best_fitness for r in resumed.history] == [r.best_fitness for r in full.history]
    full_state = json.loads((tmp_path / "full" / "checkpoint.json").read_text())["state"]
    cut_state = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["state"]
    assert cut_state["population"] == full_state["population"]
    assert cut_state["rng_state"] == full_state["rng_state"]


def test_search_state_round_trip():
    state = SearchState(
        generation=2,
        population=["(y * fx)"],
        fitness=[float("inf")],
        hall_of_fame=HallOfFame(),
        rng_state=random.Random(3).getstate(),
    )
    back = SearchState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert back.fitness == [float("inf")] and back.rng_state == state.rng_state


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda s: s.update(rng_state=[3, [1, 2, 3], None]),
        lambda s: s.update(generation=99),
        lambda s: s.update(generation=0),
        lambda s: s.update(population=s["population"][:-1]),
        lambda s: s.update(population=["__import__('os')"] * len(s["population"])),
        lambda s: s.update(hall_of_fame=[{"expression": "(y * fx)"}]),
        lambda s: s.update(history=[]),
        lambda s: s.pop("fitness"),
    ],
)
def test_corrupt_state_is_refused(tmp_path, corrupt):
    run_engine(out_dir=tmp_path, generations=2)
    path = tmp_path / "checkpoint.json"
    data = json.loads(path.read_text())
    corrupt(data["state"])
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError):
        run_engine(out_dir=tmp_path, generations=2, resume=True)


def test_node_conversion_of_unknown_constant_keeps_value():
    grammar = LossGrammar()
    tree = grammar.to_deap(Node.apply("*", (Node.constant(0.125), Node.variable("y"))))
    assert str(grammar.to_expression(tree)) == "(0.125 * y)"
