"""Export learned losses: JSON, SymPy, LaTeX, and standalone torch modules.

The torch export writes a self-contained ``.py`` file that needs only torch:
one helper function per operator (from the registry's ``torch_source``), the
weighted expression as nested calls, and the same input mapping as
:class:`~evomal_sr.losses.symbolic.LearnedLoss`, so the file computes identical values.
The source is generated from a validated expression tree; no user text is
ever copied into it unescaped.
"""

from __future__ import annotations

import json

from evomal_sr._version import __version__
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.nodes import CONST, VAR, Node
from evomal_sr.grammar.operators import EXP_CAP, OPERATORS, PROTECTION_EPS
from evomal_sr.losses.symbolic import LearnedLoss

EXPORT_FORMATS = ("json", "torch", "sympy", "latex")

_PREAMBLE = '''"""A learned loss exported by evomal-sr {version}; needs only torch.

Expression (edge weights w[i] in preorder): {expression}
Task: {task}

{where}

    from {module} import LearnedLoss
    loss = LearnedLoss()
    value = loss(model_output, target)  # {call}
"""

import torch

PROTECTION_EPS = {eps!r}
EXP_CAP = {exp_cap!r}
TASK = {task!r}
EXPRESSION = {expression!r}
WEIGHTS = {weights}
SCALE = {scale!r}  # the loss's constant factor (its gradient-norm normalisation; 1.0: none)

'''

_MODULE = '''

class LearnedLoss(torch.nn.Module):
    """The learned loss as a torch module (weights are a parameter, trainable if you wish)."""

    def __init__(self):
        super().__init__()
        self.weights = torch.nn.Parameter(torch.tensor(WEIGHTS, dtype=torch.float32))

    def elementwise(self, y, fx):
        value = _expression(self.weights, y, fx)
        if SCALE == 1.0:
            return value
        # a full tensor of fx's dtype first, then the scale in that dtype (as evomal-sr computes it)
        return torch.broadcast_to(torch.as_tensor(value, dtype=fx.dtype), fx.shape) * SCALE

    def forward(self, output, target):
        if output.ndim == 1:
            output = output.unsqueeze(-1)
        n = output.shape[-1]
        if TASK == "classification":
            fx = torch.sigmoid(output) if n == 1 else torch.softmax(output, dim=-1)
            if n > 1 and target.ndim == 1:
                y = torch.nn.functional.one_hot(target.long(), n).to(fx.dtype)
            else:
                y = target.reshape(-1, n).to(fx.dtype)
        else:
            fx = output
            y = target.reshape(-1, n).to(fx.dtype)
        value = self.elementwise(y.to(self.weights.dtype), fx.to(self.weights.dtype))
        value = torch.broadcast_to(value, fx.shape)
        if TASK == "classification":
            return value.sum(dim=-1).mean()
        return value.mean()
'''


def _usage(filename: str | None) -> tuple[str, str]:
    """The usage sentence and the module name for a module saved as ``filename`` (``None``: not yet saved)."""
    stem = filename[:-3] if filename and filename.endswith(".py") else None
    if stem and stem.isascii() and stem.isidentifier():
        return f"Saved as {stem}.py; usage::", stem
    if filename:  # not importable under its own name (or not a .py file): say so rather than guess
        return (
            "Usage (this file's name is not a Python module name: copy it to learned_loss.py first)::"
        ), "learned_loss"
    return "Usage (save this text as learned_loss.py)::", "learned_loss"


def torch_source(loss: LearnedLoss, *, filename: str | None = None) -> str:
    """Python source of a standalone module defining ``LearnedLoss`` for ``loss``.

    ``filename`` is the name the module is written to (``export -o my_loss.py``);
    the docstring's usage example imports it under that name.

    Examples
    --------
    >>> src = torch_source(LearnedLoss("square(fx - y)", task="regression"), filename="my_loss.py")
    >>> "class LearnedLoss(torch.nn.Module)" in src, "from my_loss import LearnedLoss" in src
    (True, True)
    """
    weights = [float(w) for w in loss.weights.detach().cpu().tolist()]
    used = sorted({n.value for n in loss.expression.root.iter_preorder() if n.kind == "op"})
    helpers = []
    for name in used:
        op = OPERATORS[name]
        if op.infix is None:
            args = ", ".join("ab"[: op.arity])
            helpers.append(f"def _{name}({args}):\n    return {op.torch_source}\n")
    counter = iter(range(-1, len(weights)))
    body = _source(loss.expression.root, counter)
    if loss.expression.root.kind == CONST:
        # as LearnedLoss does: a constant beyond fx's dtype range becomes inf instead of raising
        body = f"(torch.zeros_like(fx) + {loss.expression.root.value!r})"
    call = "loss(logits, labels)" if loss.task == "classification" else "loss(prediction, target)"
    where, module_name = _usage(filename)
    text = _PREAMBLE.format(
        version=__version__,
        expression=str(loss.expression),
        task=loss.task,
        where=where,
        module=module_name,
        call=call,
        eps=PROTECTION_EPS,
        exp_cap=EXP_CAP,
        weights=json.dumps(weights),
        scale=float(loss.scale),
    )
    text += "\n" + "\n\n".join(helpers)
    text += f"\n\ndef _expression(w, y, fx):\n    return {body}\n" + _MODULE
    return text


def _source(node: Node, counter) -> str:
    index = next(counter)
    if node.kind == CONST:
        return f"(w[{index}] * {node.value!r})" if index >= 0 else repr(node.value)
    if node.kind == VAR:
        code = node.value
    else:
        op = OPERATORS[node.value]
        args = [_source(c, counter) for c in node.children]
        if op.infix:
            code = f"({args[0]} {op.infix} {args[1]})"
        else:
            code = f"_{op.name}({', '.join(args)})"
    return code if index < 0 else f"({code} * w[{index}])"


def export_loss(loss: LearnedLoss, fmt: str, *, filename: str | None = None) -> str:
    """The loss in one of :data:`EXPORT_FORMATS` as text.

    ``json`` is :meth:`LearnedLoss.save`'s content (exact weights), ``torch`` a
    standalone module (``filename``: the file it is written to, named in its
    docstring), ``sympy``/``latex`` the expression with its weights folded in,
    constant subtrees folded, then simplified by SymPy.

    Examples
    --------
    >>> print(export_loss(LearnedLoss("sqrt(1.0 + 1.0) * square(fx - y)", task="regression"), "sympy"), end="")
    1.4142135623731*(fx - y)**2
    """
    if fmt == "json":
        return json.dumps(loss.to_dict(), indent=2) + "\n"
    if fmt == "torch":
        return torch_source(loss, filename=filename)
    if fmt == "sympy":
        return str(loss.expression_with_weights().simplified().to_sympy(simplify=True)) + "\n"
    if fmt == "latex":
        return loss.expression_with_weights().simplified().to_latex() + "\n"
    raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
