"""The baseline searches a learned loss is compared with, on the evaluator's machinery.

* ``GP-LFL``: EvoMAL's genetic programming without local search (:func:`search_gplfl`).
* ``ML3``: a neural meta-loss (2,650 parameters) trained by the same unrolled
  differentiation as EvoMAL's local search (:func:`train_ml3`).
* ``TaylorGLO``: a third-order bivariate Taylor polynomial (8 parameters) tuned
  by CMA-ES (:func:`train_taylorglo`).

Each returns losses that :func:`~evomal_sr.evaluation.metatest.meta_test`
accepts; all three score candidates with the one partial-training fitness
(:mod:`evomal_sr.training.fitness`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.seeding import derive_seed
from evomal_sr.errors import EngineUnavailableError
from evomal_sr.losses.ml3 import ML3Loss, initial_parameters
from evomal_sr.losses.taylorglo import N_PARAMETERS, POPULATION, SIGMA, TaylorGLOLoss
from evomal_sr.search.estimator import LossSearch
from evomal_sr.training.fitness import FitnessSettings, partial_training_fitness
from evomal_sr.training.local_search import local_search
from evomal_sr.training.stacked import StackedModel

#: Fitness CMA-ES sees for a candidate whose training failed (error rates are <= 1).
FAILED_FITNESS = 1e6


def train_ml3(
    task,
    *,
    preset: str | Preset = "quick",
    seed: int = 0,
    iterations: int | None = None,
    device: str = "cpu",
    **overrides,
) -> ML3Loss:
    """Meta-train an ML3 loss on ``task`` by unrolled differentiation.

    Parameters
    ----------
    task : Task
        Inner steps use its training split, the outer task loss its validation split.
    preset : str or Preset
        Supplies ``meta_lr`` (Adam), ``lr`` (inner SGD), ``inner_steps``,
        ``batch_size`` and, for the reported validation fitness, ``train_steps``.
    seed : int
        Seeds the meta-loss initialisation, the base-model initialisations and the batches.
    iterations : int, optional
        Meta-iterations; default ``meta_iterations * population`` of the preset,
        the local-search budget of one generation of EvoMAL.
    device : str
    **overrides
        Preset fields, e.g. ``meta_lr=1e-2``.

    Returns
    -------
    ML3Loss
        With ``metadata`` holding the validation ``fitness`` after partial training
        (as the evaluator scores candidates), ``seconds`` and the settings.

    Examples
    --------
    >>> import evomal_sr as es
    >>> loss = train_ml3(es.Task.builtin("iris"), preset="tiny", iterations=2)
    >>> loss.n_parameters
    2650
    """
    settings = resolve_preset(preset, **overrides)
    iterations = settings.meta_iterations * settings.population if iterations is None else int(iterations)
    tick = time.perf_counter()
    task = task.to(device)
    stacked = StackedModel(task.make_model(seed=seed))
    train, val = (task.X_train, task.y_train), (task.X_val, task.y_val)

    def init_params(iteration: int):
        model = task.make_model(seed=derive_seed(seed, "ml3-init", iteration))
        return {k: v.detach() for k, v in model.named_parameters()}

    weights = initial_parameters(seed=derive_seed(seed, "ml3-weights")).unsqueeze(0).to(task.device)
    weights = local_search(
        stacked,
        [ML3Loss.compiled()],
        weights,
        init_params=init_params,
        train_data=train,
        val_data=val,
        kind=task.kind,
        iterations=iterations,
        meta_lr=settings.meta_lr,
        lr=settings.lr,
        inner_steps=settings.inner_steps,
        batch_size=settings.batch_size,
        seed=derive_seed(seed, "ml3-batches"),
    )
    search_seconds = time.perf_counter() - tick
    fitness = _ml3_fitness(stacked, weights, task, settings, seed)
    metadata = {
        "method": "ML3",
        "fitness": fitness,
        "seconds": search_seconds,
        "iterations": iterations,
        "seed": seed,
        "task": task.describe(),
        "settings": settings.to_dict(),
    }
    return ML3Loss(task.kind, parameters=weights[0].cpu(), metadata=metadata)


def _ml3_fitness(stacked, weights, task, settings, seed) -> float | None:
    """Validation error after ``train_steps`` of training with the learned ML3 (as the evaluator scores)."""
    fitness, _ = partial_training_fitness(
        stacked,
        [ML3Loss.compiled()],
        weights,
        (task.X_train, task.y_train),
        (task.X_val, task.y_val),
        kind=task.kind,
        settings=FitnessSettings.from_preset(settings, seed),
    )
    return fitness[0] if math.isfinite(fitness[0]) else None


def _import_cma():
    try:
        import cma
    except ImportError:
        raise EngineUnavailableError(
            "TaylorGLO needs the 'cma' package: pip install cma (or pip install 'evomal-sr[baselines]')"
        ) from None
    return cma


def train_taylorglo(
    task,
    *,
    preset: str | Preset = "quick",
    seed: int = 0,
    generations: int | None = None,
    population: int = POPULATION,
    sigma: float = SIGMA,
    device: str = "cpu",
    **overrides,
) -> TaylorGLOLoss:
    """Tune a TaylorGLO loss on ``task`` with CMA-ES.

    Parameters
    ----------
    task : Task
    preset : str or Preset
        Supplies the partial training of the fitness (``train_steps``, ``lr``, ``batch_size``).
    seed : int
        Seeds CMA-ES's sampling, the base model's initialisation and the minibatches.
    generations : int, optional
        CMA-ES generations; default the preset's ``generations``.
    population, sigma : int, float
        CMA-ES population size and initial step size (the paper's 25 and 1.2).
    device : str
    **overrides
        Preset fields, e.g. ``train_steps=100``.

    Returns
    -------
    TaylorGLOLoss
        The candidate with the lowest validation error seen, ``metadata`` holding
        its ``fitness``, ``seconds``, ``generations`` and the settings.

    Raises
    ------
    EngineUnavailableError
        If ``cma`` is not installed.

    Examples
    --------
    >>> import evomal_sr as es
    >>> loss = train_taylorglo(es.Task.builtin("iris"), preset="tiny", generations=1, population=4)
    >>> loss.n_parameters
    8
    """
    cma = _import_cma()
    settings = resolve_preset(preset, **overrides)
    generations = settings.generations if generations is None else int(generations)
    tick = time.perf_counter()
    task = task.to(device)
    fitness_of = _BatchFitness(task, settings, seed)
    rng = np.random.default_rng(derive_seed(seed, "taylorglo-cma"))
    options = {
        "popsize": int(population),
        "randn": lambda *shape: rng.standard_normal(shape),
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
        "CMA_diagonal": False,
    }
    state = np.random.get_state()  # cma may touch NumPy's global RNG; leave it as it was
    try:
        strategy = cma.CMAEvolutionStrategy(np.zeros(N_PARAMETERS), float(sigma), options)
        best, best_fitness = np.zeros(N_PARAMETERS), math.inf
        for _ in range(generations):
            candidates = strategy.ask()
            scores = fitness_of(np.asarray(candidates))
            strategy.tell(candidates, [s if math.isfinite(s) else FAILED_FITNESS for s in scores])
            k = int(np.argmin(scores))
            if scores[k] < best_fitness:
                best, best_fitness = np.asarray(candidates[k]), scores[k]
    finally:
        np.random.set_state(state)
    metadata = {
        "method": "TaylorGLO",
        "fitness": best_fitness if math.isfinite(best_fitness) else None,
        "seconds": time.perf_counter() - tick,
        "generations": generations,
        "population": population,
        "sigma": sigma,
        "seed": seed,
        "task": task.describe(),
        "settings": settings.to_dict(),
    }
    return TaylorGLOLoss(task.kind, parameters=best.astype(np.float32), metadata=metadata)


class _BatchFitness:
    """Validation error after partial training, for a population of parameter vectors at once."""

    def __init__(self, task, settings: Preset, seed: int):
        self.task, self.settings, self.seed = task, settings, seed
        self.stacked = StackedModel(task.make_model(seed=seed))

    def __call__(self, thetas: np.ndarray) -> list[float]:
        task = self.task
        weights = torch.as_tensor(thetas, dtype=torch.float32, device=task.device)
        fitness, _ = partial_training_fitness(
            self.stacked,
            [TaylorGLOLoss.compiled()] * len(thetas),
            weights,
            (task.X_train, task.y_train),
            (task.X_val, task.y_val),
            kind=task.kind,
            settings=FitnessSettings.from_preset(self.settings, self.seed),
        )
        return [float(v) for v in fitness]


def search_gplfl(task, *, preset="quick", seed: int = 0, device: str = "cpu", **overrides):
    """GP-LFL: EvoMAL's search without local search; returns the fitted ``LossSearch``.

    Examples
    --------
    >>> import evomal_sr as es
    >>> search = search_gplfl(es.Task.builtin("iris"), preset="tiny")  # doctest: +SKIP
    >>> search.best_loss_  # doctest: +SKIP
    """
    return LossSearch(preset=preset, seed=seed, device=device, local_search=False, **overrides).fit(task)
