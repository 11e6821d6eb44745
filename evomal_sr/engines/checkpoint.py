"""Checkpoints of a running search: written atomically after every generation.

A checkpoint holds everything needed to continue exactly where the run stopped:
population and fitnesses, hall of fame, history, the engine's random state and
the evaluator's caches. It also records the run's signature (task, settings,
seed, engine, device); resuming with a different signature, or from a corrupt
file, raises :class:`~evomal_sr.errors.CheckpointError` instead of restarting.

Every field of a checkpoint is checked for its type and range by one schema
(:func:`check_checkpoint`) before anything is restored, so a damaged or hostile
file is one ``CheckpointError`` line, never a traceback half-way into a run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evomal_sr.core.fileio import (
    atomic_write_json,
    check_header,
    float_from_json,
    float_to_json,
    is_number,
    read_json,
    short_repr,
)
from evomal_sr.core.presets import Preset
from evomal_sr.engines.base import EngineContext, GenerationRecord
from evomal_sr.errors import CheckpointError, EvomalError
from evomal_sr.grammar.expression import Expression
from evomal_sr.results.hall_of_fame import HallOfFame
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
        """Rebuild the state from :meth:`to_dict` output (check it with :func:`check_checkpoint` first)."""
        version, internal, gauss = data["rng_state"]
        return cls(
            generation=int(data["generation"]),
            population=[str(p) for p in data["population"]],
            fitness=[float_from_json(f) for f in data["fitness"]],
            hall_of_fame=HallOfFame.from_list(data["hall_of_fame"]),
            history=[GenerationRecord.from_dict(r) for r in data["history"]],
            rng_state=(int(version), tuple(int(i) for i in internal), gauss),
        )


# -- the schema --------------------------------------------------------------------------
Check = Callable[[object, str], None]


def _fail(where: str, expected: str, value) -> None:
    raise CheckpointError(f"{where} must be {expected}, got {short_repr(value)}")


def _int(low: int = 0, high: int = 2**63 - 1) -> Check:
    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _fail(where, f"an integer from {low} to {high}", value)

    return check


def _number(*, nullable: bool = False, low: float = -math.inf) -> Check:
    def check(value, where):
        if value is None and nullable:
            return
        try:
            ok = is_number(value) and math.isfinite(value) and value >= low
        except OverflowError:  # an integer too large for a float
            ok = False
        if not ok:
            _fail(where, f"a finite number >= {low}" + (" or null" if nullable else ""), value)

    return check


def _of_type(kind: type, name: str, *, nullable: bool = False) -> Check:
    def check(value, where):
        if not (isinstance(value, kind) or (nullable and value is None)):
            _fail(where, name, value)

    return check


def _list(item: Check, *, length: int | None = None) -> Check:
    def check(value, where):
        if not isinstance(value, list) or (length is not None and len(value) != length):
            _fail(where, "a list" + (f" of {length} items" if length is not None else ""), value)
        for i, element in enumerate(value):
            item(element, f"{where}[{i}]")

    return check


def _mapping(value_check: Check, *, required: tuple[str, ...] = ()) -> Check:
    def check(value, where):
        if not isinstance(value, dict):
            _fail(where, "an object", value)
        missing = [k for k in required if k not in value]
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(map(repr, missing))}")
        for key, element in value.items():
            value_check(element, f"{where}[{key!r}]")

    return check


def _record(fields: dict[str, Check], *, optional: tuple[str, ...] = ()) -> Check:
    """An object with exactly these keys (those in ``optional`` may be absent), each checked."""

    def check(value, where):
        if not isinstance(value, dict):
            _fail(where, "an object", value)
        unknown = sorted(set(value) - set(fields))
        missing = [k for k in fields if k not in value and k not in optional]
        if unknown or missing:
            raise CheckpointError(f"{where} has unexpected fields {unknown} or lacks {missing}")
        for key, element in value.items():
            fields[key](element, f"{where}.{key}")

    return check


def _expression(value, where) -> None:
    if not isinstance(value, str):
        _fail(where, "expression text", value)
    try:
        Expression.parse(value)
    except EvomalError as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def _rng_state(value, where) -> None:
    _list(lambda v, w: None, length=3)(value, where)
    _int(0, 2**31)(value[0], f"{where}[0]")
    _list(_int(0, 2**32 - 1), length=625)(value[1], f"{where}[1]")
    _number(nullable=True)(value[2], f"{where}[2]")


def _fitness_result(value, where) -> None:
    _record(
        {
            "expression": _expression,
            "fitness": _number(nullable=True, low=0.0),
            "status": _of_type(str, "a status"),
            "weights": _list(_number()),
            "complexity": _int(1),
            "requested": _of_type(str, "text"),
            "reused_from": _of_type(str, "text or null", nullable=True),
            "reason": _of_type(str, "text"),
            "seconds": _mapping(_number(low=0.0)),
            "scale": _number(low=0.0),
        },
        optional=("scale",),
    )(value, where)
    edges = Expression.parse(value["expression"]).size - 1
    if len(value["weights"]) != edges:
        raise CheckpointError(f"{where}.weights must hold {edges} weights (one per edge), got {len(value['weights'])}")


def check_checkpoint(data: dict, *, counters: tuple[str, ...]) -> None:
    """Check every field of a checkpoint's ``state`` and ``evaluator``; raise :class:`CheckpointError`.

    ``counters`` are the evaluator's counter names, which every history record's
    ``totals`` and the saved counters must hold.

    Examples
    --------
    >>> check_checkpoint({"state": 1e400, "evaluator": {}}, counters=())
    Traceback (most recent call last):
    ...
    evomal_sr.errors.CheckpointError: state must be an object, got inf
    """
    gen_fields = {f.name: _int() for f in dataclasses.fields(GenerationRecord)}
    gen_fields.update(
        best_fitness=_number(nullable=True),
        median_fitness=_number(nullable=True),
        seconds=_number(low=0.0),
        best_expression=_of_type(str, "text"),
        totals=_mapping(_int(), required=counters),
    )
    _record(
        {
            "generation": _int(),
            "population": _list(_expression),
            "fitness": _list(_number(nullable=True)),
            "hall_of_fame": _of_type(list, "a list of front entries"),
            "history": _list(_record(gen_fields, optional=("best_expression", "totals"))),
            "rng_state": _rng_state,
        }
    )(data.get("state"), "state")
    _record(
        {
            "results": _list(_fitness_result),
            "counters": _mapping(_int(), required=counters),
            "equivalence_order": _list(_of_type(str, "text")),
        },
        optional=("results", "equivalence_order"),
    )(data.get("evaluator"), "evaluator")


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
        "program": ev.program,
    }


def _with_new_settings(signature):
    """A saved signature whose settings lack fields added since, with those fields at their base default.

    A setting is added with a base default that does what the package did before it existed
    (``fitness_seeds=1``, ``selection_metric="task"``, ``program="per-tree"``), so a checkpoint written
    before it is resumable while the setting is left there; any other value still differs.
    """
    if not isinstance(signature, dict) or not isinstance(signature.get("settings"), dict):
        return signature
    return {"program": "per-tree", **signature, "settings": {**Preset().to_dict(), **signature["settings"]}}


def _differences(saved, expected: dict) -> str:
    """What differs between a saved run signature and this run's, each differing setting by name and value.

    A default that changed between versions shows as a setting whose saved value the user can pass
    to resume (``fitness_lr_grid saved 4, now 2``).
    """
    if not isinstance(saved, dict):
        return "format"
    keys = sorted(k for k in expected if saved.get(k) != expected[k])
    before, now = saved.get("settings"), expected.get("settings")
    if "settings" in keys and isinstance(before, dict) and isinstance(now, dict):
        changed = [f"{k} saved {before.get(k)!r}, now {now[k]!r}" for k in sorted(now) if before.get(k) != now[k]]
        keys[keys.index("settings")] = f"settings ({'; '.join(changed)})"
    return ", ".join(keys) or "format"


def checkpoint_path(ctx: EngineContext) -> Path:
    return RunDir(ctx.out_dir).checkpoint


def save_checkpoint(ctx: EngineContext, state: SearchState, *, engine: str = "native") -> Path:
    """Atomically write the search state, evaluator caches, ``history.csv`` and the partial front.

    The partial front (``pareto.json`` marked ``config["partial"]``) is what
    ``front``/``export``/``plot`` show for a run that is interrupted; the
    finished run replaces it with the full front.
    """
    rundir = RunDir(ctx.out_dir)
    rundir.write_history(state.history)
    front = state.hall_of_fame.front(task_kind=ctx.task.kind, config=run_signature(ctx, engine))
    rundir.write_partial_front(front, generation=state.generation, generations=ctx.settings.generations)
    return atomic_write_json(
        checkpoint_path(ctx),
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "signature": run_signature(ctx, engine),
            "state": state.to_dict(),
            "evaluator": ctx.evaluator.state_dict(),
        },
    )


def load_checkpoint(ctx: EngineContext, *, engine: str = "native") -> SearchState | None:
    """The saved state (restoring the evaluator's caches), or ``None`` if there is no checkpoint."""
    path = checkpoint_path(ctx)
    if not path.exists():
        return None
    data = read_json(path, CheckpointError, "checkpoint")
    check_header(
        data,
        CHECKPOINT_FORMAT,
        CHECKPOINT_VERSION,
        what=f"checkpoint in {str(path)!r} (remove it or choose another --out)",
        error=CheckpointError,
    )
    expected = json.loads(json.dumps(run_signature(ctx, engine)))  # tuples become lists, as saved
    saved = _with_new_settings(data.get("signature"))
    if saved != expected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to a different run (differs in: {_differences(saved, expected)}); "
            "resume with the original options or start a new run without --resume"
        )
    try:
        check_checkpoint(data, counters=tuple(ctx.evaluator.counters))
        state = SearchState.from_dict(data["state"])
        _check_state(state, ctx.settings)
        ctx.evaluator.load_state_dict(data["evaluator"])
    except (KeyError, TypeError, ValueError, OverflowError, EvomalError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {exc}") from None
    return state


def _check_state(state: SearchState, settings) -> None:
    """Raise ``ValueError`` (or an :class:`EvomalError`) for a state this run cannot continue from."""
    if not 1 <= state.generation <= settings.generations:
        raise ValueError(f"generation {state.generation} is outside 1..{settings.generations}")
    if not len(state.population) == len(state.fitness) == settings.population:
        raise ValueError(
            f"population of {len(state.population)} with {len(state.fitness)} fitnesses; expected {settings.population}"
        )
    if len(state.history) != state.generation:
        raise ValueError(f"{len(state.history)} history records for {state.generation} generations")
    random.Random().setstate(state.rng_state)  # a malformed random state raises here, not mid-run
    for text in state.population:
        Expression.parse(text)
