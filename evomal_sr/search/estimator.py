"""The Python API of loss discovery: :class:`LossSearch`.

Follows scikit-learn's estimator contract: the constructor only stores its
arguments; :meth:`LossSearch.fit` validates them, runs the chosen engine on the
shared evaluator, and sets the fitted attributes ending in ``_``.
"""

from __future__ import annotations

import platform

from evomal_sr._version import __version__
from evomal_sr.engines import check_engine_name, get_engine
from evomal_sr.engines.base import EngineContext
from evomal_sr.errors import ConfigError
from evomal_sr.evaluator import Evaluator
from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.results.rundir import RunDir


class LossSearch:
    """Discover learned losses for a task; the result is a Pareto front.

    Parameters
    ----------
    engine : {"native", "pysr"}
        ``native`` (DEAP genetic programming, runs anywhere) or ``pysr`` (needs Julia).
    preset : {"quick", "paper", "tiny"} or Preset
        Budget and algorithm settings; see :mod:`evomal_sr.core.presets`.
    seed : int
        Seed of the whole run: same seed, same front.
    device : str
        Torch device for the evaluator (``"cpu"``, ``"cuda"``).
    guesses : list of str, optional
        Losses seeding the first population; ``None`` means the task's
        standard loss (cross-entropy or squared error).
    local_search : bool
        Learn edge weights by unrolled differentiation (EvoMAL); ``False`` is GP-LFL.
    batched : bool
        Train each generation's candidates together (faster, same results).
    out_dir : str or Path, optional
        Folder for checkpoints and results (``pareto.csv``/``.json``/``.png``, ``history.csv``).
    resume : bool
        Continue from the checkpoint in ``out_dir``.
    engine_options : dict, optional
        Engine-specific options, e.g. ``{"deterministic": True}`` for PySR.
    **overrides
        Preset fields, e.g. ``population=10, generations=5``.

    Attributes
    ----------
    pareto_front_ : ParetoFront
    best_loss_ : LearnedLoss
        The most accurate loss of the front.
    history_ : list of dict
        Per generation: best and median fitness, evaluations, cache hits, rejections, seconds.
    hall_of_fame_ : HallOfFame
    evaluator_ : Evaluator

    Examples
    --------
    >>> import evomal_sr as es
    >>> task = es.Task.builtin("iris", seed=0)
    >>> search = es.LossSearch(preset="tiny", seed=0).fit(task)  # doctest: +SKIP
    >>> search.pareto_front_.to_csv("pareto.csv")  # doctest: +SKIP
    """

    def __init__(self, *, engine: str = "native", preset: str | Preset = "quick", seed: int = 0,
                 device: str = "cpu", guesses: list[str] | None = None, local_search: bool = True,
                 batched: bool = True, out_dir=None, resume: bool = False, engine_options: dict | None = None,
                 on_generation=None, **overrides):
        self.engine = engine
        self.preset = preset
        self.seed = seed
        self.device = device
        self.guesses = guesses
        self.local_search = local_search
        self.batched = batched
        self.out_dir = out_dir
        self.resume = resume
        self.engine_options = engine_options
        self.on_generation = on_generation
        self.overrides = overrides

    def _validated(self):
        engine = check_engine_name(self.engine)
        settings = resolve_preset(self.preset, **self.overrides)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.resume and self.out_dir is None:
            raise ConfigError("resume=True needs out_dir: the folder holding the checkpoint")
        return engine, settings

    def fit(self, task) -> LossSearch:
        """Run the search on ``task`` (a :class:`~evomal_sr.data.tasks.Task`); returns ``self``."""
        engine_name, settings = self._validated()
        engine_cls = get_engine(engine_name)
        engine_cls.check_available()
        evaluator = Evaluator(task, preset=settings, device=self.device, seed=self.seed, batched=self.batched,
                              local_search=self.local_search,
                              # engines hand in complete trees: the native engine repairs its own
                              # population (as EvoMAL does), and PySR could not adopt a repaired tree
                              repair=False)
        guesses = [task.baseline_expression] if self.guesses is None else list(self.guesses)
        rundir = RunDir(self.out_dir) if self.out_dir is not None else None
        if rundir is not None:
            rundir.remove_stale_temp_files()  # left by a run killed mid-write
        ctx = EngineContext(task=task, evaluator=evaluator, settings=settings, seed=self.seed, guesses=guesses,
                            out_dir=rundir.path if rundir else None, resume=self.resume,
                            on_generation=self.on_generation, options=dict(self.engine_options or {}))
        result = engine_cls().run(ctx)
        self.evaluator_ = evaluator
        self.hall_of_fame_ = result.hall_of_fame
        self.history_ = [{**vars(r), "totals": dict(r.totals)} for r in result.history]
        self.pareto_front_ = result.hall_of_fame.front(task_kind=task.kind,
                                                      config=self._config(task, engine_name, settings))
        self.best_loss_ = self.pareto_front_.best_loss("accuracy") if len(self.pareto_front_) else None
        if rundir is not None:
            rundir.write_results(self.pareto_front_, self.hall_of_fame_, result.history)
        return self

    def _config(self, task, engine_name: str, settings: Preset) -> dict:
        preset_name = self.preset if isinstance(self.preset, str) else "custom"
        return {
            "engine": engine_name,
            "preset": preset_name,
            "settings": settings.to_dict(),
            "overrides": {k: v for k, v in self.overrides.items() if v is not None},
            "seed": self.seed,
            "device": str(self.device),
            "local_search": self.local_search,
            "task": task.describe(),
            "versions": _versions(),
        }


def _versions() -> dict:
    import torch

    return {"evomal_sr": __version__, "torch": torch.__version__.split("+")[0],
            "python": platform.python_version()}
