"""Baselines a learned loss is compared with, on the same evaluator machinery.

* :class:`StandardLoss` -- cross-entropy or MSE, what :func:`~evomal_sr.evaluation.metatest.meta_test`
  compares every loss with.
* ``GP-LFL`` -- EvoMAL's genetic programming without local search:
  :func:`search_gplfl` (``LossSearch(local_search=False)``).
* ``ML3`` -- a neural meta-loss (2,650 parameters) trained by the same unrolled
  differentiation as EvoMAL's local search: :func:`~evomal_sr.losses.ml3.train_ml3`.
* ``TaylorGLO`` -- a third-order bivariate Taylor polynomial (8 parameters)
  tuned by CMA-ES: :func:`~evomal_sr.losses.taylorglo.train_taylorglo`.

Each yields a ``torch.nn.Module`` called as ``loss(output, target)`` with
``.task`` and ``.n_parameters``, which ``meta_test`` accepts. The submodules
load lazily, so ``import evomal_sr.losses.baselines`` does not import ``cma``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from evomal_sr._version import __version__
from evomal_sr.core.fileio import atomic_write_json, is_finite_number, read_json
from evomal_sr.errors import ConfigError, LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import CONST, VAR, Node
from evomal_sr.losses.symbolic import FILE_FORMAT as LEARNED_FORMAT
from evomal_sr.losses.symbolic import LearnedLoss, check_task_kind, prepare_inputs, reduce_loss

_LAZY = {"ML3Loss": "ml3", "train_ml3": "ml3", "TaylorGLOLoss": "taylorglo", "train_taylorglo": "taylorglo"}

__all__ = ["FlatParameterLoss", "StandardLoss", "count_parameters", "describe_loss", "load_loss", "resolve_loss",
           "search_gplfl", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evomal_sr.losses.baselines' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


class StandardLoss(torch.nn.Module):
    """The standard loss of a task kind: cross-entropy (binary for one output) or MSE.

    This is the baseline of :func:`~evomal_sr.evaluation.metatest.meta_test`. It equals
    ``LearnedLoss(task.baseline_expression)`` up to the protected logarithm's
    floor, but is computed the usual way (``torch.nn.functional``).

    Examples
    --------
    >>> import torch
    >>> loss = StandardLoss("classification")
    >>> logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 0])
    >>> bool(torch.isclose(loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels)))
    True
    >>> loss.name, loss.n_parameters
    ('cross-entropy', 0)
    """

    n_parameters = 0

    def __init__(self, task: str = "classification"):
        super().__init__()
        self.task = check_task_kind(task)
        self.name = "cross-entropy" if self.task == "classification" else "MSE"

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.ndim == 1:
            output = output.unsqueeze(-1)
        if self.task == "regression":
            return F.mse_loss(output, target.reshape(output.shape).to(output.dtype))
        if output.shape[-1] == 1:
            return F.binary_cross_entropy_with_logits(output, target.reshape(output.shape).to(output.dtype))
        return F.cross_entropy(output, target.long())

    def describe(self) -> str:
        return self.name


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
            raise LossFileError(f"{self.method_name} needs {self.N_PARAMETERS} finite parameters, "
                                f"got {values.numel()}")
        self.theta = torch.nn.Parameter(values)
        self.metadata = dict(metadata or {})

    @staticmethod
    def function(theta: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

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
        return {"format": self.FORMAT, "version": 1, "task": self.task,
                "parameters": [float(v) for v in self.theta.detach().cpu().tolist()],
                "evomal_sr_version": __version__, "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: Any):
        """Rebuild a loss from :meth:`to_dict` output, refusing anything malformed."""
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise LossFileError(f"not an evomal-sr {cls.method_name} loss (expected format {cls.FORMAT!r})")
        if data.get("version") != 1:
            raise LossFileError(f"unsupported {cls.method_name} loss version {data.get('version')!r}")
        values = data.get("parameters")
        if not isinstance(values, list) or not all(map(is_finite_number, values)):
            raise LossFileError("'parameters' must be a list of finite numbers")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict) or data.get("task") not in ("classification", "regression"):
            raise LossFileError("'metadata' must be an object and 'task' 'classification' or 'regression'")
        return cls(data["task"], parameters=values, metadata=metadata)

    def save(self, path) -> Path:
        """Write the loss as JSON (atomically); :meth:`load` gives identical values."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        return cls.from_dict(read_json(path, LossFileError, f"{cls.method_name} loss file"))


def baseline_formats() -> dict[str, type]:
    """``format`` field -> class, for the saved baseline losses."""
    from evomal_sr.losses.ml3 import ML3Loss
    from evomal_sr.losses.taylorglo import TaylorGLOLoss

    return {ML3Loss.FORMAT: ML3Loss, TaylorGLOLoss.FORMAT: TaylorGLOLoss}


