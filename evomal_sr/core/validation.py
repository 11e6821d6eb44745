"""Checks of user-supplied settings shared by every layer, each raising one clear error.

Examples
--------
>>> check_seed(3)
3
>>> check_positive_int("steps", 10)
10
"""

from __future__ import annotations

import numbers

from evomal_sr.errors import ConfigError


def is_index(value) -> bool:
    """Whether ``value`` is a non-negative integer (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0


def check_seed(seed, *, error: type[Exception] = ConfigError, name: str = "seed") -> int:
    """Return ``seed`` as an int if it is a non-negative integer, else raise ``error``."""
    if not is_index(seed):
        raise error(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_positive_int(name: str, value, *, error: type[Exception] = ConfigError) -> int:
    """Return ``value`` if it is an integer >= 1 (not a bool), else raise ``error``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")
    return int(value)


#: The ``chunk_size`` that splits each generation into one near-equal chunk per worker.
BALANCED_CHUNKS = "balanced"


def check_chunk_size(value, *, name: str = "chunk_size") -> int | str | None:
    """Return a valid ``chunk_size``: ``None``, a positive integer or ``"balanced"``.

    Examples
    --------
    >>> check_chunk_size("balanced"), check_chunk_size(4), check_chunk_size(None)
    ('balanced', 4, None)
    """
    if value is None or value == BALANCED_CHUNKS:
        return value
    if isinstance(value, str) and value.strip().isdigit():  # from the command line
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(
            f"{name} must be a positive integer or {BALANCED_CHUNKS!r} (one chunk per worker), got {value!r}"
        )
    return int(value)


#: How a batch's losses are computed: ``"per-tree"`` (default), one compiled tree per candidate
#: (the reference), or ``"tensor"``, the population interpreter of :mod:`evomal_sr.losses.program`
#: (the same fitnesses in every measured search; learned weights equal to float32 round-off).
#: Opt-in: on CPU a quick or standard search ran 1.2-1.36x faster with it, but the paper preset
#: 0.89-0.97x and one candidate at a time about 2x slower in the loss part
#: (benchmarks/PERFORMANCE.md); it never ran on a GPU.
PROGRAMS = ("per-tree", "tensor")


def check_program(program) -> str:
    """A ``program`` setting, or :class:`ConfigError` naming the valid ones."""
    if program not in PROGRAMS:
        raise ConfigError(f"program must be one of {', '.join(PROGRAMS)}, got {program!r}")
    return program
