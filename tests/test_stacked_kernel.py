"""The direct MLP kernel of :class:`StackedModel` against its ``vmap(functional_call)`` path, bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evomal_sr.training.stacked import StackedModel


def _models():
    torch.manual_seed(0)
    return {
        "relu-mlp": nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 9), nn.ReLU(), nn.Linear(9, 3)),
        "tanh-no-bias": nn.Sequential(nn.Linear(6, 5, bias=False), nn.Tanh(), nn.Linear(5, 3)),
        "linear": nn.Linear(6, 3),
        "mixed": nn.Sequential(
            nn.Linear(6, 7), nn.GELU(), nn.Linear(7, 7), nn.LeakyReLU(0.1), nn.Identity(), nn.Linear(7, 3)
        ),
    }


#: Models whose second derivatives differ from the vmap path's in the last bits (see below).
SECOND_ORDER_ROUND_OFF = {"tanh-no-bias"}


def _pair(model):
    fast, general = StackedModel(model), StackedModel(model)
    general._mlp = None  # the vmap(functional_call) path
    assert fast._mlp is not None
    return fast, general


def _params(stacked, K, dtype):
    generator = torch.Generator().manual_seed(K)
    params = StackedModel.replicate(stacked.initial_params(), K)
    return {
        k: (v + 0.1 * torch.randn(v.shape, generator=generator)).to(dtype).requires_grad_(True)
        for k, v in params.items()
    }


@pytest.mark.parametrize("name", list(_models()))
@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_direct_mlp_kernel_is_bit_identical_to_vmap(name, K, dtype):
    fast, general = _pair(_models()[name].to(dtype))
    params = _params(fast, K, dtype)
    x = torch.randn(5, 6, dtype=dtype)
    xs = torch.randn(K, 5, 6, dtype=dtype)
    for call in ("__call__", "each", "evaluate"):
        inputs = xs if call == "each" else x
        a, b = getattr(fast, call)(params, inputs), getattr(general, call)(params, inputs)
        assert torch.equal(a, b), call
    # first and second order (the unrolled local search differentiates through a step)
    ga = torch.autograd.grad(fast(params, x).square().sum(), list(params.values()), create_graph=True)
    gb = torch.autograd.grad(general(params, x).square().sum(), list(params.values()), create_graph=True)
    assert all(torch.equal(u, v) for u, v in zip(ga, gb))
    ha = torch.autograd.grad(sum(g.square().sum() for g in ga), list(params.values()))
    hb = torch.autograd.grad(sum(g.square().sum() for g in gb), list(params.values()))
    if name in SECOND_ORDER_ROUND_OFF:
        # A second derivative sums several paths in the order autograd's engine reaches them,
        # and matmul's no-op views (on the vmap path, not in the direct kernel's bmm) change
        # that order here: the first layer's weight differs in the last bits (1.7e-7 relative
        # in float32, 2.7e-16 in float64, measured).
        tolerance = {torch.float32: 1e-5, torch.float64: 1e-13}[dtype]
        assert all(torch.allclose(u, v, rtol=tolerance, atol=0) for u, v in zip(ha, hb))
    else:
        assert all(torch.equal(u, v) for u, v in zip(ha, hb))


def test_only_plain_mlps_take_the_direct_kernel():
    assert StackedModel(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)))._mlp is None
    assert StackedModel(nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.1)))._mlp is None
    assert StackedModel(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten()))._mlp is None
    assert StackedModel(nn.Sequential(nn.Sequential(nn.Linear(3, 3))))._mlp is None  # nested: the general path
    assert StackedModel(_models()["relu-mlp"]).describe()["execution"] == "batched"
