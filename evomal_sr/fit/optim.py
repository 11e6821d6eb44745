"""A small Adam over the rows of one tensor, one row per candidate.

``torch.optim.Adam`` would do, but it cannot skip rows (a candidate whose
gradient went non-finite must keep its moments untouched), and its first use
imports TorchDynamo, which costs seconds per process.
"""

from __future__ import annotations

import torch


class MaskedAdam:
    """Adam over the rows of one tensor, updating only the rows marked active.

    Rows that are skipped keep their moments and step count, so a candidate's
    trajectory does not depend on which other candidates share the batch.
    """

    def __init__(self, shape, *, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, dtype=torch.float32,
                 device="cpu"):
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.t = torch.zeros(shape[0], dtype=dtype, device=device)

    def step(self, params: torch.Tensor, grad: torch.Tensor, active: torch.Tensor | None) -> None:
        """Update the active rows of ``params`` in place (``active`` bool ``[K]``; ``None``: every row)."""
        if active is None or bool(active.all()):  # the usual case: views of every row instead of gathered copies
            rows = slice(None)  # (elementwise arithmetic, so the same values as indexing every row)
        else:
            rows = active.nonzero().squeeze(-1)
            if rows.numel() == 0:
                return
        g = grad[rows]
        self.t[rows] += 1
        t = self.t[rows].reshape(-1, *([1] * (params.ndim - 1)))
        self.m[rows] = self.beta1 * self.m[rows] + (1 - self.beta1) * g
        self.v[rows] = self.beta2 * self.v[rows] + (1 - self.beta2) * g * g
        m_hat = self.m[rows] / (1 - self.beta1**t)
        v_hat = self.v[rows] / (1 - self.beta2**t)
        with torch.no_grad():
            params[rows] -= self.lr * m_hat / (v_hat.sqrt() + self.eps)
