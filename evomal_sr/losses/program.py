"""A population of candidate losses as tensors, and one interpreter that evaluates them all.

:func:`encode` turns ``K`` expression trees into padded tensors (the tree as
data): per slot an op code, the slots of its children, its edge-weight slot, its
constant and its height, slots in preorder (slot ``s`` carries edge weight
``s - 1``, as :class:`~evomal_sr.losses.symbolic.CompiledLoss` numbers them; the
root, slot 0, has none), padded to a bucketed size (the next power of two).

:class:`LossProgram` is the interpreter. Its code does not depend on the trees:
it evaluates the nodes of every candidate level by level (a node's level is its
height, leaves first), and within a level computes each operator once for all
the nodes of that operator, gathered by op code from the values of the levels
below; the output of every non-root node is multiplied by its edge weight. The
schedule (which slot of which candidate is computed where) is derived once per
population from the encoding and reused by every call, so one training step costs
a number of kernels that grows with the height of the tallest tree and the number
of distinct operators, not with the number of nodes or candidates.

Every node is computed by the same elementwise torch operation as in
:class:`~evomal_sr.losses.symbolic.CompiledLoss` (the per-tree reference path), so
the values agree; gradients agree up to the order of floating-point sums (a leaf
used several times accumulates its gradient in another order). Everything is
plain differentiable torch: the gradient with respect to ``fx`` (training) and the
meta-gradient with respect to the edge weights through a differentiated step
(local search, double backward) come from autograd.

Examples
--------
>>> import torch
>>> program = LossProgram(["square(fx - y)", "-(y * log(fx))"])
>>> len(program), program.tensors.ops.shape
(2, torch.Size([2, 8]))
>>> program(torch.ones(2, 4), torch.zeros(3), torch.full((2, 3), 0.5))[0]
tensor([0.2500, 0.2500, 0.2500])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from evomal_sr.errors import ExpressionError
from evomal_sr.grammar.expression import Expression
from evomal_sr.grammar.nodes import CONST, VAR, Node
from evomal_sr.grammar.operators import OPERATORS
from evomal_sr.losses.symbolic import CompiledLoss

#: Op codes of the leaves and of padding; operators follow in registry order.
PAD, Y_LEAF, FX_LEAF, CONST_LEAF = 0, 1, 2, 3
OP_NAMES: tuple[str, ...] = tuple(OPERATORS)
OP_CODES: dict[str, int] = {name: 4 + i for i, name in enumerate(OP_NAMES)}
#: Smallest padded size of a tree (slots per candidate).
MIN_BUCKET = 8


def bucket_size(n: int) -> int:
    """The padded number of slots for a tree of ``n`` nodes: the next power of two, at least 8.

    Examples
    --------
    >>> bucket_size(1), bucket_size(8), bucket_size(9)
    (8, 8, 16)
    """
    return max(MIN_BUCKET, 1 << max(int(n) - 1, 0).bit_length())


@dataclass(frozen=True)
class ProgramTensors:
    """The trees of a population as padded tensors (on the CPU), ``[K, N]`` per field.

    ``ops``: op code (:data:`PAD`, :data:`Y_LEAF`, :data:`FX_LEAF`, :data:`CONST_LEAF`
    or :data:`OP_CODES`); ``children``: ``[K, N, 2]`` slots of the arguments (``-1``
    none); ``weight_slots``: the edge weight of the slot (``-1`` for the root and
    padding); ``constants``: float64 value of constant leaves (0 elsewhere);
    ``heights``: 0 for leaves, ``1 + max`` over the children, ``-1`` for padding;
    ``sizes``: ``[K]`` node counts.
    """

    ops: torch.Tensor
    children: torch.Tensor
    weight_slots: torch.Tensor
    constants: torch.Tensor
    heights: torch.Tensor
    sizes: torch.Tensor


def encode(expressions: Sequence[Expression | str], *, slots: int | None = None) -> ProgramTensors:
    """Encode trees as :class:`ProgramTensors` padded to ``slots`` (default: the bucket of the largest).

    Examples
    --------
    >>> t = encode(["square(fx - y)"])
    >>> t.ops[0, :4].tolist(), t.children[0, 0].tolist(), t.weight_slots[0, :4].tolist()
    ([11, 5, 2, 1], [1, -1], [-1, 0, 1, 2])
    """
    trees = [Expression.parse(e).root for e in expressions]
    nodes = [list(root.iter_preorder()) for root in trees]
    largest = max((len(n) for n in nodes), default=1)
    width = bucket_size(largest) if slots is None else int(slots)
    if width < largest:
        raise ExpressionError(f"slots={slots} is below the largest tree's {largest} nodes")
    K = len(trees)
    ops = np.zeros((K, width), dtype=np.int64)
    children = np.full((K, width, 2), -1, dtype=np.int64)
    weight_slots = np.full((K, width), -1, dtype=np.int64)
    constants = np.zeros((K, width), dtype=np.float64)
    heights = np.full((K, width), -1, dtype=np.int64)
    for k, root in enumerate(trees):
        _encode_tree(root, 0, k, ops, children, constants, heights)
        weight_slots[k, 1 : len(nodes[k])] = np.arange(len(nodes[k]) - 1)
    sizes = np.array([len(n) for n in nodes], dtype=np.int64)
    return ProgramTensors(*(torch.from_numpy(a) for a in (ops, children, weight_slots, constants, heights, sizes)))


def _encode_tree(node: Node, slot: int, k: int, ops, children, constants, heights) -> int:
    """Write ``node`` at preorder ``slot`` of row ``k``; returns the next free slot."""
    if node.kind == VAR:
        ops[k, slot], heights[k, slot] = (Y_LEAF if node.value == "y" else FX_LEAF), 0
        return slot + 1
    if node.kind == CONST:
        ops[k, slot], constants[k, slot], heights[k, slot] = CONST_LEAF, node.value, 0
        return slot + 1
    ops[k, slot] = OP_CODES[node.name]
    following = slot + 1
    for position, child in enumerate(node.children):
        children[k, slot, position] = following
        following = _encode_tree(child, following, k, ops, children, constants, heights)
    heights[k, slot] = 1 + max(heights[k, c] for c in children[k, slot] if c >= 0)
    return following


@dataclass(frozen=True)
class _Step:
    """One height ``h`` (the last step: the roots), as the interpreter runs it.

    Its inputs are the leaves its nodes consume (``y``, ``fx``, constants, in that
    order), then for each lower height the contiguous piece of that height's values
    consumed here. Every node has one parent, so every value is read once and the
    work of a step is proportional to its own nodes, not to everything below.
    """

    n_y: int
    y_rows: torch.Tensor  # candidate of each y leaf (when y has a candidate axis)
    fx_rows: torch.Tensor  # candidate of each fx leaf
    constants: torch.Tensor  # float64 values of the constant leaves
    counts: tuple[int, int, int, int]  # y leaves, fx leaves, constants, nodes (the step's run of node weights)
    sources: tuple[int, ...]  # lower heights whose piece for this step is an input
    child0: torch.Tensor  # input position of every node's first argument (roots: the root itself)
    child1: torch.Tensor  # input position of the binary nodes' second argument (a prefix of the nodes)
    groups: tuple[tuple[int, int], ...]  # (op code, node count), binary operators first
    n_binary: int  # how many of the groups are binary
    consumers: torch.Tensor | None  # permutation of the outputs into consumer order (None: identity)
    pieces: tuple[int, ...]  # outputs consumed by each higher step, in order h + 1, ...

    def to(self, device) -> _Step:
        tensors = {
            name: getattr(self, name).to(device) for name in ("y_rows", "fx_rows", "constants", "child0", "child1")
        }
        consumers = None if self.consumers is None else self.consumers.to(device)
        return replace(self, consumers=consumers, **tensors)


def _schedule(t: ProgramTensors) -> tuple[tuple[_Step, ...], torch.Tensor, torch.Tensor]:
    """The steps, and the candidate and edge weight of every node in the order the steps consume weights."""
    ops, heights, children = t.ops.numpy(), t.heights.numpy(), t.children.numpy()
    arity = np.array([0, 0, 0, 0] + [OPERATORS[n].arity for n in OP_NAMES])
    top = int(heights.max(initial=0))
    parent_level = _parent_levels(ops, heights, children, top)
    steps: list[_Step] = []
    order: list[tuple[int, int]] = []  # (row, slot) of every weight consumed, in step order
    pieces_of: dict[int, dict[int, list[tuple[int, int]]]] = {}  # level -> consumer level -> nodes
    for h in range(1, top + 2):
        leaf_rows, leaf_slots = np.nonzero((heights == 0) & (parent_level == h))
        key = np.lexsort((leaf_slots, leaf_rows, ops[leaf_rows, leaf_slots]))
        leaf_rows, leaf_slots = leaf_rows[key], leaf_slots[key]
        inputs = list(zip(leaf_rows.tolist(), leaf_slots.tolist()))
        sources = tuple(lv for lv in range(1, h) if pieces_of[lv][h])
        for lv in sources:
            inputs.extend(pieces_of[lv][h])
        where = {node: i for i, node in enumerate(inputs)}
        node_rows, node_slots, codes = _level_nodes(ops, heights, arity, h, top)
        nodes = list(zip(node_rows.tolist(), node_slots.tolist()))
        leaf_codes = ops[leaf_rows, leaf_slots]
        groups: tuple[tuple[int, int], ...] = ()  # (operator code, count) of this level's nodes
        pieces: tuple[int, ...] = ()
        start = len(order)
        order.extend(inputs[: len(leaf_rows)])  # the leaves were sorted y, fx, constants
        if codes is None:
            child0 = [where[node] for node in nodes]
            child1, consumers = [], None
        else:
            order.extend(nodes)
            child0 = [where[(k, children[k, s, 0])] for k, s in nodes]
            child1 = [where[(k, children[k, s, 1])] for k, s in nodes if children[k, s, 1] >= 0]
            bounds = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
            groups = tuple((int(codes[i]), j - i) for i, j in zip(bounds[:-1], bounds[1:]))
            consumer_level = parent_level[node_rows, node_slots]
            key = np.argsort(consumer_level, kind="stable")
            consumers = None if (key == np.arange(key.size)).all() else torch.from_numpy(key)
            pieces_of[h] = {c: [nodes[i] for i in key if consumer_level[i] == c] for c in range(h + 1, top + 2)}
            pieces = tuple(len(pieces_of[h][c]) for c in range(h + 1, top + 2))
        steps.append(
            _Step(
                **_leaf_fields(t, leaf_rows, leaf_slots, leaf_codes, len(order) - start - len(leaf_rows)),
                sources=sources,
                child0=torch.tensor(child0, dtype=torch.long),
                child1=torch.tensor(child1, dtype=torch.long),
                groups=groups,
                n_binary=sum(OPERATORS[OP_NAMES[c - 4]].arity == 2 for c, _ in groups),
                consumers=consumers,
                pieces=pieces,
            )
        )
    order_rows = torch.tensor([k for k, _ in order], dtype=torch.long)
    order_slots = torch.tensor([s for _, s in order], dtype=torch.long)
    return tuple(steps), order_rows, t.weight_slots[order_rows, order_slots]


def _parent_levels(ops, heights, children, top: int) -> np.ndarray:
    """The height of each node's parent (``top + 1`` for the roots, -1 for padding)."""
    parent_level = np.where(ops != PAD, top + 1, -1)
    rows, slots = np.nonzero(children[:, :, 0] >= 0)
    for position in (0, 1):
        has = children[rows, slots, position] >= 0
        parent_level[rows[has], children[rows[has], slots[has], position]] = heights[rows[has], slots[has]]
    return parent_level


