"""A zoo of known losses, the baselines a learned loss must beat: one registry.

Every zoo loss is an ``nn.Module`` with the package's convention,
``loss(logits, labels)`` for classification and ``loss(pred, target)`` for
regression, its textbook parameters as defaults, ``task``, ``name`` and
``n_parameters = 0``. Each is defined once, by its per-sample value
:meth:`KnownLoss.per_sample` over any leading axes, so the same definition
serves one model (``forward``: the batch mean) and a population of stacked
copies (``per_copy``: one mean per copy). A single-output classifier (binary
task) is read as the two logits ``[0, z]``, i.e. ``p = sigmoid(z)``.

Examples
--------
>>> import torch
>>> loss = known_loss("gce", "classification")
>>> logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
>>> p_y = torch.softmax(logits, -1)[torch.arange(6), labels]
>>> bool(torch.isclose(loss(logits, labels), ((1 - p_y ** 0.7) / 0.7).mean()))
True
>>> sorted(KNOWN_LOSSES)
['classification', 'regression']
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from evomal_sr.core.kinds import check_task_kind
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.operators import check_operator_set


class KnownLoss(torch.nn.Module):
    """Base of the zoo: ``per_sample(output, target) -> [..., batch]`` defines the loss."""

    name = ""
    task = ""
    n_parameters = 0

    def per_sample(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_sample(output, target).mean()

    def per_copy(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The loss of copy ``k`` of ``outputs [K, batch, out]`` on ``targets[k]`` -> ``[K]``."""
        return self.per_sample(outputs, targets).mean(dim=-1)

    def describe(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.params().items())
        return f"{self.name}({params})" if params else self.name

    def params(self) -> dict:
        return {}


# -- classification ------------------------------------------------------------------------


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:  # binary: p = sigmoid(z) from the two logits [0, z]
        logits = torch.cat([torch.zeros_like(logits), logits], dim=-1)
    return torch.log_softmax(logits, dim=-1)


