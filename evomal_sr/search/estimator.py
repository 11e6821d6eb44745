"""The Python API of loss discovery: :class:`LossSearch`, a scikit-learn estimator.

The constructor only stores its arguments, every one an explicit keyword (the
preset's fields too, ``None`` meaning "from the preset"), so ``get_params``,
``set_params`` and :func:`sklearn.base.clone` work. :meth:`LossSearch.fit`
validates them, runs the chosen engine on the shared evaluator, and sets the
fitted attributes ending in ``_``.

A fitted search pickles (``pickle``, ``joblib``); see the Notes of :class:`LossSearch`.
"""

from __future__ import annotations

import dataclasses
import platform

from sklearn.base import BaseEstimator

from evomal_sr._version import __version__
from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.progress import GenerationProgress, check_verbose
from evomal_sr.core.validation import check_program, check_seed
from evomal_sr.engines import check_engine_name, check_engine_settings, get_engine
from evomal_sr.engines.base import EngineContext
from evomal_sr.errors import ConfigError
from evomal_sr.parallel import executor_kind, open_executor, require_dask
from evomal_sr.results.front import SELECTION_RULES
from evomal_sr.results.rundir import RunDir
from evomal_sr.scoring.evaluator import Evaluator
from evomal_sr.search.inputs import as_task, initial_guesses
from evomal_sr.search.persistence import PicklableSearch

#: The preset fields that are also constructor keywords of :class:`LossSearch`.
PRESET_FIELDS = tuple(f.name for f in dataclasses.fields(Preset))


