"""The population training step captured once as a CUDA graph and replayed for every step.

A training step of ``K`` small models is hundreds of tiny kernels; on a GPU their
launch cost dominates. :func:`train_captured` records one guarded step (forward,
every candidate's loss, backward, masked SGD) as a CUDA graph and replays it,
copying only the next minibatch's row indices in between. The captured step,
:func:`masked_static_step`, reads nothing back to the host: a copy whose loss or
gradient goes non-finite is frozen with ``torch.where`` instead of being dropped
from the batch, which gives every copy the same parameters, divergence flag and
step count as the eager loop (:func:`~evomal_sr.training.loop.train_population`).

Only used on CUDA, for models without buffers or random modules
(:func:`can_capture`), when asked for (``Evaluator(cuda_graph=True)``,
``--cuda-graph``); everything else runs eagerly. Not measured on a GPU in this
project yet (see ``benchmarks/PERFORMANCE.md``; ``benchmarks/bench_cuda_graph.py``
is the prepared check).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from evomal_sr.training.stacked import Params

#: ``values_fn(params, index) -> [K]``: every copy's loss on the minibatch rows ``index``.
ValuesFn = Callable[[Params, torch.Tensor], torch.Tensor]


def captures_on(device) -> bool:
    """Whether a step on ``device`` can be recorded as a CUDA graph (a CUDA device, with CUDA present)."""
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def can_capture(stacked, device) -> bool:
    """Whether the step of ``stacked`` on ``device`` can be captured (CUDA, stateless model)."""
    return captures_on(device) and not stacked.stateful


def masked_static_step(
    params: Params,
    values_fn: ValuesFn,
    index: torch.Tensor,
    active: torch.Tensor,
    steps_done: torch.Tensor,
    lr: float | torch.Tensor,
) -> None:
    """One guarded SGD step of every copy, in place, with no host synchronisation.

    Copies that are inactive, or whose loss or gradient is non-finite now, keep
    their parameters; ``active`` and ``steps_done`` are updated in place. For an
    active copy the update is ``p - g * lr``, the eager loop's arithmetic; ``lr``
    is one learning rate or a tensor ``[K]`` with one per copy.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> params = {k: v.detach().unsqueeze(0).clone().requires_grad_(True) for k, v in net.named_parameters()}
    >>> X = torch.randn(4, 2)
    >>> fn = lambda p, i: (X[i] @ p["weight"][0].T + p["bias"][0]).square().mean().unsqueeze(0)
    >>> active, done = torch.ones(1, dtype=torch.bool), torch.zeros(1, dtype=torch.long)
    >>> masked_static_step(params, fn, torch.arange(4), active, done, 0.1)
    >>> done.tolist()
    [1]
    """
    values = values_fn(params, index)
    grads = torch.autograd.grad(values.sum(), list(params.values()))
    with torch.no_grad():
        ok = active & torch.isfinite(values)
        for g in grads:
            ok = ok & torch.isfinite(g.reshape(g.shape[0], -1)).all(dim=1)
        for p, g in zip(params.values(), grads):
            shape = (-1, *([1] * (g.ndim - 1)))
            step = g * (lr.reshape(shape) if isinstance(lr, torch.Tensor) else lr)
            p.copy_(torch.where(ok.reshape(shape), p - step, p))
        active.copy_(ok)
        steps_done.add_(ok)


def train_captured(
    params: Params,
    values_fn: ValuesFn,
    next_index: Callable[[], torch.Tensor],
    *,
    steps: int,
    lr: float | torch.Tensor,
    warmup: int = 3,
    after_step: Callable[[int, Params], None] | None = None,
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """``steps`` guarded SGD steps replayed from one CUDA graph; returns ``(params, diverged, steps_done)``.

    ``next_index()`` gives each step's minibatch rows on the device (same size
    every step). ``lr`` is one learning rate or one per copy (``[K]``).
    ``after_step(step, params)`` runs after every replay, outside the graph, also
    once every copy has stopped (they keep their parameters, so reading them then
    gives what the last step left). The warm-up before capture runs on scratch
    copies, so it uses no minibatch of the run and changes none of its parameters.
    """
    first = next(iter(params.values()))
    K, device = first.shape[0], first.device
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    active = torch.ones(K, dtype=torch.bool, device=device)
    steps_done = torch.zeros(K, dtype=torch.long, device=device)
    if steps < 1:
        return params, ~active, steps_done
    static_index = next_index().clone()

    def warm_up():  # on scratch copies: the run's state is not touched
        scratch = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        masked_static_step(scratch, values_fn, static_index, active.clone(), steps_done.clone(), lr)

    replay = capture_step(
        lambda: masked_static_step(params, values_fn, static_index, active, steps_done, lr), warm_up, device, warmup
    )
    replay_steps(replay, next_index, static_index, params, steps=steps, after_step=after_step)
    return params, ~active, steps_done


def capture_step(
    step: Callable[[], None], warm_up: Callable[[], None], device: torch.device, warmup: int = 3
) -> Callable[[], None]:
    """Record ``step`` (sync-free, in place on static tensors) as a CUDA graph; returns its ``replay``.

    ``warm_up()`` runs ``warmup`` times first on a side stream (lazy initialisation, the
    caching allocator), on scratch copies of the state, so the run's state is not changed.
    """
    stream = torch.cuda.Stream(device=device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            warm_up()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # recorded, not run
        step()
    return graph.replay


def replay_steps(
    run_step: Callable[[], None],
    next_index: Callable[[], torch.Tensor],
    static_index: torch.Tensor,
    params: Params,
    *,
    steps: int,
    after_step: Callable[[int, Params], None] | None = None,
) -> None:
    """Run a recorded step ``steps`` times, loading each step's minibatch rows into ``static_index`` first.

    ``static_index`` already holds the first step's rows. ``run_step`` is
    ``graph.replay`` (or, in tests on CPU, the step run eagerly).
    """
    for step in range(1, steps + 1):
        if step > 1:
            static_index.copy_(next_index())
        run_step()
        if after_step is not None:
            after_step(step, params)
