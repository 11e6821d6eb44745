"""The recorded local search and rejection fit give the eager loops' numbers.

A CUDA graph can only be recorded on CUDA. On CPU the tests replace the two GPU-only
hooks of the modules (``captures_on``/``can_capture`` say yes, and ``capture_step``
runs its warm-ups on their scratch state and returns the step itself, unrecorded), so
``cuda_graph=True`` runs the recorded steps
(:func:`~evomal_sr.training.local_search.meta_step_static`,
:func:`~evomal_sr.training.screening.fit_step_static`) through the same replay loops,
which are compared with the eager loops bit for bit (``torch.equal``), also with
candidates that go non-finite. The ``cuda``-marked tests record and replay real
graphs on a GPU.
"""

import pytest
import torch

import evomal_sr.training.local_search as local_search_module
import evomal_sr.training.screening as screening_module
from evomal_sr.grammar.expression import Expression
from evomal_sr.losses.base import same_targets
from evomal_sr.losses.program import LossProgram
from evomal_sr.losses.symbolic import CompiledLoss, target_to_y
from evomal_sr.training.local_search import local_search
from evomal_sr.training.loop import CandidateLosses, train_population
from evomal_sr.training.optim import MaskedAdam
from evomal_sr.training.scaling import ScaleProbe
from evomal_sr.training.screening import rejection_protocol, replayed_fit
from evomal_sr.training.stacked import StackedModel

TREES = ("-(y * log(fx))", "aq(y, fx)", "-(y * sqrt(fx))")
#: Overflows float32 once its weights or fx move: the candidate that goes non-finite.
OVERFLOWING = "-(square((fx * 2e18)))"


class NanAfter:
    """A candidate loss (the ``CompiledLoss`` protocol): ``text``'s for ``n`` calls, then NaN."""

    def __init__(self, text, n):
        self.inner, self.n, self.calls = CompiledLoss(Expression.parse(text)), n, 0
        self.n_weights = self.inner.n_weights

    def __call__(self, weights, y, fx):
        self.calls += 1
        value = self.inner(weights, y, fx)
        return value * float("nan") if self.calls > self.n else value


def _unrecorded_capture(step, warm_up, device, warmup=3):
    """``capture_step`` on CPU: the warm-ups run (they must leave the run's state alone), then the step itself."""
    for _ in range(warmup):
        warm_up()
    return step


@pytest.fixture
def unrecorded(monkeypatch):
    """The modules' GPU-only hooks replaced, so ``cuda_graph=True`` takes the recorded path on CPU."""
    monkeypatch.setattr(local_search_module, "can_capture", lambda stacked, device: True)
    monkeypatch.setattr(local_search_module, "capture_step", _unrecorded_capture)
    monkeypatch.setattr(screening_module, "captures_on", lambda device: True)
    monkeypatch.setattr(screening_module, "capture_step", _unrecorded_capture)


def _losses(*texts):
    return [CompiledLoss(Expression.parse(t)) for t in texts]


def _mlp(seed, n_in=4, n_out=3):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 6), torch.nn.Tanh(), torch.nn.Linear(6, n_out))


def _setup(kind="classification", texts=TREES, device="cpu", iterations=5):
    """A stacked MLP, candidate losses, perturbed starting weights and ``local_search``'s keywords."""
    generator = torch.Generator().manual_seed(0)
    n_out = 3 if kind == "classification" else 1
    X = torch.randn(90, 4, generator=generator)
    Y = torch.randint(0, 3, (90,), generator=generator) if kind == "classification" else X[:, :1] * 2 + 0.1
    train, val = (X[:60].to(device), Y[:60].to(device)), (X[60:].to(device), Y[60:].to(device))
    losses = _losses(*texts)
    width = max(loss.n_weights for loss in losses)
    start = torch.ones(len(losses), width) + 0.01 * torch.randn(len(losses), width, generator=generator)
    inits = {i: {k: v.to(device) for k, v in _mlp(100 + i, n_out=n_out).state_dict().items()} for i in range(4)}
    keywords = dict(
        init_params=lambda i: inits[i % 4],
        train_data=train,
        val_data=val,
        kind=kind,
        iterations=iterations,
        meta_lr=0.05,
        lr=0.1,
        inner_steps=1,
        batch_size=16,
        seed=9,
    )
    return StackedModel(_mlp(0, n_out=n_out).to(device)), losses, start.to(device), keywords