def _level_nodes(ops, heights, arity, h: int, top: int):
    """The rows, slots and codes of height ``h``'s nodes, binary operators first, grouped by operator;
    above ``top``, the roots in candidate order (codes ``None``)."""
    if h > top:
        return np.arange(ops.shape[0]), np.zeros(ops.shape[0], dtype=np.int64), None
    node_rows, node_slots = np.nonzero(heights == h)
    codes = ops[node_rows, node_slots]
    key = np.lexsort((node_slots, node_rows, codes, -arity[codes]))
    return node_rows[key], node_slots[key], codes[key]


def _leaf_fields(t: ProgramTensors, rows, slots, codes, n_nodes: int) -> dict:
    """The leaf part of a :class:`_Step` (leaves sorted y, fx, constants) and its weight counts."""
    y, fx, const = codes == Y_LEAF, codes == FX_LEAF, codes == CONST_LEAF
    return {
        "n_y": int(y.sum()),
        "y_rows": torch.from_numpy(rows[y]),
        "fx_rows": torch.from_numpy(rows[fx]),
        "constants": t.constants[torch.from_numpy(rows[const]), torch.from_numpy(slots[const])],
        "counts": (int(y.sum()), int(fx.sum()), int(const.sum()), n_nodes),
    }


class LossProgram(Sequence):
    """``K`` candidate losses evaluated together: ``program(weights [K, E], y, fx [K, ...]) -> [K, ...]``.

    A sequence of the candidates' :class:`~evomal_sr.losses.symbolic.CompiledLoss`
    (the per-tree reference path, which code that needs one loss at a time still
    uses), plus the batched interpreter :meth:`__call__`. ``weights`` holds at least
    ``n_weights`` entries per row (padding is never read); ``y`` is shared
    (``fx.shape[1:]``) or per candidate (``fx.shape``).

    Parameters
    ----------
    losses : sequence of CompiledLoss, Expression or str
    slots : int, optional
        Padded slots per candidate (default: :func:`bucket_size` of the largest tree).

    Examples
    --------
    >>> import torch
    >>> program = LossProgram(["fx", "(y * 2.0)"])
    >>> program(torch.ones(2, 2), torch.ones(3), torch.zeros(2, 3)).tolist()
    [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]
    """

    def __init__(self, losses: Sequence[CompiledLoss | Expression | str], *, slots: int | None = None):
        if not len(losses):
            raise ExpressionError("a loss program needs at least one candidate")
        self.losses = [
            loss if isinstance(loss, CompiledLoss) else CompiledLoss(Expression.parse(loss)) for loss in losses
        ]
        self.tensors = encode([loss.expression for loss in self.losses], slots=slots)
        steps, rows, edges = _schedule(self.tensors)
        self._on_device: dict[str, tuple] = {"cpu": (steps, rows, edges)}

    def __len__(self) -> int:
        return len(self.losses)

    def __getitem__(self, index):
        return self.losses[index]

    def __iter__(self) -> Iterator[CompiledLoss]:
        return iter(self.losses)

    def repeat_interleave(self, times: int) -> LossProgram:
        """The program of every candidate repeated ``times`` times in a row (a learning-rate grid's copies)."""
        return LossProgram([loss for loss in self.losses for _ in range(times)], slots=self.tensors.ops.shape[1])

    def _schedule_on(self, device: torch.device) -> tuple:
        key = str(device)
        if key not in self._on_device:
            steps, rows, edges = self._on_device["cpu"]
            self._on_device[key] = (tuple(step.to(device) for step in steps), rows.to(device), edges.to(device))
        return self._on_device[key]

    def __call__(self, weights: torch.Tensor, y: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        K = len(self.losses)
        if fx.shape[0] != K or weights.ndim != 2 or weights.shape[0] != K:
            raise ExpressionError(
                f"a program of {K} candidates needs fx [{K}, ...] and weights [{K}, E], "
                f"got {tuple(fx.shape)} and {tuple(weights.shape)}"
            )
        steps, rows, edges = self._schedule_on(fx.device)
        E = weights.shape[1]
        flat = torch.cat([weights.to(fx.dtype).reshape(-1), torch.ones(1, dtype=fx.dtype, device=fx.device)])
        scale = flat.index_select(0, torch.where(edges >= 0, rows * E + edges, K * E))  # 1 for the roots
        # one split, not a slice per use: the backward of a split is one concatenation
        parts = iter(scale.split([n for step in steps for n in step.counts]))
        pieces: dict[int, tuple] = {}
        out = None
        for h, step in enumerate(steps, start=1):
            inputs = _leaves(step, [next(parts) for _ in range(3)], y, fx)
            inputs.extend(pieces[lv][h - lv - 1] for lv in step.sources)
            values = torch.cat(inputs) if len(inputs) > 1 else inputs[0]
            if h == len(steps):
                out = values.index_select(0, step.child0)
            else:
                done = _apply_ops(step, values, next(parts))
                if step.consumers is not None:
                    done = done.index_select(0, step.consumers)
                pieces[h] = done.split(step.pieces)
        if out is None:  # every program has a root step; this names the broken invariant
            raise RuntimeError("the program has no steps")
        return out


def _leaves(step: _Step, scales: list[torch.Tensor], y: torch.Tensor, fx: torch.Tensor) -> list[torch.Tensor]:
    """The weighted leaves a step consumes: ``y * w``, ``fx * w`` and ``w * c``, as the per-tree path computes them."""
    tail, ones = fx.shape[1:], [1] * (fx.ndim - 1)
    parts = []
    if step.n_y:
        ys = y.expand(step.n_y, *tail) if y.ndim == len(tail) else y.index_select(0, step.y_rows)
        parts.append(ys * scales[0].view(-1, *ones))
    if len(step.fx_rows):
        parts.append(fx.index_select(0, step.fx_rows) * scales[1].view(-1, *ones))
    if len(step.constants):
        values = scales[2] * step.constants.to(fx.dtype)
        parts.append(values.view(-1, *ones).expand(-1, *tail))
    return parts


def _apply_ops(step: _Step, values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The weighted values of one height's nodes, each operator applied once to all its nodes."""
    # split, not slices: the backward of a split is one concatenation, of a slice a zero-filled copy each
    sizes = [n for _, n in step.groups]
    a = values.index_select(0, step.child0).split(sizes)
    b = values.index_select(0, step.child1).split(sizes[: step.n_binary]) if step.n_binary else ()
    outs = []
    for i, (code, _) in enumerate(step.groups):
        op = OPERATORS[OP_NAMES[code - 4]]
        outs.append(op.torch(a[i], b[i]) if op.arity == 2 else op.torch(a[i]))
    done = torch.cat(outs) if len(outs) > 1 else outs[0]
    return done * scale.view(-1, *([1] * (values.ndim - 1)))
