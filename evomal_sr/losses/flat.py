"""Losses whose parameters are one flat vector (ML3's network, TaylorGLO's polynomial)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from evomal_sr._version import __version__
from evomal_sr.core.fileio import atomic_write_json, check_header, check_origin, is_finite_number, read_json
from evomal_sr.core.kinds import check_task_kind
from evomal_sr.errors import LossFileError
from evomal_sr.losses.symbolic import prepare_inputs, reduce_loss


class FlatParameterLoss(torch.nn.Module):
    """A loss ``L(y, fx)`` whose parameters are one flat vector, with the usual semantics.

    Subclasses set :attr:`FORMAT`, :attr:`N_PARAMETERS`, :attr:`method_name` and
    implement ``function(theta, y, fx)`` (elementwise, any leading axes). ``y``
    and ``fx`` are prepared as for a learned loss (softmax probabilities and
    one-hot labels, or prediction and target); the result is summed over
    classes and averaged over the batch (classification) or averaged (regression).
    """

    FORMAT = ""
    N_PARAMETERS = 0
    method_name = ""

    def __init__(self, task: str = "classification", *, parameters, metadata: dict | None = None):
        super().__init__()
        self.task = check_task_kind(task)
        values = torch.as_tensor(parameters, dtype=torch.float32).detach().clone().reshape(-1)
        if values.numel() != self.N_PARAMETERS or not torch.isfinite(values).all():
            raise LossFileError(f"{self.method_name} needs {self.N_PARAMETERS} finite parameters, got {values.numel()}")
        self.theta = torch.nn.Parameter(values)
        self.metadata = dict(metadata or {})

    @staticmethod
    def function(theta: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def compiled(cls) -> FlatCompiled:
        """This loss in the evaluator's ``(weights, y, fx) -> elementwise`` form (see ``CompiledLoss``)."""
        return FlatCompiled(cls.function, cls.N_PARAMETERS)

    @property
    def n_parameters(self) -> int:
        """Number of learnable parameters."""
        return self.theta.numel()

    def elementwise(self, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        return self.function(self.theta, y, fx)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y, fx = prepare_inputs(output, target, self.task)
        return reduce_loss(self.elementwise(y.to(self.theta.dtype), fx.to(self.theta.dtype)), self.task)

    def extra_repr(self) -> str:
        return f"task={self.task!r}, n_parameters={self.n_parameters}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "version": 1,
            "task": self.task,
            "parameters": [float(v) for v in self.theta.detach().cpu().tolist()],
            "evomal_sr_version": __version__,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Any):
        """Rebuild a loss from :meth:`to_dict` output, refusing anything malformed."""
        check_header(data, cls.FORMAT, 1, what=f"{cls.method_name} loss", error=LossFileError)
        values = data.get("parameters")
        if not isinstance(values, list) or not all(map(is_finite_number, values)):
            raise LossFileError("'parameters' must be a list of finite numbers")
        metadata = check_origin(data.get("metadata", {}), error=LossFileError, what="loss 'metadata'")
        if data.get("task") not in ("classification", "regression"):
            raise LossFileError("'task' must be 'classification' or 'regression'")
        return cls(data["task"], parameters=values, metadata=metadata)

    def save(self, path) -> Path:
        """Write the loss as JSON (atomically); :meth:`load` gives identical values."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        return cls.from_dict(read_json(path, LossFileError, f"{cls.method_name} loss file"))


class FlatCompiled:
    """A flat-parameter function as a compiled loss: the first ``n_weights`` weights are its parameters."""

    def __init__(self, function, n_weights: int):
        self.function, self.n_weights = function, int(n_weights)

    def __call__(self, weights: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        return self.function(weights[: self.n_weights], y, fx)
