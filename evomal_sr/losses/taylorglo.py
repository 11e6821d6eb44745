"""TaylorGLO: a third-order bivariate Taylor polynomial loss tuned by CMA-ES.

Following Gonzalez & Miikkulainen (2021), the loss of a target ``x`` (here ``y``)
and a prediction ``y`` (here ``fx``) is the third-order Taylor expansion around
a learned centre ``(theta0, theta1)`` keeping only the terms whose gradient with
respect to the prediction is not zero (terms in the target alone cannot change
training)::

    L = t2 d + t3 d^2 / 2 + t4 d^3 / 6 + t5 e d + t6 e d^2 / 2 + t7 e^2 d / 2,
    d = fx - t1,  e = y - t0,

8 parameters in all. As for every loss here, ``L`` is evaluated per class
element (softmax probabilities, one-hot labels), summed over classes and
averaged over the batch. CMA-ES (the ``cma`` package; sigma 1.2, population 25,
mean starting at zero) minimises the validation error after the evaluator's
partial training; each generation's 25 candidates train together as one
population-batched program, from the same initialisation and minibatches.
"""

from __future__ import annotations

import torch

from evomal_sr.losses.flat import FlatParameterLoss

#: Number of parameters: centre (2) + six coefficients.
N_PARAMETERS = 8
#: CMA-ES settings of the TaylorGLO paper.
SIGMA = 1.2
POPULATION = 25


def taylor_function(theta: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """The elementwise TaylorGLO loss of the 8 parameters ``theta``.

    Examples
    --------
    >>> theta = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0])  # d^2/2 - e d: (fx - y)^2/2 - y^2/2
    >>> taylor_function(theta, torch.tensor([1.0]), torch.tensor([0.25]))
    tensor([-0.2188])
    """
    e, d = y - theta[0], fx - theta[1]
    return (
        theta[2] * d
        + theta[3] * d * d / 2
        + theta[4] * d * d * d / 6
        + theta[5] * e * d
        + theta[6] * e * d * d / 2
        + theta[7] * e * e * d / 2
    )


class TaylorGLOLoss(FlatParameterLoss):
    """A TaylorGLO loss as a training loss: ``loss(output, target)``.

    Examples
    --------
    >>> import torch
    >>> loss = TaylorGLOLoss("classification", parameters=[0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0])
    >>> loss.n_parameters
    8
    >>> loss(torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])).shape
    torch.Size([])
    """

    FORMAT = "evomal-sr/taylorglo-loss"
    N_PARAMETERS = N_PARAMETERS
    method_name = "TaylorGLO"
    function = staticmethod(taylor_function)

    def describe(self) -> str:
        values = ", ".join(f"{v:.3g}" for v in self.theta.detach().cpu().tolist())
        return f"TaylorGLO({values})"
