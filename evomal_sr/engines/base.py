"""What every search engine receives and returns.

An engine drives the structure search and hands candidate expressions to the
shared :class:`~evomal_sr.scoring.evaluator.Evaluator`; it returns the run's hall of
fame (best trained loss per complexity) and a per-generation history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from evomal_sr.core.fileio import float_from_json, float_to_json

if TYPE_CHECKING:  # at run time these would import torch, which the PySR engine must load after Julia
    from evomal_sr.core.presets import Preset
    from evomal_sr.data.tasks import Task
    from evomal_sr.results.hall_of_fame import HallOfFame
    from evomal_sr.scoring.evaluator import Evaluator


@dataclass
class GenerationRecord:
    """Statistics of one generation (or PySR iteration) of a search."""

    generation: int
    best_fitness: float
    median_fitness: float
    evaluations: int
    exact_hits: int
    equivalent_hits: int
    rejected: int
    seconds: float
    best_expression: str = ""
    totals: dict = field(default_factory=dict)  # evaluator counters after this generation

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["totals"] = dict(self.totals)
        for key in ("best_fitness", "median_fitness"):
            data[key] = float_to_json(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GenerationRecord:
        data = dict(data)
        for key in ("best_fitness", "median_fitness"):
            data[key] = float_from_json(data[key])
        return cls(**data)


@dataclass
class EngineContext:
    """Everything an engine needs for one run.

    Attributes
    ----------
    task, evaluator, settings, seed
        The task, the shared evaluator, the resolved preset and the run's seed.
    guesses : list of str
        Known losses to seed the search with (the task's standard loss by default).
    out_dir : Path or None
        Where checkpoints go; ``None`` disables checkpointing.
    resume : bool
        Continue from the checkpoint in ``out_dir``.
    on_generation : callable or None
        Called with each :class:`GenerationRecord` as the run progresses.
    options : dict
        Engine-specific options (e.g. ``deterministic`` for PySR).
    """

    task: Task
    evaluator: Evaluator
    settings: Preset
    seed: int
    guesses: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    resume: bool = False
    on_generation: Callable[[GenerationRecord], None] | None = None
    options: dict = field(default_factory=dict)


@dataclass
class EngineResult:
    """A finished run: its hall of fame and per-generation history."""

    hall_of_fame: HallOfFame
    history: list[GenerationRecord]


@runtime_checkable
class Engine(Protocol):
    """What a search engine implements; the registry in :mod:`evomal_sr.engines` names them.

    ``check_available`` raises :class:`~evomal_sr.errors.EngineUnavailableError`
    with one actionable sentence when the engine cannot run here; ``run`` drives
    the structure search through ``context.evaluator`` and returns the result.
    """

    name: ClassVar[str]

    @classmethod
    def check_available(cls) -> None: ...

    def run(self, context: EngineContext) -> EngineResult: ...
