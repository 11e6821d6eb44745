"""The pure scorer: a batch of unique candidate losses in, fitness and learned weights out.

Per batch, in order: the rejection protocol, local search of the edge weights
(unrolled differentiation) and partial training with the learned loss, then the
validation metric. Nothing is cached or counted here, and a candidate's result
depends only on its own expression, the task, the settings and the seed, never
on its batch mates: this is what one program per generation replaces.
The :class:`~evomal_sr.scoring.evaluator.Evaluator` drives it (caches,
gradient equivalence, counters, dispatch to an executor); an executor's workers
call :meth:`Scorer.score_unique` on their own scorer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from evomal_sr.core.devices import resolve_device
from evomal_sr.core.presets import Preset
from evomal_sr.core.seeding import derive_seed
from evomal_sr.core.threads import auto_threads, torch_threads
from evomal_sr.core.validation import check_program
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.program import LossProgram
from evomal_sr.losses.symbolic import CompiledLoss, initial_weights
from evomal_sr.training.fitness import FitnessSettings, fitness_inits, partial_training_fitness
from evomal_sr.training.local_search import local_search
from evomal_sr.training.precision import check_channels_last, check_precision, matmul_precision
from evomal_sr.training.records import FitnessResult, Status
from evomal_sr.training.scaling import ScaleProbe, probe_scales
from evomal_sr.training.screening import rejection_protocol
from evomal_sr.training.stacked import StackedModel


class Scorer:
    """Scores batches of unique, complete candidate losses on a task (no caches, no counters).

    Parameters
    ----------
    task : Task
    settings : Preset
        The resolved preset.
    device : str
    seed : int
    batched : bool
        Train a batch's candidates together (``False``: one by one, the same results).
    local_search : bool
        Learn the edge weights before training (EvoMAL); ``False`` gives GP-LFL.
    threads : "auto", None or int
        Torch threads while scoring (:func:`~evomal_sr.core.threads.auto_threads`).
    cuda_graph : bool
        On CUDA, record one step of each stage (the rejection fit, a local-search
        meta-iteration, a training step) as a CUDA graph and replay it (same results).
    program : {"per-tree", "tensor"}
        How the batch's losses are computed (:data:`~evomal_sr.core.validation.PROGRAMS`).
    precision : {"fp32", "tf32", "bf16"}
        The base model's arithmetic (:mod:`evomal_sr.training.precision`; opt-in, never run
        on a GPU yet): ``"tf32"`` (CUDA only) for the whole batch, ``"bf16"`` autocast
        for the model's forward; the loss trees stay in fp32.
    channels_last : bool
        Store 4-D image inputs as NHWC (same values).

    Examples
    --------
    >>> import evomal_sr as es
    >>> from evomal_sr.core.presets import resolve_preset
    >>> scorer = Scorer(es.Task.builtin("iris", seed=0), resolve_preset("tiny"))
    >>> [str(r.status) for r in scorer.score_unique(["-(y * log(fx))", "(log(fx) * y)"])]
    ['rejected', 'ok']
    """

    def __init__(
        self,
        task,
        settings: Preset,
        *,
        device: str = "cpu",
        seed: int = 0,
        batched: bool = True,
        local_search: bool = True,
        threads="auto",
        cuda_graph: bool = False,
        program: str = "per-tree",
        precision: str = "fp32",
        channels_last: bool = False,
    ):
        self.task = task
        self.settings = settings
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.batched = bool(batched)
        self.local_search = bool(local_search)
        self.cuda_graph = bool(cuda_graph)
        self.program = check_program(program)
        self.precision = check_precision(precision, self.device)
        self.channels_last = check_channels_last(channels_last)
        self._data = {
            split: (getattr(task, f"X_{split}").to(self.device), getattr(task, f"y_{split}").to(self.device))
            for split in ("train", "val")
        }
        self.stacked = StackedModel(
            task.make_model(seed=self.seed).to(self.device),
            seed=self.seed,
            precision=self.precision,
            channels_last=self.channels_last,
        )
        self.stacked.probe(self._data["train"][0][:4])  # batched, or one copy at a time (model_execution)
        self.threads = auto_threads(threads, self.stacked.model, self.device)
        self._meta_inits: dict[int, dict] = {}  # memoised pure functions of the seed
        self._fitness_starts: list[dict] | None = None
        self._probe: ScaleProbe | None = None

    @property
    def model_execution(self) -> dict:
        """How the base model's copies run: ``{"execution": "batched" | "one-at-a-time", ...}``."""
        return self.stacked.describe()

    def score_unique(self, expressions: Sequence[str]) -> list[FitnessResult]:
        """Score distinct complete candidates (texts) as one batch, with this scorer's thread count.

        Results come rejected-first, then the trained ones, each in the given order.
        """
        group = []
        for text in expressions:
            expr = Expression.parse(text)
            group.append((str(expr), expr, CompiledLoss(expr)))
        if not group:
            return []
        with torch_threads(self.threads):
            return self.score(group)

    def score(self, group: Sequence[tuple[str, Expression, CompiledLoss]]) -> list[FitnessResult]:
        """Rejection, local search and partial training of ``(key, expression, compiled)`` triples.

        ``batched=False`` scores them one at a time (the same results); the caller
        sets the thread count.
        """
        with matmul_precision(self.precision):
            if self.batched or len(group) <= 1:
                return self._score_batch(group)
            return [result for item in group for result in self._score_batch([item])]

    def _score_batch(self, group) -> list[FitnessResult]:
        s = self.settings
        keys = [k for k, _, _ in group]
        losses = self._losses([loss for _, _, loss in group])
        tick = time.perf_counter()
        passed = self._rejection(losses)
        seconds = {"rejection": (time.perf_counter() - tick) / len(group)}
        survivors = [i for i in range(len(group)) if passed[i]]
        scored = [
            result(
                keys[i],
                group[i][1],
                Status.REJECTED,
                seconds=dict(seconds),
                reason="rejection protocol: metric did not improve",
            )
            for i in range(len(group))
            if not passed[i]
        ]
        if not survivors:
            return scored
        kept = self._losses([losses[i] for i in survivors])
        weights = self._initial_weights([keys[i] for i in survivors], kept)
        probe = self._scale_probe() if s.loss_scaling == "grad_norm" else None
        tick = time.perf_counter()
        if self.local_search and s.meta_iterations:
            weights = self._local_search(kept, weights, probe)
        scales = None if probe is None else probe_scales(kept, weights, probe).detach()
        seconds["local_search"] = (time.perf_counter() - tick) / len(kept)
        tick = time.perf_counter()
        fitness, diverged = self._partial_training(kept, weights, scales)
        seconds["training"] = (time.perf_counter() - tick) / len(kept)
        for j, i in enumerate(survivors):
            status = Status.DIVERGED if diverged[j] else Status.OK
            learned = weights[j, : losses[i].n_weights].tolist()
            scored.append(
                result(
                    keys[i],
                    group[i][1],
                    status,
                    fitness=fitness[j],
                    weights=learned,
                    seconds=dict(seconds),
                    scale=1.0 if scales is None else float(scales[j]),
                )
            )
        return scored

    def _local_search(self, kept, weights: torch.Tensor, probe) -> torch.Tensor:
        """The survivors' edge weights tuned by :func:`~evomal_sr.training.local_search.local_search`."""
        s = self.settings
        return local_search(
            self.stacked,
            kept,
            weights,
            init_params=self._meta_init,
            train_data=self._data["train"],
            val_data=self._data["val"],
            kind=self.task.kind,
            iterations=s.meta_iterations,
            meta_lr=s.meta_lr,
            lr=s.lr,
            inner_steps=s.inner_steps,
            batch_size=s.batch_size,
            seed=derive_seed(self.seed, "meta-batches"),
            probe=probe,
            fixed_scale=s.local_search_scale == "fixed",
            cuda_graph=self.cuda_graph,
        )

    def _partial_training(self, kept, weights: torch.Tensor, scales: torch.Tensor | None):
        """The survivors' fitness and divergence (:func:`~evomal_sr.training.fitness.partial_training_fitness`)."""
        return partial_training_fitness(
            self.stacked,
            kept,
            weights,
            self._data["train"],
            self._data["val"],
            kind=self.task.kind,
            scales=scales,
            settings=FitnessSettings.from_preset(self.settings, self.seed, cuda_graph=self.cuda_graph),
            inits=self._fitness_inits(),
        )

    def _losses(self, losses: list[CompiledLoss]):
        """The batch's losses as the pipeline takes them: a list, or one :class:`LossProgram`."""
        return LossProgram(losses) if self.program == "tensor" else losses

    def _rejection(self, losses) -> list[bool]:
        s = self.settings
        X, Y = self._data["train"]
        rows = torch.randperm(Y.shape[0], generator=torch.Generator().manual_seed(derive_seed(self.seed, "rej")))
        targets = Y[rows[: s.rejection_batch].to(Y.device)]
        passed = rejection_protocol(
            losses,
            kind=self.task.kind,
            targets=targets,
            n_outputs=self.task.n_outputs,
            steps=s.rejection_steps,
            lr=s.rejection_lr,
            margin=s.rejection_margin,
            seed=derive_seed(self.seed, "rejection"),
            cuda_graph=self.cuda_graph,
        )
        return passed.tolist()

    def _initial_weights(self, keys: Sequence[str], losses: Sequence[CompiledLoss]) -> torch.Tensor:
        width = max(max(loss.n_weights for loss in losses), 1)
        weights = torch.ones(len(losses), width)
        noise = 1e-3 if (self.local_search and self.settings.meta_iterations) else 0.0
        for k, (key, loss) in enumerate(zip(keys, losses)):
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "edge-init", key))
            weights[k, : loss.n_weights] = initial_weights(loss.n_weights, generator=generator, noise=noise)
        return weights.to(self.device)

    def _fitness_inits(self) -> list[dict]:
        """The initialisations the fitness trains from (``fitness_seeds``; one: the stacked model's own)."""
        if self.settings.fitness_seeds > 1 and self._fitness_starts is None:
            self._fitness_starts = fitness_inits(
                self.stacked, self.task.make_model, self.seed, self.settings.fitness_seeds, self.device
            )
        return self._fitness_starts or []

    def _meta_init(self, iteration: int) -> dict:
        if iteration not in self._meta_inits:
            model = self.task.make_model(seed=derive_seed(self.seed, "meta-init", iteration))
            self._meta_inits[iteration] = {k: v.detach().to(self.device) for k, v in model.named_parameters()}
        return self._meta_inits[iteration]

    def _scale_probe(self) -> ScaleProbe:
        """The fixed probe of ``grad_norm`` scaling: an initial model's outputs on seeded training rows."""
        if self._probe is None:
            X, Y = self._data["train"]
            rows = torch.randperm(Y.shape[0], generator=torch.Generator().manual_seed(derive_seed(self.seed, "scale")))
            rows = rows[: self.settings.batch_size].to(Y.device)
            params = StackedModel.replicate(self._meta_init(0), 1)
            with torch.no_grad():
                outputs = self.stacked.evaluate(params, X[rows])[0]
            self._probe = ScaleProbe(outputs, Y[rows], self.task.kind)
        return self._probe


def result(
    key: str, expr: Expression, status, *, fitness=math.inf, weights=None, reason="", seconds=None, scale=1.0
) -> FitnessResult:
    """A :class:`FitnessResult` for ``expr`` (unit weights unless given)."""
    if weights is None:
        weights = (1.0,) * (expr.size - 1)
    return FitnessResult(
        expression=key,
        fitness=float(fitness),
        status=Status(status),
        weights=tuple(weights),
        complexity=expr.complexity,
        reason=reason,
        seconds=seconds or {},
        scale=scale,
    )
