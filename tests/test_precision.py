"""The model precision settings (fp32 / tf32 / bf16, channels-last): checked, exact where they must be.

Only the CPU side runs here: TF32 is CUDA-only (refused elsewhere, and its switches are
restored after a batch), bf16 autocast and channels-last run on CPU as well.
"""

from __future__ import annotations

import math
import pickle

import pytest
import torch

import evomal_sr as es
from evomal_sr.errors import ConfigError
from evomal_sr.training.precision import check_precision, matmul_precision, to_channels_last
from evomal_sr.training.stacked import StackedModel

CANDIDATES = ["square(y - fx)", "-(y * log(fx))", "abs(y - fx)"]


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, stride=2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 3),
    )


def outputs_and_second_order(stacked: StackedModel, x: torch.Tensor):
    """Outputs, and the gradient of a function of the first gradients (the local search's double backward)."""
    params = {k: v.requires_grad_(True) for k, v in stacked.replicate(stacked.initial_params(), 2).items()}
    out = stacked(params, x)
    grads = torch.autograd.grad(out.square().sum(), list(params.values()), create_graph=True)
    second = torch.autograd.grad(sum(g.square().sum() for g in grads), list(params.values()))
    return out, second


def test_settings_are_checked_with_what_would_be_right():
    with pytest.raises(ConfigError, match="precision must be one of fp32, tf32, bf16, got 'fp16'"):
        check_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="needs a CUDA device .* got device 'cpu'; use 'fp32' or 'bf16'"):
        es.Evaluator(es.Task.builtin("iris", seed=0), preset="tiny", precision="tf32")
    with pytest.raises(ConfigError, match="precision must be one of"):
        StackedModel(torch.nn.Linear(2, 1), precision="half")
    with pytest.raises(ConfigError, match="channels_last must be True or False, got 'no'"):
        es.Evaluator(es.Task.builtin("iris", seed=0), preset="tiny", channels_last="no")


def test_tf32_switches_are_restored_after_the_block_even_on_error():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with pytest.raises(RuntimeError, match="boom"), matmul_precision("tf32"):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        raise RuntimeError("boom")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == saved
    with matmul_precision("fp32"):
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == saved


def test_channels_last_keeps_values_and_fp32_keeps_bits():
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    assert to_channels_last(x).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(to_channels_last(x), x)
    flat = torch.randn(5, 3)
    assert to_channels_last(flat) is flat
    reference, second_ref = outputs_and_second_order(StackedModel(small_cnn()), x)
    for channels_last in (False, True):
        out, second = outputs_and_second_order(StackedModel(small_cnn(), channels_last=channels_last), x)
        tolerance = 0.0 if not channels_last else 1e-5  # NHWC kernels may sum in another order
        assert (out - reference).abs().max().item() <= tolerance
        for a, b in zip(second, second_ref):
            assert torch.allclose(a, b, rtol=1e-4, atol=tolerance + 1e-7)


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_bf16_autocast_returns_fp32_outputs_close_to_fp32_and_differentiates_twice(model):
    net = small_cnn() if model == "cnn" else torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh())
    x = torch.randn(5, 3, 8, 8) if model == "cnn" else torch.randn(5, 6)
    reference, _ = outputs_and_second_order(StackedModel(net), x)
    out, second = outputs_and_second_order(StackedModel(net, precision="bf16"), x)
    assert out.dtype == torch.float32
    assert 0 < (out - reference).abs().max().item() < 2e-2  # bf16 products: ~3 significant digits
    assert all(torch.isfinite(g).all() for g in second)


def test_an_evaluator_in_bf16_scores_like_fp32_on_a_small_task():
    task = es.Task.builtin("iris", seed=0)
    reference = es.Evaluator(task, preset="tiny").evaluate(CANDIDATES)
    results = es.Evaluator(task, preset="tiny", precision="bf16", channels_last=True).evaluate(CANDIDATES)
    assert [r.status for r in results] == [r.status for r in reference]
    for a, b in zip(results, reference):
        assert math.isfinite(a.fitness) and abs(a.fitness - b.fitness) <= 0.1


def test_the_settings_travel_with_a_pickled_search_and_the_dask_spec():
    task = es.Task.builtin("iris", seed=0)
    search = es.LossSearch(preset="tiny", population=4, generations=1, final_selection="none").fit(task)
    assert (search.evaluator_.precision, search.evaluator_.channels_last) == ("fp32", False)
    ev = es.Evaluator(task, preset="tiny", precision="bf16", channels_last=True)
    search.evaluator_ = ev
    rebuilt = pickle.loads(pickle.dumps(search)).evaluator_
    assert (rebuilt.precision, rebuilt.channels_last) == ("bf16", True)
    assert rebuilt.scorer.stacked.precision == "bf16"
    pytest.importorskip("distributed")
    from evomal_sr.parallel.dask_executor import ScorerSpec

    built = ScorerSpec.from_evaluator(ev).build()
    assert (built.precision, built.channels_last) == ("bf16", True)
