"""Base-model builders: the networks a learned loss trains.

:data:`MODELS` is the one registry of built-in builders, each called as
``builder(n_features=..., n_outputs=..., input_shape=...)`` and returning a
``torch.nn.Module`` that maps a float32 ``[batch, n_features]`` tensor to
``[batch, n_outputs]``. :func:`build_model` accepts a registry name or any user
callable returning an ``nn.Module`` and can initialise it deterministically.

``linear``, ``mlp`` and ``cnn`` hold no buffers, batch norm or dropout. The
paper's image models (:mod:`evomal_sr.data.paper_models`: ``lenet5``,
``allcnnc``, ``vgg11``, ``vgg16``, ``resnet18``) have BatchNorm or Dropout; any
model works with the stacked training (per-copy running statistics, per-copy
seeded dropout, see :mod:`evomal_sr.training.stacked`).

Model-factory convention
------------------------
A user factory is any callable returning a *new* ``nn.Module``. It is called with
those of the keywords ``n_features`` (int), ``n_outputs`` (int: classes, or
regression outputs) and ``input_shape`` (tuple: one example's shape before
flattening) that it accepts (all of them with ``**kwargs``, none if it takes no
parameters). The module must map float32 ``[batch, n_features]`` to
``[batch, n_outputs]`` (logits for classification); this is checked once on a
``[2, n_features]`` input.

Examples
--------
>>> import torch
>>> net = build_model("mlp", n_features=64, n_outputs=10, input_shape=(8, 8), seed=0)
>>> net(torch.zeros(5, 64)).shape
torch.Size([5, 10])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import nn

from evomal_sr.data.paper_models import PAPER_MODELS
from evomal_sr.errors import TaskError

#: Hidden layer widths of the ``mlp`` model (the paper's 64-100-100-10 on digits).
MLP_HIDDEN = (100, 100)
#: Channels of the two convolution blocks of the ``cnn`` model.
CNN_CHANNELS = (16, 32)

ModelBuilder = Callable[..., nn.Module]


def build_linear(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """A single linear layer (multinomial logistic / linear regression).

    Examples
    --------
    >>> build_linear(n_features=4, n_outputs=3)
    Linear(in_features=4, out_features=3, bias=True)
    """
    return nn.Linear(n_features, n_outputs)


def build_mlp(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """Fully connected network with ReLU hidden layers of widths :data:`MLP_HIDDEN`.

    Examples
    --------
    >>> net = build_mlp(n_features=64, n_outputs=10)
    >>> [m.out_features for m in net if isinstance(m, nn.Linear)]
    [100, 100, 10]
    """
    layers: list[nn.Module] = []
    width = n_features
    for hidden in MLP_HIDDEN:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Two conv-ReLU-max-pool blocks and a linear head, on flat inputs.

    The flat ``[batch, n_features]`` input is reshaped to one example per
    ``input_shape``: a 2-D shape ``(H, W)`` gives a 2-D CNN (3x3 kernels), a 3-D
    shape ``(C, H, W)`` a 2-D CNN with ``C`` input channels, and anything else a
    1-D CNN over the ``n_features`` values (5-wide kernels).

    Examples
    --------
    >>> import torch
    >>> net = SmallCNN(n_features=40, n_outputs=10, input_shape=(40,))
    >>> net(torch.zeros(2, 40)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, n_features: int, n_outputs: int, input_shape: tuple = ()):
        super().__init__()
        shape = tuple(int(s) for s in input_shape) or (n_features,)
        if math.prod(shape) != n_features:
            raise TaskError(
                f"cnn: input_shape {shape} has {math.prod(shape)} values, but the data has {n_features} features"
            )
        if len(shape) in (2, 3):
            self.example_shape = shape if len(shape) == 3 else (1, *shape)
            conv, pool, kernel = nn.Conv2d, nn.MaxPool2d, 3
        else:
            self.example_shape = (1, n_features)
            conv, pool, kernel = nn.Conv1d, nn.MaxPool1d, 5
        c1, c2 = CNN_CHANNELS
        self.features = nn.Sequential(
            conv(self.example_shape[0], c1, kernel, padding=kernel // 2),
            nn.ReLU(),
            pool(2, ceil_mode=True),
            conv(c1, c2, kernel, padding=kernel // 2),
            nn.ReLU(),
            pool(2, ceil_mode=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *self.example_shape)).shape[-1]
        self.head = nn.Linear(flat, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(-1, *self.example_shape)))


def build_cnn(*, n_features: int, n_outputs: int, input_shape: tuple = ()) -> nn.Module:
    """Small CNN (:class:`SmallCNN`), 2-D for 2-D ``input_shape``, else 1-D.

    Examples
    --------
    >>> import torch
    >>> build_cnn(n_features=64, n_outputs=10, input_shape=(8, 8))(torch.zeros(3, 64)).shape
    torch.Size([3, 10])
    """
    return SmallCNN(n_features=n_features, n_outputs=n_outputs, input_shape=input_shape)


#: The built-in model builders, by name.
MODELS: dict[str, ModelBuilder] = {"linear": build_linear, "mlp": build_mlp, "cnn": build_cnn, **PAPER_MODELS}


def check_model(model) -> str | Callable:
    """Return ``model`` if it names a built-in model or is a factory; else :class:`TaskError`.

    Examples
    --------
    >>> check_model("mlp")
    'mlp'
    """
    if isinstance(model, str):
        if model not in MODELS:
            raise TaskError(f"unknown model {model!r}; built-in models are: {', '.join(MODELS)}")
        return model
    if isinstance(model, nn.Module):
        raise TaskError(
            "model must be a name or a factory returning a new nn.Module (e.g. a class or a "
            "lambda), not a module instance: every candidate loss needs a fresh network"
        )
    if not callable(model):
        raise TaskError(
            f"model must be one of {', '.join(MODELS)} or a callable returning an nn.Module, got {type(model).__name__}"
        )
    return model


def model_name(model) -> str:
    """The registry name of ``model``, or ``"custom"`` for a user callable.

    Examples
    --------
    >>> model_name("cnn"), model_name(lambda: None)
    ('cnn', 'custom')
    """
    return model if isinstance(model, str) else "custom"


def build_model(
    model: str | Callable[..., nn.Module],
    *,
    n_features: int,
    n_outputs: int,
    input_shape: tuple = (),
    seed: int | None = None,
) -> nn.Module:
    """Build a fresh base model from a registry name or a user factory.

    Parameters
    ----------
    model : str or callable
        A key of :data:`MODELS` or a callable returning an ``nn.Module``. A
        callable is called with those of the keyword arguments ``n_features``,
        ``n_outputs`` and ``input_shape`` that it accepts (all of them if it takes
        ``**kwargs``; none if it takes no parameters).
    n_features, n_outputs : int
        Input width and output width (number of classes for classification).
    input_shape : tuple of int
        Shape of one example before flattening (used by ``cnn``).
    seed : int, optional
        If given, parameters are initialised from ``torch.manual_seed(seed)`` (the
        CPU generator alone while CUDA is not initialised)
        inside :func:`torch.random.fork_rng`, so the result is reproducible and
        the global RNG state is left unchanged.

    Returns
    -------
    torch.nn.Module
        Maps float32 ``[batch, n_features]`` to ``[batch, n_outputs]``.

    Examples
    --------
    >>> a = build_model("linear", n_features=3, n_outputs=2, seed=1)
    >>> b = build_model("linear", n_features=3, n_outputs=2, seed=1)
    >>> bool((a.weight == b.weight).all())
    True
    """
    model = check_model(model)
    kwargs = {"n_features": int(n_features), "n_outputs": int(n_outputs), "input_shape": tuple(input_shape)}
    if seed is None:
        return _call_builder(model, kwargs)
    with torch.random.fork_rng(devices=[]):
        if torch.cuda.is_initialized():  # a factory may build on the GPU
            torch.manual_seed(int(seed))
        else:  # the CPU generator alone: torch.manual_seed also seeds CUDA lazily, a cost on every call
            torch.default_generator.manual_seed(int(seed))
        return _call_builder(model, kwargs)


def _call_builder(model, kwargs: dict) -> nn.Module:
    """Call a registry builder or a user factory; check what a factory returns."""
    if isinstance(model, str):
        return MODELS[model](**kwargs)
    try:
        net = model(**_accepted_kwargs(model, kwargs))
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(f"the model factory {_name(model)} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(net, nn.Module):
        raise TaskError(f"the model factory {_name(model)} returned {type(net).__name__}, not a torch.nn.Module")
    _probe(net, kwargs["n_features"], kwargs["n_outputs"], model)
    return net


def _accepted_kwargs(factory: Callable, kwargs: dict) -> dict:
    """The subset of ``kwargs`` that ``factory`` accepts by keyword."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return kwargs
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return kwargs
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [
        p.name
        for p in params
        if p.default is p.empty and p.name not in kwargs and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if missing:
        raise TaskError(
            f"the model factory {_name(factory)} requires {', '.join(missing)}; it is called "
            "with (some of) the keyword arguments n_features, n_outputs, input_shape"
        )
    return {k: v for k, v in kwargs.items() if k in names}


def _probe(net: nn.Module, n_features: int, n_outputs: int, factory) -> None:
    """Check a user model maps ``[2, n_features]`` to ``[2, n_outputs]`` (its buffers are restored)."""
    param = next(iter(net.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    saved = {k: v.clone() for k, v in net.named_buffers()}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            out = net(torch.zeros(2, n_features, device=device))
        except Exception as exc:
            raise TaskError(
                f"the model from {_name(factory)} fails on a float32 [batch, {n_features}] input: {exc}"
            ) from exc
        finally:
            for k, v in net.named_buffers():
                if k in saved and v.shape == saved[k].shape:
                    v.copy_(saved[k])
    shape = tuple(getattr(out, "shape", ()))
    if shape != (2, n_outputs):
        raise TaskError(
            f"the model from {_name(factory)} maps a [2, {n_features}] input to "
            f"shape {list(shape)}, expected [2, {n_outputs}]"
        )


def _name(factory) -> str:
    return getattr(factory, "__qualname__", None) or repr(factory)
