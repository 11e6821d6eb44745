"""A small Adam over the rows of one tensor, one row per candidate.

``torch.optim.Adam`` would do, but it cannot skip rows (a candidate whose
gradient went non-finite must keep its moments untouched), and its first use
imports TorchDynamo, a slow import in every process that uses it.
"""

from __future__ import annotations

import torch


class MaskedAdam:
    """Adam over the rows of one tensor, updating only the rows marked active.

    Rows that are skipped keep their moments and step count, so a candidate's
    trajectory does not depend on which other candidates share the batch.
    """

    def __init__(self, shape, *, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, dtype=torch.float32, device="cpu"):
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.t = torch.zeros(shape[0], dtype=dtype, device=device)

    def step(self, params: torch.Tensor, grad: torch.Tensor, active: torch.Tensor | None) -> None:
        """Update the active rows of ``params`` in place (``active`` bool ``[K]``; ``None``: every row)."""
        if active is None or bool(active.all()):  # the usual case: whole tensors, no indexing
            self.t += 1
            self.m, self.v = self._moments(self.m, self.v, grad)
            with torch.no_grad():
                params -= self._direction(self.m, self.v, self.t, params.ndim)
            return
        rows = active.nonzero().squeeze(-1)
        if rows.numel() == 0:
            return
        g = grad[rows]
        self.t[rows] += 1
        self.m[rows], self.v[rows] = self._moments(self.m[rows], self.v[rows], g)
        with torch.no_grad():
            params[rows] -= self._direction(self.m[rows], self.v[rows], self.t[rows], params.ndim)

    def step_static(self, params: torch.Tensor, grad: torch.Tensor, active: torch.Tensor) -> None:
        """:meth:`step` without reading the device (for a captured CUDA graph): whole-tensor ``where``s.

        The active rows get :meth:`step`'s arithmetic, bit for bit; the others keep their
        parameters, moments and step count. Every tensor is updated in place.
        """
        rows = active.reshape(-1, *([1] * (params.ndim - 1)))
        self.t.add_(active.to(self.t.dtype))
        m, v = self._moments(self.m, self.v, grad)
        self.m.copy_(torch.where(rows, m, self.m))
        self.v.copy_(torch.where(rows, v, self.v))
        with torch.no_grad():
            params.copy_(torch.where(rows, params - self._direction(self.m, self.v, self.t, params.ndim), params))

    def _moments(self, m: torch.Tensor, v: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The updated first and second moments of the given rows."""
        return self.beta1 * m + (1 - self.beta1) * g, self.beta2 * v + (1 - self.beta2) * g * g

    def _direction(self, m: torch.Tensor, v: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
        """``lr * m_hat / (sqrt(v_hat) + eps)`` of the given rows (elementwise: rows do not interact)."""
        t = t.reshape(-1, *([1] * (ndim - 1)))
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        return self.lr * m_hat / (v_hat.sqrt() + self.eps)
