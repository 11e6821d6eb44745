"""The Python API of loss discovery: :class:`LossSearch`, a scikit-learn estimator.

The constructor only stores its arguments, every one an explicit keyword (the
preset's fields too, ``None`` meaning "from the preset"), so ``get_params``,
``set_params`` and :func:`sklearn.base.clone` work. :meth:`LossSearch.fit`
validates them, runs the chosen engine on the shared evaluator, and sets the
fitted attributes ending in ``_``.
"""

from __future__ import annotations

import dataclasses
import platform

from sklearn.base import BaseEstimator

from evomal_sr._version import __version__
from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.validation import check_seed
from evomal_sr.engines import check_engine_name, get_engine
from evomal_sr.engines.base import EngineContext
from evomal_sr.errors import ConfigError
from evomal_sr.evaluator import Evaluator
from evomal_sr.results.rundir import RunDir

#: The preset fields that are also constructor keywords of :class:`LossSearch`.
PRESET_FIELDS = tuple(f.name for f in dataclasses.fields(Preset))


class LossSearch(BaseEstimator):
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
    on_generation : callable, optional
        Called in the driving process after every completed generation (native
        engine) or PySR iteration, with that generation's
        :class:`~evomal_sr.engines.base.GenerationRecord` (generation number from
        0, best and median fitness, evaluations, cache hits, rejections, seconds,
        and the evaluator's running ``totals``). It is called after the
        checkpoint of that generation is written, so raising from it (for example
        ``KeyboardInterrupt``) stops the run resumably.
    population, generations, ..., meta_test_steps : optional
        Every field of :class:`~evomal_sr.core.presets.Preset`; ``None`` (the
        default) takes the preset's value.

    Attributes
    ----------
    pareto_front_ : ParetoFront
    best_loss_ : LearnedLoss
        The most accurate loss of the front.
    history_ : list of dict
        Per generation: best and median fitness, evaluations, cache hits, rejections, seconds.
    hall_of_fame_ : HallOfFame
    evaluator_ : Evaluator
    settings_ : Preset
        The resolved settings the run used.

    Examples
    --------
    >>> import evomal_sr as es
    >>> LossSearch(preset="tiny", population=7)
    LossSearch(population=7, preset='tiny')
    >>> task = es.Task.builtin("iris", seed=0)
    >>> search = es.LossSearch(preset="tiny", seed=0).fit(task)  # doctest: +SKIP
    >>> search.pareto_front_.to_csv("pareto.csv")  # doctest: +SKIP
    """

    def __init__(self, *, engine: str = "native", preset: str | Preset = "quick", seed: int = 0,
                 device: str = "cpu", guesses: list[str] | None = None, local_search: bool = True,
                 batched: bool = True, out_dir=None, resume: bool = False, engine_options: dict | None = None,
                 on_generation=None,
                 population=None, generations=None, init_min_height=None, init_max_height=None,
                 crossover_prob=None, mutation_prob=None, mutation_min_height=None, mutation_max_height=None,
                 tournament_size=None, height_limit=None, meta_iterations=None, meta_lr=None, inner_steps=None,
                 train_steps=None, batch_size=None, lr=None, rejection_steps=None, rejection_lr=None,
                 rejection_batch=None, rejection_margin=None, probe_points=None, equivalence_rtol=None,
                 equivalence_atol=None, meta_test_steps=None):
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
        given = locals()
        for name in PRESET_FIELDS:
            setattr(self, name, given[name])

    @property
    def overrides(self) -> dict:
        """The preset fields set explicitly (not ``None``)."""
        return {name: getattr(self, name) for name in PRESET_FIELDS if getattr(self, name) is not None}

    def _validated(self):
        engine = check_engine_name(self.engine)
        settings = resolve_preset(self.preset, **self.overrides)
        check_seed(self.seed)
        if self.resume and self.out_dir is None:
            raise ConfigError("resume=True needs out_dir: the folder holding the checkpoint")
        return engine, settings

    def fit(self, X, y=None) -> LossSearch:
        """Run the search; returns ``self``.

        Parameters
        ----------
        X : Task or array-like
            A :class:`~evomal_sr.data.tasks.Task`, or the features of one built
            with :meth:`~evomal_sr.data.tasks.Task.from_arrays` and its defaults.
        y : array-like, optional
            The targets, when ``X`` is an array.
        """
        task = _as_task(X, y)
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
        self.settings_ = settings
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
            "overrides": self.overrides,
            "seed": self.seed,
            "device": str(self.device),
            "local_search": self.local_search,
            "task": task.describe(),
            "versions": _versions(),
        }


def _as_task(X, y):
    from evomal_sr.data.tasks import Task

    if isinstance(X, Task):
        if y is not None:
            raise ConfigError("fit(task) takes no y: the task holds its targets")
        return X
    if y is None:
        raise ConfigError("fit(X, y) needs y with arrays, or pass a Task: fit(es.Task.builtin('digits'))")
    return Task.from_arrays(X, y)


def _versions() -> dict:
    import torch

    return {"evomal_sr": __version__, "torch": torch.__version__.split("+")[0],
            "python": platform.python_version()}