class LossSearch(PicklableSearch, BaseEstimator):
    """Discover learned losses for a task; the result is a Pareto front.

    Parameters
    ----------
    engine : {"native", "pysr"}
        ``native`` (DEAP genetic programming, runs anywhere) or ``pysr`` (needs Julia).
    preset : {"standard", "quick", "paper", "tiny"} or Preset
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
    cuda_graph : bool
        On CUDA, replay each batch's rejection step, local-search iteration and training step
        from CUDA graphs (the same results, fewer kernel launches; see
        :class:`~evomal_sr.scoring.evaluator.Evaluator`).
    program : {"per-tree", "tensor"}
        How each batch's losses are computed: one compiled tree per candidate (default), or
        the population interpreter (the same candidates and fitnesses in the measured searches,
        learned weights equal to float32 round-off; faster on CPU for the ``quick`` and
        ``standard`` presets, not for ``paper``; see :data:`~evomal_sr.core.validation.PROGRAMS`).
        Recorded in the run's checkpoint: a resume with another program is refused.
    out_dir : str or Path, optional
        Folder for checkpoints and results (``pareto.csv``/``.json``/``.png``, ``history.csv``).
    resume : bool
        Continue from the checkpoint in ``out_dir`` (an error if it holds none).
    force : bool
        Start over in an ``out_dir`` that already holds a run, replacing the
        run's own files (others in the folder stay). Without it (or ``resume``)
        such a folder is refused. A folder another search is writing to is
        always refused (a lock file; a killed run's lock is detected as stale).
    model_selection : {"accuracy", "best", "score"}
        Which loss of the front becomes ``best_loss_``, as in PySR: the most
        accurate, PySR's ``best`` (highest score among losses within 1.5x of the
        lowest error), or the highest score (see ``ParetoFront.scores``).
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
    verbose : int
        1 (default): a progress bar on stderr (``tqdm.auto``: a widget in a
        notebook) and a log record per generation (logger ``evomal_sr.search``,
        level INFO); 0: nothing. See :mod:`evomal_sr.core.progress`.
    executor : None, "in-process", "local", "local:N", int, str or dask.distributed.Client
        Where candidates are scored (see :mod:`evomal_sr.parallel`): in this
        process (default), on ``N`` local Dask worker processes started and
        closed by :meth:`fit`, on the cluster whose scheduler has this address,
        or through a passed client (left open). The front is the same for all.
    chunk_size : int or "balanced", optional
        Unique candidates per batch sent to a worker; ``None`` means 8 on Dask and
        the whole generation in-process; ``"balanced"`` one near-equal chunk per
        worker each generation (the fastest on a few workers).
    population, generations, ..., meta_test_steps : optional
        Every field of :class:`~evomal_sr.core.presets.Preset`; ``None`` (the
        default) takes the preset's value.

    Attributes
    ----------
    pareto_front_ : ParetoFront
    best_loss_ : LearnedLoss or KnownLoss
        With ``final_selection="fair"`` (the ``standard`` preset) the winner of the final
        selection (:mod:`evomal_sr.evaluation.selection`): a learned loss of the front, or the
        known loss of the zoo that no learned loss beat; ``selection_`` says which and why.
        Otherwise the front's loss that ``model_selection`` picks.
    best_learned_loss_ : LearnedLoss
        The front's loss that ``model_selection`` picks (``best_loss_`` without the final selection).
    selection_ : SelectionResult or None
        The final selection's short list, fold errors and verdict (``None`` when it did not run).
        The loss of the front that ``model_selection`` picks (the most accurate by default),
        frozen (``requires_grad=False``); ``best_loss_.requires_grad_(True)`` makes its
        edge weights trainable again.
    history_ : list of dict
        Per generation: best and median fitness, evaluations, cache hits, rejections, seconds.
    hall_of_fame_ : HallOfFame
    evaluator_ : Evaluator
        The run's evaluator, its caches full (scores in this process). After
        unpickling it is rebuilt on first use (see Notes).
    settings_ : Preset
        The resolved settings the run used.

    Notes
    -----
    A fitted search pickles with ``pickle`` or ``joblib``; the reloaded search
    has the same ``best_loss_``, ``pareto_front_``, ``hall_of_fame_``,
    ``history_`` and ``settings_``, exports the same files, and can ``fit``
    again. Its ``evaluator_`` is not pickled (its compiled, vmapped model cannot
    be) but rebuilt, caches and counters included, the first time it is read; so
    the pickle holds the task's data (on the CPU), and the rebuild needs the
    device the search ran on. Constructor arguments are pickled as given: an
    ``on_generation`` lambda or an open ``dask.distributed.Client`` as
    ``executor`` cannot be (``set_params(on_generation=None)`` first).

    Examples
    --------
    >>> import evomal_sr as es
    >>> LossSearch(preset="tiny", population=7)
    LossSearch(population=7, preset='tiny')
    >>> task = es.Task.builtin("iris", seed=0)
    >>> search = es.LossSearch(preset="tiny", seed=0).fit(task)  # doctest: +SKIP
    >>> search.pareto_front_.to_csv("pareto.csv")  # doctest: +SKIP
    >>> import joblib  # doctest: +SKIP
    >>> joblib.dump(search, "search.joblib")  # doctest: +SKIP
    >>> joblib.load("search.joblib").best_loss_  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        engine: str = "native",
        preset: str | Preset = "standard",
        seed: int = 0,
        device: str = "cpu",
        guesses: list[str] | None = None,
        local_search: bool = True,
        batched: bool = True,
        out_dir=None,
        resume: bool = False,
        force: bool = False,
        model_selection: str = "accuracy",
        engine_options: dict | None = None,
        on_generation=None,
        executor=None,
        chunk_size=None,
        cuda_graph: bool = False,
        program: str = "per-tree",
        population=None,
        generations=None,
        init_min_height=None,
        init_max_height=None,
        crossover_prob=None,
        mutation_prob=None,
        mutation_min_height=None,
        mutation_max_height=None,
        tournament_size=None,
        height_limit=None,
        meta_iterations=None,
        meta_lr=None,
        inner_steps=None,
        local_search_scale=None,
        train_steps=None,
        batch_size=None,
        lr=None,
        fitness_lr_grid=None,
        fitness_lr_ratio=None,
        fitness_eval_every=None,
        fitness_seeds=None,
        selection_tolerance=None,
        rejection_steps=None,
        rejection_lr=None,
        rejection_batch=None,
        rejection_margin=None,
        probe_points=None,
        equivalence_rtol=None,
        equivalence_atol=None,
        meta_test_steps=None,
        operators=None,
        loss_scaling=None,
        initial_losses=None,
        initial_fill=None,
        final_selection=None,
        selection_shortlist=None,
        selection_folds=None,
        selection_steps=None,
        selection_margin=None,
        selection_scoring=None,
        selection_finalists=None,
        selection_prior=None,
        selection_metric=None,
        selection_uncertainty=None,
        selection_lr_extend=None,
        verbose: int = 1,
    ):
        self.engine = engine
        self.preset = preset
        self.seed = seed
        self.device = device
        self.guesses = guesses
        self.local_search = local_search
        self.batched = batched
        self.out_dir = out_dir
        self.resume = resume
        self.force = force
        self.model_selection = model_selection
        self.engine_options = engine_options
        self.on_generation = on_generation
        self.executor = executor
        self.chunk_size = chunk_size
        self.cuda_graph = cuda_graph
        self.program = program
        self.verbose = verbose
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
        check_engine_settings(engine, settings)
        check_seed(self.seed)
        check_verbose(self.verbose)
        check_program(self.program)
        if executor_kind(self.executor)[0] in ("local", "scheduler", "client"):
            require_dask()  # before any data is touched: one error naming the extra
        if self.resume and self.out_dir is None:
            raise ConfigError("resume=True needs out_dir: the folder holding the checkpoint")
        if self.resume and self.force:
            raise ConfigError("resume=True continues the run in out_dir and force=True replaces it; choose one")
        if self.model_selection not in SELECTION_RULES:
            raise ConfigError(
                f"model_selection must be one of {', '.join(SELECTION_RULES)}, got {self.model_selection!r}"
            )
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
        task = as_task(X, y)
        engine_name, settings = self._validated()
        if settings.final_selection == "fair":  # a prior of the wrong kind, refused before the search, not after it
            from evomal_sr.evaluation.selection import task_prior

            task_prior(settings.selection_prior, task)
        if self.out_dir is None:
            return self._fit(task, engine_name, settings, None)
        rundir = RunDir(self.out_dir)
        with rundir.claim(resume=self.resume, force=self.force):  # one search per folder; no run overwritten
            return self._fit(task, engine_name, settings, rundir)

    def _fit(self, task, engine_name: str, settings: Preset, rundir: RunDir | None) -> LossSearch:
        progress = GenerationProgress(settings.generations, verbose=self.verbose)
        try:
            return self._run(task, engine_name, settings, rundir, progress)
        finally:
            progress.close()

    def _run(self, task, engine_name: str, settings: Preset, rundir: RunDir | None, progress) -> LossSearch:
        engine_cls = get_engine(engine_name)
        engine_cls.check_available()
        evaluator = Evaluator(
            task,
            preset=settings,
            device=self.device,
            seed=self.seed,
            batched=self.batched,
            local_search=self.local_search,
            chunk_size=self.chunk_size,
            cuda_graph=self.cuda_graph,
            program=self.program,
            # engines hand in complete trees: the native engine repairs its own
            # population (as EvoMAL does), and PySR could not adopt a repaired tree
            repair=False,
        )
        guesses = initial_guesses(task, settings) if self.guesses is None else list(self.guesses)
        ctx = EngineContext(
            task=task,
            evaluator=evaluator,
            settings=settings,
            seed=self.seed,
            guesses=guesses,
            out_dir=rundir.path if rundir else None,
            resume=self.resume,
            on_generation=_chain(progress, self.on_generation),
            options=dict(self.engine_options or {}),
        )
        with open_executor(self.executor) as executor:  # a cluster started here is closed on the way out
            # the executor is an argument of the engine's evaluate calls; evaluator_ itself scores in-process
            result = engine_cls().run(dataclasses.replace(ctx, evaluator=evaluator.on(executor)))
        progress.close()  # the generations are done; the final selection has its own bar
        self.settings_ = settings
        self.evaluator_ = evaluator
        self.hall_of_fame_ = result.hall_of_fame
        self.history_ = [{**vars(r), "totals": dict(r.totals)} for r in result.history]
        self.pareto_front_ = result.hall_of_fame.front(
            task_kind=task.kind, config=self._config(task, engine_name, settings, evaluator)
        )
        self.best_loss_ = self.pareto_front_.best_loss(self.model_selection) if len(self.pareto_front_) else None
        self.best_learned_loss_, self.selection_ = self.best_loss_, None
        if settings.final_selection == "fair":
            self.selection_ = self._final_selection(task, settings)
            self.best_loss_ = self.selection_.module
            if rundir is not None:
                rundir.write_selection(self.selection_.to_dict())
        if self.best_loss_ is not None:
            self.best_loss_.requires_grad_(False)  # a finished loss: training a model must not train it too
        if rundir is not None:
            rundir.write_results(self.pareto_front_, self.hall_of_fame_, result.history)
        return self

    def _final_selection(self, task, settings: Preset):
        from evomal_sr.evaluation.selection import select_with_settings

        return select_with_settings(
            self.pareto_front_, task, settings, seed=self.seed, device=self.device, verbose=self.verbose
        )

    def _config(self, task, engine_name: str, settings: Preset, evaluator: Evaluator) -> dict:
        preset_name = self.preset if isinstance(self.preset, str) else "custom"
        return {
            "engine": engine_name,
            "preset": preset_name,
            "settings": settings.to_dict(),
            "overrides": self.overrides,
            "seed": self.seed,
            "device": str(self.device),
            "local_search": self.local_search,
            "program": self.program,
            "task": task.describe(),
            "model_execution": evaluator.model_execution,  # batched, or the one-at-a-time fallback
            "versions": _versions(),
        }


def _chain(*callbacks):
    """One callback calling each of ``callbacks`` (``None`` skipped) in order."""
    given = [c for c in callbacks if c is not None]

    def call(record):
        for callback in given:
            callback(record)

    return call


def _versions() -> dict:
    import torch

    return {"evomal_sr": __version__, "torch": torch.__version__.split("+")[0], "python": platform.python_version()}
