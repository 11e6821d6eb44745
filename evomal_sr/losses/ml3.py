"""ML3: a neural meta-loss trained by unrolled differentiation (Bechtle et al., 2021).

The loss network acts on each class element (or regression output) separately:
input ``[p, y]`` (the prediction ``fx`` and the target ``y``), two hidden layers
of 50 ReLU units without bias, and a softplus output; the values are summed over
classes and averaged over the batch, exactly like a learned symbolic loss. It has
``2*50 + 50*50 + 50*1 = 2,650`` parameters.

Training reuses EvoMAL's local search unchanged
(:func:`evomal_sr.training.local_search.local_search`): each meta-iteration takes a fresh
base-model initialisation, ``inner_steps`` differentiable SGD steps on a training
batch with the meta-loss, the task loss of the updated model on a validation
batch, and an Adam step on the meta-loss parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from evomal_sr.losses.flat import FlatParameterLoss

#: Width of both hidden layers.
HIDDEN = 50
#: ``(rows, columns)`` of the three weight matrices, in order.
SHAPES = ((HIDDEN, 2), (HIDDEN, HIDDEN), (1, HIDDEN))
#: Total parameter count: 2,650.
N_PARAMETERS = sum(r * c for r, c in SHAPES)


def ml3_function(theta: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """The elementwise ML3 loss of flat parameters ``theta`` on ``y``, ``fx`` (same shape).

    Examples
    --------
    >>> theta = initial_parameters(seed=0)
    >>> ml3_function(theta, torch.zeros(4, 3), torch.full((4, 3), 1 / 3)).shape
    torch.Size([4, 3])
    """
    matrices, start = [], 0
    for rows, cols in SHAPES:
        matrices.append(theta[start : start + rows * cols].reshape(rows, cols))
        start += rows * cols
    w1, w2, w3 = matrices
    h = torch.relu(torch.stack([fx, y], dim=-1) @ w1.T)
    h = torch.relu(h @ w2.T)
    return F.softplus(h @ w3.T).squeeze(-1)


def initial_parameters(*, seed: int) -> torch.Tensor:
    """PyTorch's default ``nn.Linear`` initialisation, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, seeded."""
    generator = torch.Generator().manual_seed(int(seed))
    parts = []
    for rows, cols in SHAPES:
        bound = 1.0 / math.sqrt(cols)
        parts.append((torch.rand(rows * cols, generator=generator) * 2 - 1) * bound)
    return torch.cat(parts)


class ML3Loss(FlatParameterLoss):
    """The ML3 meta-loss network as a training loss: ``loss(output, target)``.

    Parameters
    ----------
    task : {"classification", "regression"}
    parameters : sequence of float, optional
        The 2,650 flat parameters; a seeded default initialisation if omitted.
    seed : int
        Seed of the default initialisation.
    metadata : dict, optional

    Examples
    --------
    >>> import torch
    >>> loss = ML3Loss("classification", seed=0)
    >>> loss.n_parameters
    2650
    >>> loss(torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])).shape
    torch.Size([])
    """

    FORMAT = "evomal-sr/ml3-loss"
    N_PARAMETERS = N_PARAMETERS
    method_name = "ML3"
    function = staticmethod(ml3_function)

    def __init__(self, task: str = "classification", *, parameters=None, seed: int = 0, metadata: dict | None = None):
        if parameters is None:
            parameters = initial_parameters(seed=seed)
        super().__init__(task, parameters=parameters, metadata=metadata)

    def describe(self) -> str:
        return f"ML3 network [p, y] -> {HIDDEN} -> {HIDDEN} -> softplus, no bias"