OPTIONS = {
    "paper": {},
    "fixed scale": {"fixed_scale": True},
    "two inner steps": {"inner_steps": 2},
    "grad-norm scaling": {"probe": ScaleProbe(torch.randn(8, 3), torch.randint(0, 3, (8,)), "classification")},
}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_the_static_meta_iteration_replayed_equals_the_eager_local_search(options, unrecorded):
    stacked, losses, start, keywords = _setup()
    keywords.update(options)
    eager = local_search(stacked, losses, start, **keywords)
    replayed = local_search(stacked, losses, start, cuda_graph=True, **keywords)
    assert not torch.equal(eager, start)
    assert torch.equal(replayed, eager)


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_the_static_meta_iteration_equals_the_eager_one_for_one_candidate_and_the_interpreter(kind, unrecorded):
    texts = TREES[:2] if kind == "classification" else ("square(y - fx)", "abs(y - fx)")
    stacked, losses, start, keywords = _setup(kind, texts)
    for batch, weights in ((losses[:1], start[:1]), (LossProgram(losses), start)):
        eager = local_search(stacked, batch, weights, **keywords)
        assert torch.equal(local_search(stacked, batch, weights, cuda_graph=True, **keywords), eager)


def test_a_candidate_that_goes_non_finite_keeps_its_weights_and_leaves_the_others_exact(unrecorded):
    stacked, losses, start, keywords = _setup(texts=(TREES[0], OVERFLOWING, TREES[1]))
    eager = local_search(stacked, losses, start, **keywords)
    replayed = local_search(stacked, losses, start, cuda_graph=True, **keywords)
    assert torch.equal(replayed, eager)
    assert torch.equal(replayed[1], start[1])  # never a finite meta-gradient: untouched
    assert not torch.equal(replayed[0], start[0])


def test_no_meta_iteration_leaves_the_weights_as_they_are(unrecorded):
    stacked, losses, start, keywords = _setup(iterations=0)
    assert torch.equal(local_search(stacked, losses, start, cuda_graph=True, **keywords), start)


def test_asking_for_the_cuda_graph_off_cuda_runs_the_eager_local_search():
    stacked, losses, start, keywords = _setup()
    asked = local_search(stacked, losses, start, cuda_graph=True, **keywords)
    assert torch.equal(asked, local_search(stacked, losses, start, **keywords))


def test_the_static_adam_step_equals_the_masked_one():
    generator = torch.Generator().manual_seed(1)
    eager, static = MaskedAdam((4, 3), lr=0.1), MaskedAdam((4, 3), lr=0.1)
    a = torch.randn(4, 3, generator=generator)
    b = a.clone()
    for active in ([True] * 4, [True, False, True, False], [False] * 4, [False, True, True, True]):
        grad, mask = torch.randn(4, 3, generator=generator), torch.tensor(active)
        eager.step(a, grad, mask)
        static.step_static(b, grad, mask)
        assert torch.equal(a, b) and torch.equal(eager.m, static.m) and torch.equal(eager.v, static.v)
        assert torch.equal(eager.t, static.t)


def _rejection_inputs(texts, kind="classification"):
    generator = torch.Generator().manual_seed(3)
    targets = (
        torch.randint(0, 3, (32,), generator=generator)
        if kind == "classification"
        else torch.randn(32, generator=generator)
    )
    return _losses(*texts), dict(kind=kind, targets=targets, n_outputs=3 if kind == "classification" else 1)


