"""Reading saved losses and describing any loss module in words."""

from __future__ import annotations

import torch

from evomal_sr.core.fileio import read_json
from evomal_sr.errors import LossFileError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import CONST, VAR, Node
from evomal_sr.losses.flat import FlatParameterLoss
from evomal_sr.losses.symbolic import FILE_FORMAT as LEARNED_FORMAT
from evomal_sr.losses.symbolic import LearnedLoss


def baseline_formats() -> dict[str, type[FlatParameterLoss]]:
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
        return Node.constant(float(f"{node.number:.4g}"))
    if node.kind == VAR:
        return node
    return Node.apply(node.name, tuple(_rounded(c) for c in node.children))


def count_parameters(module: torch.nn.Module) -> int:
    """The loss's ``n_parameters``, else the number of its parameter elements."""
    count = getattr(module, "n_parameters", None)
    if isinstance(count, int):
        return count
    return sum(p.numel() for p in module.parameters())
