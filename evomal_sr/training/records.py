"""What an evaluation says about one candidate loss: :class:`Status` and :class:`FitnessResult`.

Examples
--------
>>> r = FitnessResult("square((fx - y))", 0.25, "ok", (1.0, 1.0, 1.0), 4)
>>> r.status == "ok", r.trained
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum

from evomal_sr.core.fileio import float_from_json, float_to_json
from evomal_sr.errors import LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.symbolic import LearnedLoss


class Status(str, Enum):
    """What happened to a candidate; compares equal to its text (``Status.OK == "ok"``)."""

    OK = "ok"  # trained with its learned weights and scored
    REJECTED = "rejected"  # failed repair, the gradient check or the rejection protocol: fitness inf
    DIVERGED = "diverged"  # training stopped at a non-finite loss; scored as it was
    CACHED = "cached"  # the same expression was evaluated before
    EQUIVALENT = "equivalent"  # same probe gradients as an evaluated loss: its fitness is reused

    __str__ = str.__str__  # print the value, as the plain strings this replaces did


#: The statuses whose weights were learned for the candidate's own expression.
TRAINED_STATUSES = (Status.OK, Status.DIVERGED, Status.CACHED)


@dataclass(frozen=True)
class FitnessResult:
    """The outcome of evaluating one candidate loss.

    Attributes
    ----------
    expression : str
        Canonical text of the (repaired) expression that was scored.
    fitness : float
        Validation error rate (classification) or MSE (regression); ``inf``
        when rejected. Lower is better.
    status : Status
        See :class:`Status`; ``equivalent`` results point at ``reused_from``.
    weights : tuple of float
        Learned edge weights, in preorder (unit weights when none were learned).
    complexity : int
        Complexity of ``expression``.
    requested : str
        The text as it was handed in, before repair.
    reused_from : str or None
        For ``cached``/``equivalent``: the expression whose evaluation was reused.
    reason : str
        Why a candidate was rejected, empty otherwise.
    seconds : dict
        Time spent per phase, the batch's time shared among its members.
    scale : float
        The constant the loss is multiplied by (``loss_scaling="grad_norm"``; 1 otherwise).
    """

    expression: str
    fitness: float
    status: Status
    weights: tuple[float, ...]
    complexity: int
    requested: str = ""
    reused_from: str | None = None
    reason: str = ""
    seconds: dict = field(default_factory=dict)
    scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))  # accepts the plain text too

    @property
    def trained(self) -> bool:
        """Whether this result's weights were learned for its own expression."""
        return self.status in TRAINED_STATUSES and math.isfinite(self.fitness)

    def to_loss(self, task_kind: str, *, metadata: dict | None = None) -> LearnedLoss:
        """The learned loss this result describes."""
        return LearnedLoss(
            self.expression, task=task_kind, weights=list(self.weights), metadata=metadata, scale=self.scale
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["weights"] = list(self.weights)
        data["fitness"] = float_to_json(self.fitness)
        data["status"] = self.status.value
        if self.scale == 1.0:  # written only when used: checkpoints without scaling keep their bytes
            del data["scale"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FitnessResult:
        try:
            data = dict(data)
            data["fitness"] = float_from_json(data["fitness"])
            data["weights"] = tuple(float(w) for w in data["weights"])
            data["status"] = Status(data["status"])  # ValueError names the bad value
            str(Expression.parse(data["expression"]))
            return cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise LossFileError(f"malformed fitness record: {exc}") from None