def _rejection_fit(kind, texts, replayed):
    """The rejection's Adam fit of raw predictions, eager or replayed; the second candidate goes NaN."""
    losses, inputs = _rejection_inputs(texts, kind)
    losses.insert(1, NanAfter(texts[0], 7))  # goes NaN at its eighth step
    n_outputs, K = inputs["n_outputs"], len(losses)
    start = torch.randn(32, n_outputs, generator=torch.Generator().manual_seed(5))
    y = same_targets(target_to_y(inputs["targets"], n_outputs, kind, torch.float32), K)
    population = CandidateLosses(losses, torch.ones(K, max(x.n_weights for x in losses)), kind)
    raw = start.unsqueeze(0).repeat(K, 1, 1).requires_grad_(True)
    optimiser = MaskedAdam(raw.shape, lr=0.05, eps=1e-6)
    if replayed:
        return raw.detach(), replayed_fit(raw, population, y, optimiser, steps=40)
    values = lambda p, _: population.per_copy(p["raw"], y)  # noqa: E731
    return raw.detach(), ~train_population({"raw": raw}, values, _adam_update(optimiser), steps=40).diverged


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_the_replayed_rejection_fit_equals_the_eager_one(kind, monkeypatch):
    # no warm-ups here: they would advance NanAfter's count of calls
    monkeypatch.setattr(screening_module, "capture_step", lambda step, warm_up, device: step)
    texts = (*TREES, "fx") if kind == "classification" else ("square(y - fx)", "fx")
    (eager, eager_finite), (replayed, replayed_finite) = (_rejection_fit(kind, texts, r) for r in (False, True))
    assert replayed_finite.tolist() == eager_finite.tolist() == [True, False] + [True] * (len(texts) - 1)
    assert torch.equal(replayed, eager)


def _adam_update(optimiser):
    def update(params, grads, active):
        optimiser.step(params["raw"], grads[0], active)
        return params

    return update


def test_the_rejection_protocol_takes_the_recorded_path_with_the_same_verdicts(unrecorded):
    losses, inputs = _rejection_inputs((*TREES, "fx", OVERFLOWING))
    keywords = dict(steps=30, lr=0.01, margin=0.05, seed=4, **inputs)
    assert rejection_protocol(losses, cuda_graph=True, **keywords).tolist() == [True, True, True, False, False]


def test_asking_for_the_cuda_graph_off_cuda_runs_the_eager_rejection():
    losses, inputs = _rejection_inputs((*TREES, "fx"))
    keywords = dict(steps=30, lr=0.01, margin=0.05, seed=4, **inputs)
    passed = rejection_protocol(losses, cuda_graph=True, **keywords)
    assert torch.equal(passed, rejection_protocol(losses, **keywords))
    assert passed.tolist() == [True, True, True, False]


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
@pytest.mark.cuda
@needs_cuda
def test_the_captured_local_search_matches_the_eager_one_on_the_gpu(options):
    stacked, losses, start, keywords = _setup(texts=(*TREES, OVERFLOWING), device="cuda")
    keywords.update(options)
    if "probe" in options:
        probe = options["probe"]
        keywords["probe"] = ScaleProbe(probe.outputs.cuda(), probe.targets.cuda(), probe.kind)
    eager = local_search(stacked, losses, start, **keywords)
    captured = local_search(stacked, losses, start, cuda_graph=True, **keywords)
    torch.testing.assert_close(captured, eager, rtol=1e-5, atol=1e-6)
    assert torch.equal(captured[3], start[3])


@pytest.mark.cuda
@needs_cuda
def test_the_captured_rejection_matches_the_eager_one_on_the_gpu():
    losses, inputs = _rejection_inputs((*TREES, "fx"))
    inputs["targets"] = inputs["targets"].cuda()
    keywords = dict(steps=60, lr=0.01, margin=0.05, seed=4, **inputs)
    captured = rejection_protocol(losses, cuda_graph=True, **keywords)
    assert captured.tolist() == rejection_protocol(losses, **keywords).tolist() == [True, True, True, False]