def load_loss(path) -> torch.nn.Module:
    """Load a saved loss: a learned loss, an ML3 loss or a TaylorGLO loss (by its ``format``).

    Raises
    ------
    LossFileError
        If the file is missing, malformed, or of no known loss format.

    Examples
    --------
    >>> import os, tempfile
    >>> from evomal_sr.losses.symbolic import LearnedLoss
    >>> path = os.path.join(tempfile.mkdtemp(), "loss.json")
    >>> _ = LearnedLoss("square(fx - y)", task="regression").save(path)
    >>> load_loss(path).task
    'regression'
    """
    data = read_json(path, LossFileError, "loss file")
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt == LEARNED_FORMAT:
        return LearnedLoss.from_dict(data)
    formats = baseline_formats()
    if fmt in formats:
        return formats[fmt].from_dict(data)
    known = ", ".join([LEARNED_FORMAT, *formats])
    raise LossFileError(f"{str(path)!r} is not a saved loss (format {fmt!r}; expected one of {known})")


def describe_loss(module: torch.nn.Module) -> str:
    """A loss in words: the expression with its weights (4 significant digits) folded in, or its description.

    Examples
    --------
    >>> from evomal_sr.losses.symbolic import LearnedLoss
    >>> describe_loss(LearnedLoss("square(fx - y)", task="regression", weights=[1.0, 2.00001, 1.0]))
    'square(((2.0 * fx) - y))'
    """
    if isinstance(module, LearnedLoss):
        return str(Expression(_rounded(module.expression_with_weights().root)))
    describe = getattr(module, "describe", None)
    return describe() if callable(describe) else type(module).__name__


def _rounded(node: Node) -> Node:
    """``node`` with every constant rounded to 4 significant digits (float32 weights print long)."""
    if node.kind == CONST:
        return Node.constant(float(f"{node.value:.4g}"))
    if node.kind == VAR:
        return node
    return Node.apply(node.value, tuple(_rounded(c) for c in node.children))


def count_parameters(module: torch.nn.Module) -> int:
    """The loss's ``n_parameters``, else the number of its parameter elements."""
    count = getattr(module, "n_parameters", None)
    if isinstance(count, int):
        return count
    return sum(p.numel() for p in module.parameters())


def resolve_loss(loss, task_kind: str) -> torch.nn.Module:
    """Turn what :func:`~evomal_sr.evaluation.metatest.meta_test` accepts into a loss module for ``task_kind``.

    ``loss`` may be a :class:`~evomal_sr.losses.symbolic.LearnedLoss` or any
    ``torch.nn.Module`` called as ``loss(output, target)`` with a ``task``
    attribute, a path to a saved loss, a :class:`~evomal_sr.results.front.FrontEntry`
    (taken to be of ``task_kind``) or a :class:`~evomal_sr.results.front.ParetoFront`
    (its most accurate entry).

    Raises
    ------
    ConfigError
        If ``loss`` is of another task kind (transfer refusal) or unusable.

    Examples
    --------
    >>> resolve_loss(LearnedLoss("square(fx - y)", task="regression"), "regression").task
    'regression'
    """
    from evomal_sr.results.front import FrontEntry, ParetoFront

    if isinstance(loss, (str, Path)):
        loss = load_loss(loss)
    elif isinstance(loss, ParetoFront):
        loss = loss.best_loss("accuracy")
    elif isinstance(loss, FrontEntry):
        loss = loss.loss(task_kind)
    if not isinstance(loss, torch.nn.Module):
        raise ConfigError(f"cannot meta-test a {type(loss).__name__}: pass a LearnedLoss, a loss module, "
                          "a path to a saved loss, a FrontEntry or a ParetoFront")
    kind = getattr(loss, "task", None)
    if kind not in ("classification", "regression"):
        raise ConfigError(f"the loss module {type(loss).__name__} needs a 'task' attribute, "
                          "'classification' or 'regression'")
    if kind != task_kind:
        raise ConfigError(
            f"cannot transfer a {kind} loss to a {task_kind} task: a {kind} loss sees "
            + ("softmax probabilities and one-hot labels" if kind == "classification" else "real-valued targets")
            + f", a {task_kind} task gives "
            + ("class labels" if task_kind == "classification" else "real-valued targets")
        )
    return loss


def search_gplfl(task, *, preset="quick", seed: int = 0, device: str = "cpu", **overrides):
    """GP-LFL: EvoMAL's search without local search; returns the fitted ``LossSearch``.

    Examples
    --------
    >>> import evomal_sr as es
    >>> search = search_gplfl(es.Task.builtin("iris"), preset="tiny")  # doctest: +SKIP
    >>> search.best_loss_  # doctest: +SKIP
    """
    from evomal_sr.search.estimator import LossSearch

    return LossSearch(preset=preset, seed=seed, device=device, local_search=False, **overrides).fit(task)
