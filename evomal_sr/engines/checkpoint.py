"""Checkpoints of a running search: written atomically after every generation.

A checkpoint holds everything needed to continue exactly where the run stopped:
population and fitnesses, hall of fame, history, the engine's random state and
the evaluator's caches. It also records the run's signature (task, settings,
seed, engine, device); resuming with a different signature, or from a corrupt
file, raises :class:`~evomal_sr.errors.CheckpointError` instead of restarting.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from evomal_sr.core.fileio import atomic_write_json, check_header, float_from_json, float_to_json, read_json
from evomal_sr.engines.base import EngineContext, GenerationRecord
from evomal_sr.errors import CheckpointError, EvomalError
from evomal_sr.grammar.expression import Expression
from evomal_sr.results.front import HallOfFame
from evomal_sr.results.rundir import RunDir

CHECKPOINT_FORMAT = "evomal-sr/checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class SearchState:
    """The state of the native engine between generations."""

    generation: int
    population: list[str]
    fitness: list[float]
    hall_of_fame: HallOfFame
    history: list[GenerationRecord] = field(default_factory=list)
    rng_state: tuple = ()

    def to_dict(self) -> dict:
        version, internal, gauss = self.rng_state
        return {
            "generation": self.generation,
            "population": list(self.population),
            "fitness": [float_to_json(f) for f in self.fitness],
            "hall_of_fame": self.hall_of_fame.to_list(),
            "history": [r.to_dict() for r in self.history],
            "rng_state": [version, list(internal), gauss],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SearchState:
        version, internal, gauss = data["rng_state"]
        return cls(
            generation=int(data["generation"]),
            population=[str(p) for p in data["population"]],
            fitness=[float_from_json(f) for f in data["fitness"]],
            hall_of_fame=HallOfFame.from_list(data["hall_of_fame"]),
            history=[GenerationRecord.from_dict(r) for r in data["history"]],
            rng_state=(int(version), tuple(int(i) for i in internal), gauss),
        )


def run_signature(ctx: EngineContext, engine: str) -> dict:
    """What must match for a checkpoint to be resumed by this run."""
    ev = ctx.evaluator
    return {
        "engine": engine,
        "task": ctx.task.describe(),
        "settings": ctx.settings.to_dict(),
        "seed": ctx.seed,
        "guesses": list(ctx.guesses),
        "device": str(ev.device),
        "local_search": ev.local_search,
    }


def checkpoint_path(ctx: EngineContext) -> Path:
    return RunDir(ctx.out_dir).checkpoint


def save_checkpoint(ctx: EngineContext, state: SearchState, *, engine: str = "native") -> Path:
    """Atomically write the search state, evaluator caches and ``history.csv`` to ``out_dir``."""
    RunDir(ctx.out_dir).write_history(state.history)
    return atomic_write_json(checkpoint_path(ctx), {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "signature": run_signature(ctx, engine),
        "state": state.to_dict(),
        "evaluator": ctx.evaluator.state_dict(),
    })


def load_checkpoint(ctx: EngineContext, *, engine: str = "native") -> SearchState | None:
    """The saved state (restoring the evaluator's caches), or ``None`` if there is no checkpoint."""
    path = checkpoint_path(ctx)
    if not path.exists():
        return None
    data = read_json(path, CheckpointError, "checkpoint")
    check_header(data, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, what=f"checkpoint in {str(path)!r} (remove it or "
                 "choose another --out)", error=CheckpointError)
    expected = json.loads(json.dumps(run_signature(ctx, engine)))  # tuples become lists, as saved
    saved = data.get("signature")
    if saved != expected:
        keys = sorted(k for k in expected if not isinstance(saved, dict) or saved.get(k) != expected[k])
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to a different run (differs in: {', '.join(keys) or 'format'}); "
            "resume with the original options or start a new run without --resume"
        )
    try:
        state = SearchState.from_dict(data["state"])
        _check_state(state, ctx.settings)
        ctx.evaluator.load_state_dict(data["evaluator"])
    except (KeyError, TypeError, ValueError, EvomalError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {exc}") from None
    return state


def _check_state(state: SearchState, settings) -> None:
    """Raise ``ValueError`` (or an :class:`EvomalError`) for a state this run cannot continue from."""
    if not 1 <= state.generation <= settings.generations:
        raise ValueError(f"generation {state.generation} is outside 1..{settings.generations}")
    if not len(state.population) == len(state.fitness) == settings.population:
        raise ValueError(f"population of {len(state.population)} with {len(state.fitness)} fitnesses; "
                         f"expected {settings.population}")
    if len(state.history) != state.generation:
        raise ValueError(f"{len(state.history)} history records for {state.generation} generations")
    random.Random().setstate(state.rng_state)  # a malformed random state raises here, not mid-run
    for text in state.population:
        Expression.parse(text)
