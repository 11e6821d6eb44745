"""The meta-loss network: a symbolic loss with one learnable weight per edge.

:class:`CompiledLoss` turns an :class:`~evomal_sr.grammar.expression.Expression` into a
pure function ``(weights, y, fx) -> elementwise loss`` in which the output of
every non-root node is multiplied by its own weight (constants included), in
preorder. With all weights equal to one it computes the symbolic loss exactly.
The evaluator uses the functional form for many candidates at once;
:class:`LearnedLoss` wraps it as a ``torch.nn.Module`` for users.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from evomal_sr._version import __version__
from evomal_sr.core.fileio import atomic_write_json, check_header, check_origin, is_finite_number, read_json
from evomal_sr.core.kinds import check_task_kind
from evomal_sr.errors import ConfigError, ExpressionError, LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import CONST, VAR, Node
from evomal_sr.grammar.operators import OPERATORS

FILE_FORMAT = "evomal-sr/learned-loss"
FILE_VERSION = 1
#: Scale of the noise added to the unit edge weights when local search starts.
INIT_NOISE = 1e-3


class CompiledLoss:
    """An expression compiled to ``(weights, y, fx) -> elementwise tensor``.

    ``weights`` is a 1-D tensor with at least :attr:`n_weights` entries; entry
    ``i`` scales the output of preorder node ``i + 1`` (the root has no edge).

    Examples
    --------
    >>> import torch
    >>> loss = CompiledLoss(Expression.parse("square(fx - y)"))
    >>> loss.n_weights
    3
    >>> loss(torch.ones(3), torch.zeros(2), torch.full((2,), 3.0))
    tensor([9., 9.])
    """

    def __init__(self, expression: Expression):
        self.expression = Expression.parse(expression)
        counter = iter(range(-1, self.expression.size))
        self._fn = compile_node(self.expression.root, counter)
        self.n_weights = self.expression.size - 1

    def __call__(self, weights: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        # one unbind instead of a select per edge, forward and backward (the same values)
        out = self._fn(weights.unbind(0) if self.n_weights else (), y, fx)
        if not isinstance(out, torch.Tensor) or out.shape != fx.shape:
            out = torch.broadcast_to(torch.as_tensor(out, dtype=fx.dtype), fx.shape)
        return out


def compile_node(node: Node, counter) -> Callable:
    """Closure ``(w, y, fx)`` for ``node``, ``w`` the edge weights as a sequence of scalars;
    ``counter`` yields preorder indices minus one (-1 for the whole tree's root, which has no edge)."""
    index = next(counter)  # -1 for the root, which carries no weight

    def weighted(fn):
        if index < 0:
            return fn
        return lambda w, y, fx: fn(w, y, fx) * w[index]

    if node.kind == VAR:
        return weighted((lambda w, y, fx: y) if node.value == "y" else (lambda w, y, fx: fx))
    if node.kind == CONST:
        value = node.number
        if index < 0:
            # not full_like: a constant beyond fx's dtype range must become inf, not raise
            return lambda w, y, fx: torch.zeros_like(fx) + value
        return lambda w, y, fx: w[index] * value
    op = OPERATORS[node.name].torch
    children = [compile_node(c, counter) for c in node.children]
    if len(children) == 1:
        (a,) = children
        return weighted(lambda w, y, fx: op(a(w, y, fx)))
    a, b = children
    return weighted(lambda w, y, fx: op(a(w, y, fx), b(w, y, fx)))


def output_to_fx(output: torch.Tensor, kind: str) -> torch.Tensor:
    """The ``fx`` a loss sees: softmax of the logits (sigmoid for one output) or the prediction.

    Works on any leading axes; the last axis holds classes or outputs.
    """
    if kind == "classification":
        return torch.sigmoid(output) if output.shape[-1] == 1 else torch.softmax(output, dim=-1)
    return output


def target_to_y(target: torch.Tensor, n_outputs: int, kind: str, dtype) -> torch.Tensor:
    """The ``y`` a loss sees, ``[batch, n_outputs]``: one-hot labels or the regression target."""
    if (
        kind == "classification"
        and n_outputs > 1
        and (
            target.ndim < 2 or target.shape[-1] != n_outputs  # 1-D labels even when batch == classes
        )
    ):
        return F.one_hot(target.long(), n_outputs).to(dtype)  # integer labels
    return target.reshape(-1, n_outputs).to(dtype)  # one-hot, binary labels, or regression targets


def prepare_inputs(output: torch.Tensor, target: torch.Tensor, kind: str):
    """Map model output and target to the ``(y, fx)`` a loss expression sees.

    Classification: ``fx`` is the softmax of the logits (sigmoid for a single
    output) and ``y`` the one-hot labels (integer labels or one-hot accepted).
    Regression: ``fx`` is the prediction and ``y`` the target, same shape.
    """
    if output.ndim == 1:
        output = output.unsqueeze(-1)
    fx = output_to_fx(output, kind)
    return target_to_y(target, fx.shape[-1], kind, fx.dtype), fx


def reduce_loss(elementwise: torch.Tensor, kind: str) -> torch.Tensor:
    """Sum over classes and mean over the batch (classification), or mean (regression)."""
    if kind == "classification":
        return elementwise.sum(dim=-1).mean()
    return elementwise.mean()


def initial_weights(
    n: int, *, generator: torch.Generator | None = None, noise: float = INIT_NOISE, dtype=torch.float32
) -> torch.Tensor:
    """Edge weights ``1 + noise * N(0, 1)`` (exactly one when ``noise`` is 0)."""
    weights = torch.ones(n, dtype=dtype)
    if noise and n:
        weights += noise * torch.randn(n, generator=generator, dtype=dtype)
    return weights


class LearnedLoss(torch.nn.Module):
    """A symbolic loss with learnable edge weights, usable as a training loss.

    Parameters
    ----------
    expression : Expression or str
        The loss ``L(y, fx)``.
    task : {"classification", "regression"}
        Classification calls are ``loss(logits, labels)``; regression calls are
        ``loss(prediction, target)``.
    weights : sequence of float, optional
        One weight per edge in preorder; all ones (the symbolic loss) by default.
    metadata : dict, optional
        Free-form JSON-ready information saved with the loss.
    scale : float
        A positive constant the loss is multiplied by (1: none). Searches with
        ``loss_scaling="grad_norm"`` store their normalisation here.

    Examples
    --------
    >>> import torch
    >>> loss = LearnedLoss("-(y * log(fx))", task="classification")
    >>> logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 0])
    >>> bool(torch.isclose(loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels)))
    True
    """

    def __init__(
        self,
        expression: Expression | str,
        task: str = "classification",
        *,
        weights=None,
        metadata: dict | None = None,
        scale: float = 1.0,
    ):
        super().__init__()
        self.scale = check_scale(scale, error=ExpressionError)
        self.expression = Expression.parse(expression)
        self.task = check_task_kind(task)
        # the fields load() reads back are checked now, so that a loss saved is a loss that loads
        self.metadata = dict(check_origin(dict(metadata or {}), error=ConfigError, what="metadata"))
        self._compiled = CompiledLoss(self.expression)
        n = self._compiled.n_weights
        if weights is None:
            values = torch.ones(n)
        else:
            values = torch.as_tensor(weights, dtype=torch.float32).detach().clone().reshape(-1)
            if values.numel() != n:
                raise ExpressionError(f"{self.expression} has {n} edges, got {values.numel()} weights")
            if not torch.isfinite(values).all():
                raise ExpressionError("edge weights must be finite")
        self.weights = torch.nn.Parameter(values)

    def __getstate__(self):  # the compiled closures cannot be pickled; they are rebuilt on load
        state = self.__dict__.copy()
        state.pop("_compiled", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._compiled = CompiledLoss(self.expression)

    def elementwise(self, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        """The weighted (and scaled) expression on already-prepared ``y`` and ``fx`` (no reduction)."""
        values = self._compiled(self.weights, y, fx)
        return values if self.scale == 1.0 else values * self.scale

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y, fx = prepare_inputs(output, target, self.task)
        return reduce_loss(self.elementwise(y.to(self.weights.dtype), fx.to(self.weights.dtype)), self.task)

    def extra_repr(self) -> str:
        scale = "" if self.scale == 1.0 else f", scale={self.scale!r}"
        return f"expression={str(self.expression)!r}, task={self.task!r}{scale}"

    @property
    def compiled(self) -> CompiledLoss:
        """The compiled tree; the edge weights are an argument of its call."""
        return self._compiled

    @property
    def n_parameters(self) -> int:
        """Number of learnable weights (one per edge)."""
        return self.weights.numel()

    def expression_with_weights(self) -> Expression:
        """The expression with each edge weight (and the scale) folded in as a constant factor."""
        values = [float(v) for v in self.weights.detach().cpu().tolist()]
        counter = iter(range(-1, len(values)))
        root = _fold(self.expression.root, values, counter)
        return Expression(root if self.scale == 1.0 else Node.apply("*", (Node.constant(self.scale), root)))

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "expression": str(self.expression),
            "weights": [float(v) for v in self.weights.detach().cpu().tolist()],
            "task": self.task,
            "evomal_sr_version": __version__,
            "metadata": self.metadata,
        }
        if self.scale != 1.0:  # written only when used: unscaled files keep their bytes
            data["scale"] = self.scale
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LearnedLoss:
        """Rebuild a loss from :meth:`to_dict` output, refusing anything malformed."""
        check_header(data, FILE_FORMAT, FILE_VERSION, what="learned-loss record", error=LossFileError)
        weights = data.get("weights")
        if not isinstance(weights, list) or not all(map(is_finite_number, weights)):
            raise LossFileError("'weights' must be a list of finite numbers")
        metadata = check_origin(data.get("metadata", {}), error=LossFileError, what="loss 'metadata'")
        try:
            return cls(
                data.get("expression"),
                task=data.get("task"),
                weights=weights,
                metadata=metadata,
                scale=data.get("scale", 1.0),
            )
        except (ExpressionError, ConfigError) as exc:
            raise LossFileError(f"invalid learned loss: {exc}") from None

    def save(self, path) -> Path:
        """Write the loss as JSON (atomically); :meth:`load` gives identical values."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> LearnedLoss:
        """Read a loss written by :meth:`save`; raises :class:`LossFileError` on bad files."""
        return cls.from_dict(read_json(path, LossFileError, "learned-loss file"))


def check_scale(value, *, error=LossFileError) -> float:
    """A loss scale: a finite positive number (``error`` otherwise, naming the value)."""
    if not is_finite_number(value) or value <= 0:
        raise error(f"a loss scale must be a finite number > 0, got {value!r:.40}")
    return float(value)


def _fold(node: Node, weights: list[float], counter) -> Node:
    index = next(counter)
    if node.kind == CONST:
        return Node.constant(node.number * (weights[index] if index >= 0 else 1.0))
    if node.kind == VAR:
        folded = node
    else:
        folded = Node.apply(node.name, tuple(_fold(c, weights, counter) for c in node.children))
    if index < 0 or weights[index] == 1.0:
        return folded
    return Node.apply("*", (Node.constant(weights[index]), folded))
