"""The evaluator: fitness of a batch of candidate losses.

Per candidate, in order: repair -> exact cache -> gradient-equivalence cache ->
gradient check and rejection protocol -> local search (unrolled
differentiation) -> partial training with the learned loss -> validation metric.
The expensive phases run for the whole batch at once (see
:mod:`evomal_sr.training.loop`); ``batched=False`` runs the same computation one
candidate at a time. Every candidate's result depends only on its own
expression, the task, the preset and the seed, never on its batch mates.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

import torch

from evomal_sr.core.devices import resolve_device
from evomal_sr.core.presets import Preset, resolve_preset
from evomal_sr.core.seeding import derive_seed
from evomal_sr.core.threads import auto_threads, torch_threads
from evomal_sr.core.validation import BALANCED_CHUNKS, check_chunk_size
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import CompiledLoss, initial_weights
from evomal_sr.training.fitness import FitnessSettings, partial_training_fitness
from evomal_sr.training.local_search import local_search
from evomal_sr.training.records import TRAINED_STATUSES, FitnessResult, Status  # noqa: F401 (public here too)
from evomal_sr.training.scaling import ScaleProbe, probe_scales
from evomal_sr.training.screening import EquivalenceIndex, ProbePoints, probe_gradients, rejection_protocol
from evomal_sr.training.stacked import StackedModel


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
        Where the unique new candidates are scored: ``None`` here, in this
        process; otherwise an object with ``score_chunks(evaluator, chunks)``
        (see :mod:`evomal_sr.parallel`). Caches and the equivalence index
        always stay in this (the driving) process.
    chunk_size : int or "balanced", optional
        Unique candidates per batch; ``None`` means the executor's default (the
        whole generation in-process); ``"balanced"`` splits each generation into
        one near-equal chunk per worker (``executor.n_workers``), so no worker
        waits for another's second chunk. Chunks are contiguous, in first-seen
        order. On CPU the results do not depend on the chunks (``docs/scaling.md``).
    cuda_graph : bool
        On CUDA, record each batch's training step (forward, losses, backward,
        guarded SGD) once as a CUDA graph and replay it for every step
        (:mod:`evomal_sr.training.captured`): the same results, far fewer kernel
        launches. Ignored on CPU and for models with buffers or random modules.
        Off by default: not yet measured on a GPU in this project.
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

    def __init__(self, task, *, preset: str | Preset = "quick", device: str = "cpu", seed: int = 0,
                 batched: bool = True, local_search: bool = True, repair: bool = True, threads="auto",
                 executor=None, chunk_size: int | str | None = None, cuda_graph: bool = False, **overrides):
        self.executor = executor
        self.cuda_graph = bool(cuda_graph)
        self.chunk_size = check_chunk_size(chunk_size)
        self.task = task
        self.settings = resolve_preset(preset, **overrides)
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.batched = bool(batched)
        self.local_search = bool(local_search)
        self.repair = bool(repair)
        self._data = {
            split: (getattr(task, f"X_{split}").to(self.device), getattr(task, f"y_{split}").to(self.device))
            for split in ("train", "val")
        }
        self._stacked = StackedModel(task.make_model(seed=self.seed).to(self.device), seed=self.seed)
        self._stacked.probe(self._data["train"][0][:4])  # batched, or one copy at a time (model_execution)
        self._threads = auto_threads(threads, self._stacked.model, self.device)
        self._probes = ProbePoints(kind=task.kind, n_outputs=task.n_outputs,
                                   n_points=self.settings.probe_points, seed=derive_seed(self.seed, "probes"))
        self._meta_inits: dict[int, dict] = {}
        self._probe: ScaleProbe | None = None
        self._results: dict[str, FitnessResult] = {}
        self._index = EquivalenceIndex(rtol=self.settings.equivalence_rtol, atol=self.settings.equivalence_atol)
        self.counters = dict.fromkeys(
            ("requested", "exact_hits", "equivalent_hits", "rejected", "trained", "diverged"), 0
        )

    # -- public ------------------------------------------------------------------
    def evaluate(self, expressions: Iterable[str | Expression]) -> list[FitnessResult]:
        """Fitness of every candidate, in order (a list of :class:`FitnessResult`)."""
        items = []
        for item in expressions:
            expr = Expression.parse(item)
            items.append((str(item) if isinstance(item, Expression) else item, self._repaired(expr)))
        self.counters["requested"] += len(items)
        new: dict[str, Expression] = {}
        for _, expr in items:
            if str(expr) not in self._results:
                new.setdefault(str(expr), expr)
        with torch_threads(self._threads):
            self._score_new(new)
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
                results.append(replace(origin, requested=requested, status=Status.CACHED, reused_from=key,
                                       seconds={}))
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
        group = []
        for text in expressions:
            expr = Expression.parse(text)
            group.append((str(expr), expr, CompiledLoss(expr)))
        if not group:
            return []
        with torch_threads(self._threads):
            return self._score_group(group)

    @property
    def model_execution(self) -> dict:
        """How the base model's copies run: ``{"execution": "batched" | "one-at-a-time", ...}``."""
        return self._stacked.describe()

    @property
    def cache_size(self) -> int:
        """Number of distinct expressions evaluated so far."""
        return len(self._results)

    def state_dict(self) -> dict:
        """JSON-ready cache contents and counters (fingerprints are recomputed on load)."""
        return {"results": [r.to_dict() for r in self._results.values()], "counters": dict(self.counters),
                "equivalence_order": self._index.keys()}

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

    def _score_new(self, new: dict[str, Expression]) -> None:
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
        for result in self._score_unique(unique):
            self._keep(result)
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

    def _score_unique(self, unique) -> list[FitnessResult]:
        """Score the unique new candidates chunk by chunk, here or on the executor's workers."""
        size = 1 if not self.batched else (self.chunk_size or getattr(self.executor, "default_chunk_size", None))
        if size == BALANCED_CHUNKS:  # one chunk per worker (a single one in this process)
            size = math.ceil(len(unique) / (getattr(self.executor, "n_workers", None) or 1))
        size = size or max(len(unique), 1)  # None: the whole generation is one batch
        chunks = [unique[i:i + size] for i in range(0, len(unique), size)]  # deterministic, in first-seen order
        if self.executor is None:
            return [result for chunk in chunks for result in self._score_group(chunk)]
        scored = self.executor.score_chunks(self, [[key for key, _, _ in chunk] for chunk in chunks])
        return [result for chunk in scored for result in chunk]

    def _store(self, key, expr, status, **fields) -> None:
        self._keep(self._result(key, expr, status, **fields))

    def _result(self, key, expr, status, *, fitness=math.inf, weights=None, reason="", seconds=None, scale=1.0):
        if weights is None:
            weights = (1.0,) * (expr.size - 1)
        return FitnessResult(
            expression=key, fitness=float(fitness), status=Status(status), weights=tuple(weights),
            complexity=expr.complexity, reason=reason, seconds=seconds or {}, scale=scale,
        )

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
            expression=key, fitness=origin.fitness, status=Status.EQUIVALENT, weights=(1.0,) * (expr.size - 1),
            complexity=expr.complexity, reused_from=twin, reason=origin.reason,
        )

    def _score_group(self, group) -> list[FitnessResult]:
        """Rejection, local search and partial training for one batch of unique candidates (no caching)."""
        s = self.settings
        keys = [k for k, _, _ in group]
        losses = [loss for _, _, loss in group]
        tick = time.perf_counter()
        passed = self._rejection(losses)
        seconds = {"rejection": (time.perf_counter() - tick) / len(group)}
        survivors = [i for i in range(len(group)) if passed[i]]
        scored = [self._result(keys[i], group[i][1], Status.REJECTED, seconds=dict(seconds),
                               reason="rejection protocol: metric did not improve")
                  for i in range(len(group)) if not passed[i]]
        if not survivors:
            return scored
        kept = [losses[i] for i in survivors]
        weights = self._initial_weights([keys[i] for i in survivors], kept)
        probe = self._scale_probe() if s.loss_scaling == "grad_norm" else None
        tick = time.perf_counter()
        if self.local_search and s.meta_iterations:
            weights = local_search(
                self._stacked, kept, weights, init_params=self._meta_init, train_data=self._data["train"],
                val_data=self._data["val"], kind=self.task.kind, iterations=s.meta_iterations,
                meta_lr=s.meta_lr, lr=s.lr, inner_steps=s.inner_steps, batch_size=s.batch_size,
                seed=derive_seed(self.seed, "meta-batches"), probe=probe,
            )
        scales = None if probe is None else probe_scales(kept, weights, probe).detach()
        seconds["local_search"] = (time.perf_counter() - tick) / len(kept)
        tick = time.perf_counter()
        fitness, diverged = self._partial_training(kept, weights, scales)
        seconds["training"] = (time.perf_counter() - tick) / len(kept)
        for j, i in enumerate(survivors):
            status = Status.DIVERGED if diverged[j] else Status.OK
            learned = weights[j, : losses[i].n_weights].tolist()
            scored.append(self._result(keys[i], group[i][1], status, fitness=fitness[j], weights=learned,
                                       seconds=dict(seconds), scale=1.0 if scales is None else float(scales[j])))
        return scored

    def _rejection(self, losses: Sequence[CompiledLoss]) -> list[bool]:
        s = self.settings
        X, Y = self._data["train"]
        rows = torch.randperm(Y.shape[0], generator=torch.Generator().manual_seed(derive_seed(self.seed, "rej")))
        targets = Y[rows[: s.rejection_batch].to(Y.device)]
        passed = rejection_protocol(losses, kind=self.task.kind, targets=targets, n_outputs=self.task.n_outputs,
                                    steps=s.rejection_steps, lr=s.rejection_lr, margin=s.rejection_margin,
                                    seed=derive_seed(self.seed, "rejection"))
        return passed.tolist()

    def _initial_weights(self, keys: Sequence[str], losses: Sequence[CompiledLoss]) -> torch.Tensor:
        width = max(max(loss.n_weights for loss in losses), 1)
        weights = torch.ones(len(losses), width)
        noise = 1e-3 if (self.local_search and self.settings.meta_iterations) else 0.0
        for k, (key, loss) in enumerate(zip(keys, losses)):
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "edge-init", key))
            weights[k, : loss.n_weights] = initial_weights(loss.n_weights, generator=generator, noise=noise)
        return weights.to(self.device)

    def _meta_init(self, iteration: int) -> dict:
        if iteration not in self._meta_inits:
            model = self.task.make_model(seed=derive_seed(self.seed, "meta-init", iteration))
            self._meta_inits[iteration] = {k: v.detach().to(self.device) for k, v in model.named_parameters()}
        return self._meta_inits[iteration]

    def _partial_training(self, losses, weights, scales=None):
        return partial_training_fitness(self._stacked, losses, weights, self._data["train"], self._data["val"],
                                        kind=self.task.kind, scales=scales,
                                        settings=FitnessSettings.from_preset(self.settings, self.seed,
                                                                             cuda_graph=self.cuda_graph))

    def _scale_probe(self) -> ScaleProbe:
        """The fixed probe of ``grad_norm`` scaling: an initial model's outputs on seeded training rows."""
        if self._probe is None:
            X, Y = self._data["train"]
            rows = torch.randperm(Y.shape[0], generator=torch.Generator().manual_seed(derive_seed(self.seed, "scale")))
            rows = rows[: self.settings.batch_size].to(Y.device)
            params = StackedModel.replicate(self._meta_init(0), 1)
            with torch.no_grad():
                outputs = self._stacked.evaluate(params, X[rows])[0]
            self._probe = ScaleProbe(outputs, Y[rows], self.task.kind)
        return self._probe
