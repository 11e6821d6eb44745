"""The evaluator: fitness of a batch of candidate losses, with caches.

Per candidate, in order: repair -> exact cache -> gradient-equivalence cache ->
gradient check, then the unique new candidates go to the pure
:class:`~evomal_sr.scoring.scorer.Scorer` (rejection protocol, local search,
partial training, validation metric), here or on an executor's workers. The
:class:`Evaluator` is the driver: it keeps the caches, the equivalence index and
the counters, and splits the work into chunks; the executor is an argument of
each call (:meth:`Evaluator.evaluate`), never state set around one. The expensive
phases run for a whole batch at once (see :mod:`evomal_sr.training.loop`);
``batched=False`` runs the same computation one candidate at a time. Every
candidate's result depends only on its own expression, the task, the preset and
the seed, never on its batch mates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace

import torch

from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.seeding import derive_seed
from evomal_sr.core.threads import torch_threads
from evomal_sr.core.validation import BALANCED_CHUNKS, check_chunk_size
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import CompiledLoss
from evomal_sr.scoring.scorer import Scorer, result
from evomal_sr.training.records import TRAINED_STATUSES, FitnessResult, Status  # noqa: F401 (public here too)
from evomal_sr.training.screening import EquivalenceIndex, ProbePoints, probe_gradients


class Evaluator:
    """Scores batches of candidate losses on a task.

    Parameters
    ----------
    task : Task
        Data and model factory.
    preset : str or Preset
        ``"quick"``, ``"paper"``, ``"tiny"`` or a :class:`~evomal_sr.core.presets.Preset`.
    device : str
        Torch device for training, e.g. ``"cpu"`` or ``"cuda"``.
    seed : int
        Seed of every stochastic step; same seed, same fitnesses.
    batched : bool
        Train all candidates of a batch together (default) or one by one.
    local_search : bool
        Learn edge weights before training (EvoMAL); ``False`` gives GP-LFL.
    repair : bool
        Repair trees lacking ``y`` or ``fx``; when ``False`` they are rejected.
    threads : "auto", None or int
        Torch threads while evaluating: ``"auto"`` (default) uses one on CPU for small
        models (fastest, and immune to spinning OpenMP threads on a shared machine, see
        :mod:`evomal_sr.core.threads`), ``None`` keeps torch's setting.
    executor : object, optional
        The default of :meth:`evaluate`'s ``executor``: where the unique new
        candidates are scored, ``None`` here, in this process; otherwise an
        object with ``score_chunks(scorer, chunks)`` (see :mod:`evomal_sr.parallel`).
        Caches and the equivalence index always stay in this (the driving) process.
    chunk_size : int or "balanced", optional
        Unique candidates per batch; ``None`` means the executor's default (the
        whole generation in-process); ``"balanced"`` splits each generation into
        one near-equal chunk per worker (``executor.n_workers``), so no worker
        waits for another's second chunk. Chunks are contiguous, in first-seen
        order. On CPU the results do not depend on the chunks (``docs/scaling.md``).
    cuda_graph : bool
        On CUDA, record each batch's rejection step (Adam on raw predictions), local-search
        iteration (inner step, validation loss, meta-gradient, Adam) and training step
        (forward, losses, backward, guarded SGD) once each as a CUDA graph and replay them
        (:mod:`evomal_sr.training.captured`): the same results, far fewer kernel launches, no
        host synchronisation inside a stage. Ignored on CPU; the local search and the training
        step also for models with buffers or random modules.
        Off by default: not yet measured on a GPU in this project.
    program : {"per-tree", "tensor"}
        How a batch's losses are computed: one compiled tree per candidate (default), or
        the population interpreter of :mod:`evomal_sr.losses.program` (the same fitnesses
        in the measured searches; learned weights equal to float32 round-off, not
        bit-identical). Opt-in: faster on CPU for the quick and standard presets, not
        for the paper preset or one candidate at a time; never run on a GPU.
    precision : {"fp32", "tf32", "bf16"}
        The base model's arithmetic while scoring (:mod:`evomal_sr.training.precision`):
        ``"fp32"`` (default, exact), ``"tf32"`` (CUDA tensor cores) or ``"bf16"`` (autocast
        of the model's forward); the loss trees stay in fp32. Opt-in: meant for large
        convolutional models on a GPU, where it has not run yet.
    channels_last : bool
        Store 4-D image inputs as NHWC for the convolutions (same values). Opt-in.
    **overrides
        Any :class:`~evomal_sr.core.presets.Preset` field, e.g. ``train_steps=100``.

    Examples
    --------
    >>> import evomal_sr as es
    >>> task = es.Task.builtin("iris", seed=0)
    >>> ev = es.Evaluator(task, preset="tiny")
    >>> [str(r.status) for r in ev.evaluate(["-(y * log(fx))", "(log(fx) * y)"])]
    ['ok', 'rejected']
    """

    def __init__(
        self,
        task,
        *,
        preset: str | Preset = "quick",
        device: str = "cpu",
        seed: int = 0,
        batched: bool = True,
        local_search: bool = True,
        repair: bool = True,
        threads="auto",
        executor=None,
        chunk_size: int | str | None = None,
        cuda_graph: bool = False,
        program: str = "per-tree",
        precision: str = "fp32",
        channels_last: bool = False,
        **overrides,
    ):
        self.executor = executor  # the default of evaluate(executor=...); never changed by a call
        self.chunk_size = check_chunk_size(chunk_size)
        self.repair = bool(repair)
        self.scorer = Scorer(
            task,
            resolve_preset(preset, **overrides),
            device=device,
            seed=seed,
            batched=batched,
            local_search=local_search,
            threads=threads,
            cuda_graph=cuda_graph,
            program=program,
            precision=precision,
            channels_last=channels_last,
        )
        self._probes = ProbePoints(
            kind=task.kind,
            n_outputs=task.n_outputs,
            n_points=self.settings.probe_points,
            seed=derive_seed(self.seed, "probes"),
        )
        self._results: dict[str, FitnessResult] = {}
        self._index = EquivalenceIndex(rtol=self.settings.equivalence_rtol, atol=self.settings.equivalence_atol)
        self.counters = dict.fromkeys(
            ("requested", "exact_hits", "equivalent_hits", "rejected", "trained", "diverged"), 0
        )

    # the scorer's settings, read by engines, the search and executors (ScorerSpec)
    task = property(lambda self: self.scorer.task)
    settings = property(lambda self: self.scorer.settings)
    device = property(lambda self: self.scorer.device)
    seed = property(lambda self: self.scorer.seed)
    batched = property(lambda self: self.scorer.batched)
    local_search = property(lambda self: self.scorer.local_search)
    cuda_graph = property(lambda self: self.scorer.cuda_graph)
    program = property(lambda self: self.scorer.program)
    precision = property(lambda self: self.scorer.precision)
    channels_last = property(lambda self: self.scorer.channels_last)
    _stacked = property(lambda self: self.scorer.stacked)

    def on(self, executor) -> BoundEvaluator:
        """This evaluator with ``executor`` as the argument of every :meth:`evaluate` call (for engines).

        Examples
        --------
        >>> import evomal_sr as es
        >>> from evomal_sr.parallel import InProcessExecutor
        >>> ev = es.Evaluator(es.Task.builtin("iris", seed=0), preset="tiny")
        >>> bound = ev.on(InProcessExecutor())
        >>> [str(r.status) for r in bound.evaluate(["-(y * log(fx))"])], ev.executor is None, bound.cache_size
        (['ok'], True, 1)
        """
        return BoundEvaluator(self, executor)

    # -- public ------------------------------------------------------------------
    def evaluate(self, expressions: Iterable[str | Expression], *, executor=None) -> list[FitnessResult]:
        """Fitness of every candidate, in order (a list of :class:`FitnessResult`).

        ``executor`` scores the unique new candidates (``None``: the one given to the
        constructor, by default this process); see :mod:`evomal_sr.parallel`.
        """
        items = []
        for item in expressions:
            expr = Expression.parse(item)
            items.append((str(item) if isinstance(item, Expression) else item, self._repaired(expr)))
        self.counters["requested"] += len(items)
        new: dict[str, Expression] = {}
        for _, expr in items:
            if str(expr) not in self._results:
                new.setdefault(str(expr), expr)
        with torch_threads(self.scorer.threads):
            self._score_new(new, self.executor if executor is None else executor)
        fresh = set(new)  # the first occurrence of a newly scored expression is not a cache hit
        results = []
        for requested, expr in items:
            key = str(expr)
            origin = self._results[key]
            if key in fresh:
                fresh.discard(key)
                results.append(replace(origin, requested=requested))
            elif origin.status == Status.EQUIVALENT:  # still not trained itself: keep pointing at its twin
                self.counters["exact_hits"] += 1
                results.append(replace(origin, requested=requested, seconds={}))
            else:
                self.counters["exact_hits"] += 1
                results.append(replace(origin, requested=requested, status=Status.CACHED, reused_from=key, seconds={}))
        return results

    def score_unique(self, expressions: Sequence[str]) -> list[FitnessResult]:
        """Score distinct complete candidates as one batch, bypassing every cache (what a worker runs).

        The driver has already repaired, deduplicated and screened them (exact
        cache, gradient check, equivalence index); results are in the order
        rejected-first, as the in-process path produces them, and nothing is
        cached or counted here.

        Examples
        --------
        >>> import evomal_sr as es
        >>> ev = es.Evaluator(es.Task.builtin("iris", seed=0), preset="tiny")
        >>> [str(r.status) for r in ev.score_unique(["-(y * log(fx))"])], ev.cache_size
        (['ok'], 0)
        """
        return self.scorer.score_unique(expressions)

    @property
    def model_execution(self) -> dict:
        """How the base model's copies run: ``{"execution": "batched" | "one-at-a-time", ...}``."""
        return self.scorer.model_execution

    @property
    def cache_size(self) -> int:
        """Number of distinct expressions evaluated so far."""
        return len(self._results)

    def state_dict(self) -> dict:
        """JSON-ready cache contents and counters (fingerprints are recomputed on load)."""
        return {
            "results": [r.to_dict() for r in self._results.values()],
            "counters": dict(self.counters),
            "equivalence_order": self._index.keys(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore caches and counters saved by :meth:`state_dict`."""
        self._results.clear()
        self._index = EquivalenceIndex(rtol=self.settings.equivalence_rtol, atol=self.settings.equivalence_atol)
        for data in state["results"]:
            result = FitnessResult.from_dict(data)
            self._results[result.expression] = result
        # the index is rebuilt in its original order: the first matching twin must stay the same
        for key in state.get("equivalence_order", list(self._results)):
            expr = Expression.parse(key)
            if key not in self._results or not expr.is_complete():  # incomplete trees are never probed
                continue
            loss = CompiledLoss(expr)
            fingerprint = probe_gradients(loss, self._probes)
            if torch.isfinite(fingerprint).all() and self._finite_value(loss):
                self._index.add(key, fingerprint)
        self.counters.update({k: int(v) for k, v in state["counters"].items() if k in self.counters})

    # -- pipeline ------------------------------------------------------------------
    def _repaired(self, expr: Expression) -> Expression:
        if not self.repair or expr.is_complete():
            return expr
        return expr.repair(random.Random(derive_seed(self.seed, "repair", str(expr))))

    def _score_new(self, new: dict[str, Expression], executor) -> None:
        candidates = []
        for key, expr in new.items():
            loss = CompiledLoss(expr)
            if not expr.is_complete():
                self._store(key, expr, Status.REJECTED, reason="expression lacks y or fx")
                continue
            fingerprint = probe_gradients(loss, self._probes)
            if not torch.isfinite(fingerprint).all():
                self._store(key, expr, Status.REJECTED, reason="non-finite gradient at probe points")
                continue
            twin = None
            if self._finite_value(loss):  # an overflowing loss is scored on its own and is never a twin
                twin = self._index.find(fingerprint)
                self._index.add(key, fingerprint)
            candidates.append((key, expr, loss, twin))
        unique = [(key, expr, loss) for key, expr, loss, twin in candidates if twin is None]
        for scored in self._score_unique(unique, executor):
            self._keep(scored)
        for key, expr, _, twin in candidates:
            if twin is not None:
                self._store_equivalent(key, expr, twin)

    def _finite_value(self, loss: CompiledLoss) -> bool:
        """Whether the unit-weight loss is finite at the probe points in float32, the dtype it trains in.

        Gradient twins share a fitness only when both can be trained: a loss
        such as ``(-(y * log(fx)) + 1e39)`` has cross-entropy's gradient but an
        infinite value, so it neither reuses nor lends a fitness, whatever the
        order of evaluation.
        """
        probes = self._probes
        with torch.no_grad():
            value = loss(torch.ones(max(loss.n_weights, 1)), probes.y.float(), probes.fx.float())
        return bool(torch.isfinite(value).all())

    def _score_unique(self, unique, executor) -> list[FitnessResult]:
        """Score the unique new candidates chunk by chunk, here or on ``executor``'s workers."""
        size = 1 if not self.batched else (self.chunk_size or getattr(executor, "default_chunk_size", None))
        if size == BALANCED_CHUNKS:  # one chunk per worker (a single one in this process)
            size = math.ceil(len(unique) / (getattr(executor, "n_workers", None) or 1))
        size = size or max(len(unique), 1)  # None: the whole generation is one batch
        chunks = [unique[i : i + size] for i in range(0, len(unique), size)]  # deterministic, in first-seen order
        if executor is None:
            return [scored for chunk in chunks for scored in self.scorer.score(chunk)]
        results = executor.score_chunks(self.scorer, [[key for key, _, _ in chunk] for chunk in chunks])
        return [scored for chunk in results for scored in chunk]

    def _store(self, key, expr, status, **fields) -> None:
        self._keep(result(key, expr, status, **fields))

    def _keep(self, result: FitnessResult) -> None:
        """Cache a scored result and count it (driver side only)."""
        self._results[result.expression] = result
        status = result.status
        counter = {Status.REJECTED: "rejected", Status.DIVERGED: "diverged", Status.OK: "trained"}[status]
        self.counters[counter] += 1
        if status == Status.DIVERGED:
            self.counters["trained"] += 1

    def _store_equivalent(self, key, expr, twin) -> None:
        origin = self._results[twin]
        self.counters["equivalent_hits"] += 1
        self._results[key] = FitnessResult(
            expression=key,
            fitness=origin.fitness,
            status=Status.EQUIVALENT,
            weights=(1.0,) * (expr.size - 1),
            complexity=expr.complexity,
            reused_from=twin,
            reason=origin.reason,
        )


class BoundEvaluator:
    """An :class:`Evaluator` whose :meth:`evaluate` calls all get one executor (see :meth:`Evaluator.on`).

    Everything else (caches, counters, ``state_dict``, settings) is the evaluator's own.
    """

    def __init__(self, evaluator: Evaluator, executor):
        self.evaluator = evaluator
        self.executor = executor

    def evaluate(self, expressions: Iterable[str | Expression]) -> list[FitnessResult]:
        """:meth:`Evaluator.evaluate` with this executor."""
        if self.executor is None:  # in-process: the plain call, which code timing `Evaluator.evaluate` wraps
            return self.evaluator.evaluate(expressions)
        return self.evaluator.evaluate(expressions, executor=self.executor)

    def __getattr__(self, name):  # only for names not set in __init__
        if name in ("evaluator", "executor"):  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.evaluator, name)
