"""A compiled loss with fixed edge weights: its subtrees free of ``fx`` computed once, to the bit.

Training a candidate and the rejection fit evaluate its tree at every step with
edge weights that do not change, and most of a searched tree does not depend on
``fx`` (over the trees a paper search on digits trained, about two thirds of the
operations lie in subtrees of ``y`` or of constants alone). :class:`FrozenLoss`
computes such subtrees once:

* a subtree of constants is one number, kept;
* a subtree of ``y``, when every target entry is 0 or 1 (one-hot or binary
  labels), takes at each position the value its kernels compute there for a 0
  or a 1. It is computed once on all-zero and on all-one targets of the batch's
  shape and layout, and each step selects with ``torch.where(y == 1, ...)``.

The values are the same bits as evaluating the subtree at every step: an
elementwise kernel's result at a position depends only on the input there and on
the tensor's shape and layout, which fix whether that position runs in the
vectorised or the scalar part of the loop (the cache is keyed by them, and by
the thread count, which fixes how a large loop is split). No autograd node is
lost either: a subtree free of ``fx`` records none, so the backward is the same
too (``tests/test_frozen_loss.py`` checks both with ``torch.equal``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from evomal_sr.grammar.nodes import VAR, Node
from evomal_sr.grammar.operators import OPERATORS
from evomal_sr.losses.symbolic import CompiledLoss, compile_node

#: ``(y, is_one, fx) -> tensor``: a node of a frozen tree; ``is_one`` is ``y == 1`` (or None).
FrozenFn = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], torch.Tensor]


class FrozenLoss:
    """``loss`` with the fixed edge weights ``weights``, as ``(y, fx, is_one=None) -> elementwise tensor``.

    Parameters
    ----------
    loss : CompiledLoss
        The tree.
    weights : torch.Tensor
        Its edge weights (1-D, at least ``loss.n_weights`` entries); they must not change afterwards.
    binary_targets : bool
        Every entry of every ``y`` it will see is 0 or 1 (one-hot or binary labels): subtrees of
        ``y`` are computed once as well. Otherwise only subtrees of constants are.

    Examples
    --------
    >>> import torch
    >>> from evomal_sr.grammar.expression import Expression
    >>> loss = CompiledLoss(Expression.parse("-(log(tanh(y) + 1.0) * log(fx))"))
    >>> weights = torch.full((loss.n_weights,), 1.1)
    >>> y, fx = torch.eye(3), torch.full((3, 3), 0.25)
    >>> torch.equal(FrozenLoss(loss, weights, binary_targets=True)(y, fx), loss(weights, y, fx))
    True
    """

    def __init__(self, loss: CompiledLoss, weights: torch.Tensor, *, binary_targets: bool):
        self.loss = loss
        self.weights = weights.detach()
        self.binary_targets = bool(binary_targets)
        unbound = self.weights.unbind(0) if loss.n_weights else ()
        root = loss.expression.root
        variables = _variables(root)
        # a loss free of fx (rejected by the search anyway) is evaluated as it is
        self._fn: FrozenFn | None = None
        if "fx" in variables[root]:
            self._fn = self._compile(root, iter(range(-1, loss.expression.size)), unbound, variables)

    def __call__(self, y: torch.Tensor, fx: torch.Tensor, is_one: torch.Tensor | None = None) -> torch.Tensor:
        """The elementwise loss; pass ``is_one = (y == 1)`` to share it between several losses."""
        if self._fn is None:
            return self.loss(self.weights, y, fx)
        if is_one is None and self.binary_targets:
            is_one = y == 1
        return self._fn(y, is_one, fx)

    def _compile(self, node: Node, counter, weights, variables: dict) -> FrozenFn:
        """``node``'s closure; ``counter`` yields preorder indices minus one, as in :func:`compile_node`."""
        free = "fx" not in variables[node]  # never the root's (see __init__)
        if free and node.kind != VAR and (self.binary_targets or "y" not in variables[node]):
            return _folded(compile_node(node, counter), weights, "y" in variables[node])
        index = next(counter)

        def weighted(fn: FrozenFn) -> FrozenFn:
            if index < 0:
                return fn
            return lambda y, m, fx: fn(y, m, fx) * weights[index]

        if node.kind == VAR:
            return weighted((lambda y, m, fx: y) if node.value == "y" else (lambda y, m, fx: fx))
        op = OPERATORS[node.name].torch
        children = [self._compile(c, counter, weights, variables) for c in node.children]
        if len(children) == 1:
            (a,) = children
            return weighted(lambda y, m, fx: op(a(y, m, fx)))
        a, b = children
        return weighted(lambda y, m, fx: op(a(y, m, fx), b(y, m, fx)))


def _folded(subtree: Callable, weights, uses_y: bool) -> FrozenFn:
    """A subtree free of ``fx`` (its closure from :func:`compile_node`) computed once per target layout."""
    if not uses_y:
        value = subtree(weights, None, None)
        return lambda y, m, fx: value
    cache: dict = {}

    def selected(y: torch.Tensor, is_one: torch.Tensor | None, fx: torch.Tensor) -> torch.Tensor:
        if is_one is None or not y.is_contiguous():  # a layout the templates would not share
            return subtree(weights, y, None)
        key = (y.shape, y.dtype, y.device, torch.get_num_threads())
        values = cache.get(key)
        if values is None:
            values = cache[key] = (
                subtree(weights, torch.zeros_like(y), None),
                subtree(weights, torch.ones_like(y), None),
            )
        return torch.where(is_one, values[1], values[0])

    return selected


def _variables(root: Node) -> dict:
    """Node -> the variables its subtree uses (nodes compare by structure, so equal subtrees share an entry)."""
    found: dict = {}

    def walk(node: Node) -> frozenset:
        if node not in found:
            if node.kind == VAR:
                found[node] = frozenset((node.value,))
            else:
                found[node] = frozenset().union(*(walk(c) for c in node.children))
        return found[node]

    walk(root)
    return found
