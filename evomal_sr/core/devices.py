"""Validation of torch device names given by users."""

from __future__ import annotations

import torch

from evomal_sr.errors import ConfigError


def resolve_device(device) -> torch.device:
    """``device`` as a :class:`torch.device`, or :class:`ConfigError` if it cannot be used here.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} requested but CUDA is not available here; use 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {str(device)!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    return device
