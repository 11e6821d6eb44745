"""How the base model's arithmetic runs while candidates are scored: fp32, TF32 or bf16, channels-last.

On a large model (AllCNN-C at CIFAR shape) a candidate's time is the model's
convolutions and matrix products, not the loss tree. Tensor-core formats cut it:

* ``"tf32"``: fp32 tensors, matrix products and convolutions on CUDA's TF32
  tensor cores (10-bit mantissa products, fp32 accumulation), for the whole
  batch, forward and backward. CUDA only: a CPU has no TF32.
* ``"bf16"``: the model's forward under ``torch.autocast`` to bfloat16 (its
  backward follows the forward's dtypes); the outputs are cast back to fp32,
  so the loss tree, its derivatives and the optimiser stay in fp32.
* ``"fp32"`` (default): IEEE fp32 everywhere, the reference; bit-identical to
  not asking.

``channels_last`` stores 4-D image inputs as NHWC, the layout cuDNN's tensor-core
convolutions prefer; the values are the same.

These are opt-in: neither has run on a GPU yet (no GPU was lent to the sessions
that wrote them; ``benchmarks/bench_gpu.py`` measures both, and whether they keep
the fitness ranking, on AllCNN-C). Lower precision changes the fitness in the last
bits or more, so a search with them is reproducible on its own settings only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from evomal_sr.errors import ConfigError

#: The model precisions a scorer accepts (see the module notes).
PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision, device=None) -> str:
    """A valid ``precision`` (for ``device``, when given), or :class:`ConfigError` saying what would be right.

    Examples
    --------
    >>> check_precision("bf16", "cpu")
    'bf16'
    >>> check_precision("tf32", "cpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    evomal_sr.errors.ConfigError: precision='tf32' needs a CUDA device ..., got device 'cpu'; use 'fp32' or 'bf16' there
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "tf32" and device is not None and torch.device(device).type != "cuda":
        raise ConfigError(
            f"precision='tf32' needs a CUDA device (TF32 is a tensor-core format), got device "
            f"{str(device)!r}; use 'fp32' or 'bf16' there"
        )
    return precision


def check_channels_last(channels_last) -> bool:
    """A ``channels_last`` setting, which must be a bool (a string such as ``"no"`` would read as true)."""
    if not isinstance(channels_last, bool):
        raise ConfigError(f"channels_last must be True or False, got {channels_last!r}")
    return channels_last


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Within the block, fp32 matrix products and convolutions use TF32 when ``precision == "tf32"``.

    The switches are process-wide in torch, so they are set for the block and restored after,
    whatever happens inside; other precisions change nothing.
    """
    if precision != "tf32":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def model_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a model forward runs in: bf16 autocast on ``device`` for ``"bf16"``, else none."""
    if precision == "bf16":
        # no cast cache: each forward uses each weight once, and a cache outliving a recorded
        # CUDA graph's step is what PyTorch's graph notes warn against (the same values either way)
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """4-D image batches ``[N, C, H, W]`` stored as NHWC; other tensors unchanged (same values)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