def _picked(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``values[..., i, labels[..., i]]`` -> ``[..., batch]``."""
    return values.gather(-1, labels.long().unsqueeze(-1).expand(*values.shape[:-1], 1)).squeeze(-1)


class _Classification(KnownLoss):
    task = "classification"


class CrossEntropy(_Classification):
    """Cross-entropy ``-log p_y``, the standard classification loss.

    Examples
    --------
    >>> import torch
    >>> logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 0])
    >>> bool(torch.isclose(CrossEntropy()(logits, labels), torch.nn.functional.cross_entropy(logits, labels)))
    True
    """

    name = "cross-entropy"

    def per_sample(self, output, target):
        return -_picked(_log_probs(output), target)


class LabelSmoothing(_Classification):
    """Cross-entropy against targets smoothed by ``epsilon`` (Szegedy et al., CVPR 2016).

    ``(1 - eps) * (-log p_y) + eps * mean_c(-log p_c)``, as ``F.cross_entropy(label_smoothing=eps)``.
    """

    name = "label-smoothing"

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        self.epsilon = float(epsilon)

    def params(self):
        return {"epsilon": self.epsilon}

    def per_sample(self, output, target):
        logp = _log_probs(output)
        return (1 - self.epsilon) * -_picked(logp, target) - self.epsilon * logp.mean(dim=-1)


class Focal(_Classification):
    """Focal loss ``-(1 - p_y)^gamma log p_y`` (Lin et al., ICCV 2017), without class weights."""

    name = "focal"

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = float(gamma)

    def params(self):
        return {"gamma": self.gamma}

    def per_sample(self, output, target):
        logp_y = _picked(_log_probs(output), target)
        return -((1 - logp_y.exp()) ** self.gamma) * logp_y


class MAE(_Classification):
    """Mean absolute error on the softmax, ``sum_c |p_c - y_c| = 2 (1 - p_y)`` (Ghosh et al., AAAI 2017)."""

    name = "mae"

    def per_sample(self, output, target):
        return 2.0 * (1.0 - _picked(_log_probs(output), target).exp())


class GCE(_Classification):
    """Generalised cross-entropy ``(1 - p_y^q) / q`` (Zhang & Sabuncu, NeurIPS 2018)."""

    name = "gce"

    def __init__(self, q: float = 0.7):
        super().__init__()
        self.q = float(q)

    def params(self):
        return {"q": self.q}

    def per_sample(self, output, target):
        p_y = _picked(_log_probs(output), target).exp()
        return (1.0 - p_y**self.q) / self.q


class SCE(_Classification):
    """Symmetric cross-entropy ``alpha CE + beta RCE`` (Wang et al., ICCV 2019).

    The reverse cross-entropy ``-sum_c p_c log y_c`` takes ``log 0 = A = -4`` as
    the paper does, so ``RCE = -A (1 - p_y)``.
    """

    name = "sce"

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0):
        super().__init__()
        self.alpha, self.beta, self.log_zero = float(alpha), float(beta), float(log_zero)

    def params(self):
        return {"alpha": self.alpha, "beta": self.beta}

    def per_sample(self, output, target):
        logp_y = _picked(_log_probs(output), target)
        return self.alpha * -logp_y + self.beta * -self.log_zero * (1.0 - logp_y.exp())


class Poly1(_Classification):
    """PolyLoss Poly-1, ``-log p_y + epsilon (1 - p_y)`` (Leng et al., ICLR 2022)."""

    name = "poly1"

    def __init__(self, epsilon: float = 1.0):
        super().__init__()
        self.epsilon = float(epsilon)

    def params(self):
        return {"epsilon": self.epsilon}

    def per_sample(self, output, target):
        logp_y = _picked(_log_probs(output), target)
        return -logp_y + self.epsilon * (1.0 - logp_y.exp())


class Brier(_Classification):
    """Squared error on the softmax, ``sum_c (p_c - y_c)^2`` (the Brier score; Brier, 1950)."""

    name = "squared-error"

    def per_sample(self, output, target):
        p = _log_probs(output).exp()
        y = F.one_hot(target.long(), p.shape[-1]).to(p.dtype)
        return ((p - y) ** 2).sum(dim=-1)


# -- regression ----------------------------------------------------------------------------


class _Regression(KnownLoss):
    task = "regression"

    def per_sample(self, output, target):
        target = target.to(output.dtype).reshape(output.shape)
        return self.elementwise(output - target).mean(dim=-1)

    def elementwise(self, residual: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class MSE(_Regression):
    """Mean squared error, the standard regression loss (``F.mse_loss``)."""

    name = "mse"

    def elementwise(self, residual):
        return residual**2


class AbsoluteError(_Regression):
    """Mean absolute error (``F.l1_loss``); robust to outlier targets."""

    name = "mae"

    def elementwise(self, residual):
        return residual.abs()


class Huber(_Regression):
    """Huber loss with threshold ``delta`` (Huber, 1964; ``F.huber_loss``)."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        super().__init__()
        self.delta = float(delta)

    def params(self):
        return {"delta": self.delta}

    def elementwise(self, residual):
        return _huber(residual, self.delta)


def _huber(residual: torch.Tensor, delta: float | torch.Tensor) -> torch.Tensor:
    """Huber's function of ``residual``: quadratic up to ``delta``, linear beyond (``delta`` broadcasts)."""
    a = residual.abs()
    return torch.where(a <= delta, 0.5 * residual**2, delta * (a - 0.5 * delta))


class AdaptiveHuber(_Regression):
    """Huber loss whose threshold follows the residuals' robust scale (Huber, 1964; 1981, ch. 7).

    ``delta = c * 1.4826 * median|r|`` over each copy's batch (the median absolute residual, scaled to
    the standard deviation of normal residuals), held constant in the gradient. With ``c = 1.345``, the
    textbook constant, it is 95% as efficient as the mean under normal residuals and bounds the pull of
    outliers to about ``c`` typical residuals: MSE-like where the residuals are near normal, MAE-like on
    the few far ones, whatever the targets' scale.

    Examples
    --------
    >>> import torch
    >>> pred, target = torch.tensor([[0.1], [-0.2], [0.3], [5.0]]), torch.zeros(4)
    >>> loss = AdaptiveHuber()
    >>> round(loss.threshold(pred - target[:, None]).item(), 4)  # 1.345 * 1.4826 * median(0.1, 0.2, 0.3, 5.0)
    0.3988
    """

    name = "adaptive-huber"

    def __init__(self, c: float = 1.345):
        super().__init__()
        self.c = float(c)

    def params(self):
        return {"c": self.c}

    def threshold(self, residual: torch.Tensor) -> torch.Tensor:
        """``delta`` per copy, shaped to broadcast against ``residual`` (``[..., batch, out]``)."""
        a = residual.detach().abs()
        rows = a.reshape(*a.shape[:-2], -1) if a.dim() >= 2 else a
        scale = 1.4826 * rows.median(dim=-1, keepdim=True).values  # the lower middle value for an even count
        delta = (self.c * scale).clamp_min(1e-6)  # all residuals zero: a tiny quadratic zone, no division
        return delta.unsqueeze(-1) if a.dim() >= 2 else delta

    def elementwise(self, residual):
        return _huber(residual, self.threshold(residual))


