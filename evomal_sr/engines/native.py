"""The native search engine: EvoMAL's genetic programming on DEAP.

The primitive set comes from the operator registry; variation and selection are
DEAP's own (``gp.genHalfAndHalf``, ``gp.cxOnePoint``, ``gp.mutUniform``,
``tools.selTournament``). DEAP draws from the global :mod:`random` module, so
every DEAP call runs inside :func:`scoped_random`, which lends it the search's
own generator and restores the global state afterwards: the search is
deterministic for a seed and leaves no trace on the caller's ``random``.
Each generation goes to the evaluator as one batch; the state is checkpointed
after every generation (see :mod:`evomal_sr.engines.checkpoint`).
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import time

from deap import base, gp, tools

from evomal_sr.core.seeding import derive_seed
from evomal_sr.engines.base import EngineContext, EngineResult, GenerationRecord
from evomal_sr.engines.checkpoint import SearchState, load_checkpoint, save_checkpoint
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import CONST, VAR, Node
from evomal_sr.grammar.operators import OPERATOR_SETS, OPERATORS, SEARCH_CONSTANTS, VARIABLES, searchable_operators
from evomal_sr.results.front import FrontEntry
from evomal_sr.results.hall_of_fame import HallOfFame


class _Fitness(base.Fitness):
    weights = (-1.0,)  # minimise validation error


class _Individual(gp.PrimitiveTree):
    """A DEAP tree with a fitness slot (a plain subclass: no global ``creator`` classes)."""

    def __init__(self, content):
        super().__init__(content)
        self.fitness = _Fitness()


@contextlib.contextmanager
def scoped_random(rng: random.Random):
    """Run DEAP's global-``random`` code on ``rng``'s state, restoring the global state after."""
    saved = random.getstate()
    random.setstate(rng.getstate())
    try:
        yield
    finally:
        rng.setstate(random.getstate())
        random.setstate(saved)


class LossGrammar:
    """The DEAP primitive set of loss trees and conversions to and from :class:`Node`.

    Examples
    --------
    >>> grammar = LossGrammar()
    >>> tree = grammar.to_deap(Expression.parse("aq(y, fx)").root)
    >>> str(grammar.to_expression(tree))
    'aq(y, fx)'
    """

    _SAFE_NAMES = {"+": "add", "-": "sub", "*": "mul"}

    def __init__(self, operator_set: str = "paper"):
        self.operator_set = operator_set
        self.pset = gp.PrimitiveSet("LOSS", len(VARIABLES))
        self.pset.renameArguments(**{f"ARG{i}": name for i, name in enumerate(VARIABLES)})
        self._op_by_deap: dict[str, str] = {}
        for op in searchable_operators(operator_set):
            deap_name = self._SAFE_NAMES.get(op.name, op.name)
            self.pset.addPrimitive(_unused, op.arity, name=deap_name)
            self._op_by_deap[deap_name] = op.name
        self._primitive = {self._op_by_deap[p.name]: p for p in self.pset.primitives[self.pset.ret]}
        self._terminal = {}
        for value in SEARCH_CONSTANTS:
            self.pset.addTerminal(value)
        for term in self.pset.terminals[self.pset.ret]:  # arguments hold their (renamed) name as value
            self._terminal[term.value if isinstance(term.value, str) else float(term.value)] = term

    def to_expression(self, tree) -> Expression:
        node, _ = self._to_node(tree, 0)
        return Expression(node)

    def _to_node(self, tree, index: int) -> tuple[Node, int]:
        item = tree[index]
        if isinstance(item, gp.Primitive):
            children, position = [], index + 1
            for _ in range(item.arity):
                child, position = self._to_node(tree, position)
                children.append(child)
            return Node.apply(self._op_by_deap[item.name], tuple(children)), position
        if isinstance(item.value, str):
            return Node.variable(item.value), index + 1
        return Node.constant(float(item.value)), index + 1

    def to_deap(self, node: Node) -> _Individual:
        """A DEAP individual for ``node``; ``neg(x)`` becomes ``(-1.0 * x)`` (neg is not searched)."""
        return _Individual(self._flatten(node))

    def _flatten(self, node: Node) -> list:
        if node.kind == VAR:
            return [self._terminal[node.value]]
        if node.kind == CONST:
            term = self._terminal.get(node.value)
            return [term if term is not None else gp.Terminal(node.value, False, self.pset.ret)]
        if node.value == "neg":
            return [self._primitive["*"], self._terminal[-1.0], *self._flatten(node.children[0])]
        if node.value not in self._primitive:
            need = next(name for name, groups in OPERATOR_SETS.items() if OPERATORS[node.value].group in groups)
            raise ConfigError(
                f"the guess uses {node.value!r}, which operator set {self.operator_set!r} lacks; "
                f"use operators={need!r} (--operators {need}) or drop it"
            )
        items = [self._primitive[node.value]]
        for child in node.children:
            items.extend(self._flatten(child))
        return items


def _unused(*args):  # DEAP wants a callable per primitive; trees are compiled by evomal-sr, not DEAP
    raise NotImplementedError


class NativeEngine:
    """EvoMAL's GP: ramped half-and-half, one-point crossover, subtree mutation, tournaments."""

    name = "native"

    @staticmethod
    def check_available() -> None:
        """The native engine needs nothing beyond the package's dependencies."""

    @staticmethod
    def status() -> tuple[bool, str]:
        return True, "native engine (DEAP) available"

    def run(self, ctx: EngineContext) -> EngineResult:
        self.ctx = ctx
        self.grammar = LossGrammar(ctx.settings.operators)
        s = ctx.settings
        state = load_checkpoint(ctx) if ctx.resume else None
        if state is None:
            state = self._initial_state()
        for generation in range(state.generation, s.generations):
            tick = time.perf_counter()
            if generation > 0:
                state.population = self._offspring(state)
            state.fitness = self._evaluate(state.population, state.hall_of_fame)
            record = self._record(generation, state, time.perf_counter() - tick)
            state.history.append(record)
            state.generation = generation + 1
            if ctx.out_dir is not None:
                save_checkpoint(ctx, state)
            if ctx.on_generation is not None:
                ctx.on_generation(record)
        return EngineResult(state.hall_of_fame, state.history)

    # -- steps -----------------------------------------------------------------------
    def _initial_state(self) -> SearchState:
        s, rng = self.ctx.settings, random.Random(derive_seed(self.ctx.seed, "native-engine"))
        guesses = [self.grammar.to_deap(Expression.parse(g).root) for g in self.ctx.guesses[: s.population]]
        population = list(guesses)
        with scoped_random(rng):
            while len(population) < s.population:
                if s.initial_fill == "variants" and guesses:
                    population.append(self._variant(guesses))
                else:
                    population.append(self._random_tree())
        population = [self._repair(t, rng) for t in population]
        return SearchState(
            generation=0,
            population=[str(self.grammar.to_expression(t)) for t in population],
            fitness=[],
            hall_of_fame=HallOfFame(),
            history=[],
            rng_state=rng.getstate(),
        )

    def _offspring(self, state: SearchState) -> list[str]:
        """Tournament selection, then crossover / mutation / reproduction per offspring."""
        s = self.ctx.settings
        rng = random.Random()
        rng.setstate(state.rng_state)
        parents = []
        for text, fitness in zip(state.population, state.fitness):
            tree = self.grammar.to_deap(Expression.parse(text).root)
            tree.fitness.values = (fitness,)
            parents.append(tree)
        varied = []
        with scoped_random(rng):
            # DEAP's variation operators work in place: vary copies, keep the selected trees intact
            chosen = list(tools.selTournament(parents, len(parents), s.tournament_size))
            for i, parent in enumerate(chosen):
                draw = random.random()
                if draw < s.crossover_prob + s.mutation_prob:
                    child = self._vary(parent, chosen[(i + 1) % len(chosen)] if draw < s.crossover_prob else None)
                else:
                    child = self._copy(parent)
                varied.append((child, parent))
        children = []
        for child, parent in varied:  # repair can add a level, so the height limit is checked after it
            child = self._repair(child, rng)
            children.append(child if child.height <= s.height_limit else self._copy(parent))
        state.rng_state = rng.getstate()
        return [str(self.grammar.to_expression(c)) for c in children]

    def _random_tree(self) -> _Individual:
        s = self.ctx.settings
        return _Individual(gp.genHalfAndHalf(self.grammar.pset, s.init_min_height, s.init_max_height))

    def _variant(self, guesses: list, tries: int = 10) -> _Individual:
        """One crossover (of two guesses) or subtree mutation (of one), drawn as a generation's offspring are.

        Reproduction is left out (a copy of a guess is a cache hit, not a new candidate); a variant
        over the height limit once repaired (repair can add a level, as in :meth:`_offspring`) is drawn
        again, and after ``tries`` a random tree is used instead. Runs inside :func:`scoped_random`,
        so the repair draws from the global ``random`` state, as DEAP's operators do.
        """
        s = self.ctx.settings
        crossover_share = s.crossover_prob / max(s.crossover_prob + s.mutation_prob, 1e-12)
        for _ in range(tries):
            tree = random.choice(guesses)
            child = self._vary(tree, random.choice(guesses) if random.random() < crossover_share else None)
            child = self._repair(child, random)  # type: ignore[arg-type]  # the module has Random's methods
            if child.height <= s.height_limit:
                return child
        return self._random_tree()

    def _vary(self, tree, mate=None) -> _Individual:
        """One-point crossover of ``tree`` with ``mate``, or subtree mutation of ``tree`` without one.

        DEAP's operators work in place, so they vary copies and the given trees stay intact.
        """
        if mate is not None:
            child, _ = gp.cxOnePoint(self._copy(tree), self._copy(mate))
        else:
            (child,) = gp.mutUniform(self._copy(tree), expr=self._subtree, pset=self.grammar.pset)
        return child

    def _subtree(self, pset, type_):
        s = self.ctx.settings
        return gp.genGrow(pset, s.mutation_min_height, s.mutation_max_height, type_)

    def _copy(self, tree) -> _Individual:
        return _Individual(list(tree))

    def _repair(self, tree, rng: random.Random) -> _Individual:
        expr = self.grammar.to_expression(tree)
        if expr.is_complete():
            return tree
        return self.grammar.to_deap(expr.repair(rng).root)

    def _evaluate(self, population: list[str], hall_of_fame: HallOfFame) -> list[float]:
        """Score one generation as a batch; the hall of fame keeps the trained results."""
        results = self.ctx.evaluator.evaluate(population)
        hall_of_fame.update(FrontEntry.from_result(r) for r in results if r.trained)
        return [r.fitness for r in results]

    def _record(self, generation: int, state: SearchState, seconds: float) -> GenerationRecord:
        counters = self.ctx.evaluator.counters
        before = state.history[-1].totals if state.history else dict.fromkeys(counters, 0)
        finite = sorted(f for f in state.fitness if math.isfinite(f))
        best_index = min(range(len(state.fitness)), key=lambda i: state.fitness[i])
        record = GenerationRecord(
            generation=generation,
            best_fitness=min(state.fitness),
            median_fitness=statistics.median(state.fitness) if state.fitness else math.inf,
            evaluations=counters["trained"] - before["trained"],
            exact_hits=counters["exact_hits"] - before["exact_hits"],
            equivalent_hits=counters["equivalent_hits"] - before["equivalent_hits"],
            rejected=counters["rejected"] - before["rejected"],
            seconds=seconds,
            best_expression=state.population[best_index] if finite else "",
            totals=dict(counters),
        )
        return record