class LogCosh(_Regression):
    """``log(cosh(r))`` of the residual (e.g. Chen et al., 2019), computed without overflow."""

    name = "log-cosh"

    def elementwise(self, residual):
        a = residual.abs()
        return a + F.softplus(-2.0 * a) - math.log(2.0)


#: Zoo classes per task kind, by name.
_ZOO: dict[str, dict[str, type[KnownLoss]]] = {
    "classification": {c.name: c for c in (CrossEntropy, LabelSmoothing, Focal, MAE, GCE, SCE, Poly1, Brier)},
    "regression": {c.name: c for c in (MSE, AbsoluteError, Huber, LogCosh, AdaptiveHuber)},
}

#: Names of the known losses per task kind.
KNOWN_LOSSES: dict[str, tuple[str, ...]] = {kind: tuple(losses) for kind, losses in _ZOO.items()}


def known_loss(name: str, task_kind: str, **params) -> KnownLoss:
    """The zoo loss ``name`` for ``task_kind``, with textbook defaults overridden by ``params``.

    Raises
    ------
    ConfigError
        For an unknown name (the valid names of that task kind are listed), a loss
        of the other task kind, or an unknown parameter.

    Examples
    --------
    >>> known_loss("huber", "regression", delta=0.5).delta
    0.5
    """
    kind = check_task_kind(task_kind)
    if name not in _ZOO[kind]:
        other = next((k for k in _ZOO if k != kind and name in _ZOO[k]), None)
        where = f"; {name!r} is a {other} loss" if other else ""
        raise ConfigError(f"unknown {kind} loss {name!r}{where}; choose one of {', '.join(KNOWN_LOSSES[kind])}")
    try:
        return _ZOO[kind][name](**params)
    except TypeError:
        raise ConfigError(f"{name} takes no parameter(s) {', '.join(sorted(params))}") from None


#: Known losses written in the loss grammar (``fx`` the softmax or prediction, ``y`` the one-hot
#: labels or target; the elementwise value summed over classes): name -> (expression, operator set).
#: Each computes its zoo loss up to a positive factor and an additive constant, which an SGD
#: learning rate and the edge weights absorb; ``initial_losses="zoo"`` seeds a search with them.
ZOO_EXPRESSIONS: dict[str, dict[str, tuple[str, str]]] = {
    "classification": {
        "cross-entropy": ("-(y * log(fx))", "paper"),
        "mae": ("abs((fx - y))", "paper"),  # 2 (1 - p_y)
        "sce": ("(-(y * log(fx)) + abs((fx - y)))", "paper"),  # CE + 0.5 x MAE: alpha 1, beta A
        "squared-error": ("square((fx - y))", "paper"),
        "poly1": ("(-(y * log(fx)) + (y * (1.0 - fx)))", "paper"),
        "focal": ("-((y * square((1.0 - fx))) * log(fx))", "paper"),
        "gce": ("(y * (1.0 - exp((0.7 * log(fx)))))", "extended"),  # q (1 - p_y^q) / q
    },
    "regression": {
        "mse": ("square((fx - y))", "paper"),
        "mae": ("abs((fx - y))", "paper"),
        "pseudo-huber": ("sqrt((1.0 + square((fx - y))))", "paper"),
        "log-cosh": ("log((exp((fx - y)) + exp((y - fx))))", "extended"),  # log 2 + log cosh
        "huber": ("huber((fx - y))", "robust"),  # delta 1 exactly
    },
}


def zoo_expressions(task_kind: str, operator_set: str = "paper") -> list[str]:
    """The known losses of ``task_kind`` that ``operator_set`` can write, as expression texts.

    Examples
    --------
    >>> zoo_expressions("regression")
    ['square((fx - y))', 'abs((fx - y))', 'sqrt((1.0 + square((fx - y))))']
    """
    groups = check_operator_set(operator_set)
    return [text for text, needs in ZOO_EXPRESSIONS[check_task_kind(task_kind)].values() if needs in groups]
