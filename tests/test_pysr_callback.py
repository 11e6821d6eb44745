"""The PySR callback's bounds and its serial path: a candidate whose evaluator never
answers is scored ``inf`` within the candidate timeout, and a serial search skips
the batch window. The Julia side of the bound runs only where Julia is installed.
"""

from __future__ import annotations

import math
import threading
import time
import warnings

import pytest
from juliahelpers import julia_skip_reason
from test_pysr_engine import FakeEvaluator, fake_fitness

from evomal_sr.engines.pysr import bridge_settings
from evomal_sr.engines.pysr.bridge import CandidateTimeoutWarning, LossCallback
from evomal_sr.engines.pysr.text import canonical_expression
from evomal_sr.errors import ConfigError
from evomal_sr.grammar.expression import Expression
from evomal_sr.scoring.evaluator import FitnessResult


class Instant:
    """Answers every expression at once with fitness 0.5; records the batches."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batches: list[list[str]] = []

    def evaluate(self, texts):
        self.batches.append(list(texts))
        time.sleep(self.delay)
        return [
            FitnessResult(t, 0.5, "ok", (1.0,) * (Expression.parse(t).size - 1), Expression.parse(t).complexity)
            for t in texts
        ]


class NeverAnswers:
    """An evaluator that hangs (until released, so the test leaves no thread behind)."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()

    def evaluate(self, texts):
        self.started.set()
        self.release.wait(60)
        return [FitnessResult(t, 0.5, "ok", (), 1) for t in texts]


def poll_until_answered(callback, ticket, deadline_s: float):
    """What ``loss_objective.jl`` does: poll, sleep, until the answer is not NaN."""
    deadline = time.monotonic() + deadline_s
    while math.isnan(value := callback.poll(ticket)):
        assert time.monotonic() < deadline, "the poll loop did not end within its bound"
        time.sleep(0.005)
    return value


# ------------------------------------------------------------------ the candidate timeout
def test_a_candidate_that_never_gets_an_answer_is_scored_inf_within_the_bound():
    evaluator = NeverAnswers()
    callback = LossCallback(evaluator, window=0.0, timeout=0.3)
    try:
        tick = time.monotonic()
        ticket = callback.submit("y * fx")
        assert evaluator.started.wait(5)
        with pytest.warns(CandidateTimeoutWarning, match=r"'y \* fx' after 0.3 s"):
            value = poll_until_answered(callback, ticket, deadline_s=5)
        elapsed = time.monotonic() - tick
        assert value == math.inf and 0.3 <= elapsed < 2.0
        assert callback.snapshot().expired == 1
        assert callback.poll(ticket) == math.inf  # forgotten, not pending again
    finally:
        evaluator.release.set()
        callback.close(timeout=5)


def test_the_bound_does_not_cut_short_a_slow_but_answering_evaluator():
    with LossCallback(Instant(delay=0.3), window=0.0, timeout=5) as callback:
        with warnings.catch_warnings():
            warnings.simplefilter("error", CandidateTimeoutWarning)
            assert poll_until_answered(callback, callback.submit("y * fx"), deadline_s=5) == 0.5
        assert callback.snapshot().expired == 0


def test_direct_calls_use_the_candidate_timeout_by_default():
    evaluator = NeverAnswers()
    callback = LossCallback(evaluator, timeout=0.2)
    try:
        tick = time.monotonic()
        with pytest.warns(CandidateTimeoutWarning):
            assert callback("y - fx") == math.inf
        assert time.monotonic() - tick < 2.0
    finally:
        evaluator.release.set()
        callback.close(timeout=5)


def test_closing_after_a_hung_batch_is_bounded_and_warns():
    evaluator = NeverAnswers()
    callback = LossCallback(evaluator, window=0.0, timeout=0.2)
    ticket = callback.submit("y * fx")
    assert evaluator.started.wait(5)
    tick = time.monotonic()
    with pytest.warns(CandidateTimeoutWarning, match="left running"):
        callback.close(timeout=0.2)
    assert time.monotonic() - tick < 2.0
    assert callback.poll(ticket) == math.inf  # pending requests are failed at close
    evaluator.release.set()


@pytest.mark.parametrize("value", [0, -1, math.inf, "60", True])
def test_candidate_timeout_option_is_validated(value):
    with pytest.raises(ConfigError, match="candidate_timeout"):
        bridge_settings({"candidate_timeout": value})


def test_callback_rejects_a_non_positive_timeout():
    with pytest.raises(ValueError):
        LossCallback(Instant(), timeout=0)


# ------------------------------------------------------------------ the serial path
def test_serial_settings_skip_the_batch_window():
    serial = bridge_settings({"deterministic": True, "batch_window": 1.0, "candidate_timeout": 30})
    assert serial == {"window": 0.0, "poll_wait": pytest.approx(0.25), "timeout": 30.0}
    threaded = bridge_settings({"batch_window": 1.0})
    assert threaded["window"] == 1.0 and threaded["poll_wait"] == 0.0


@pytest.mark.parametrize("deterministic", [True, False])
def test_a_serial_request_is_answered_without_waiting_the_window(deterministic):
    evaluator = Instant()
    settings = bridge_settings({"deterministic": deterministic, "batch_window": 1.0})
    with LossCallback(evaluator, **settings) as callback:
        tick = time.monotonic()
        value = poll_until_answered(callback, callback.submit("y * fx"), deadline_s=10)
        elapsed = time.monotonic() - tick
    assert value == 0.5 and evaluator.batches == [["(y * fx)"]]
    if deterministic:
        assert elapsed < 0.5, f"the serial path waited {elapsed:.2f} s"
    else:  # the multithreaded path does wait for company: the window is real
        assert elapsed >= 1.0


def test_serial_polls_wait_for_the_answer_and_multithreaded_polls_do_not():
    with LossCallback(Instant(delay=0.2), window=0.0, poll_wait=2.0) as callback:
        tick = time.monotonic()
        assert callback.poll(callback.submit("y * fx")) == 0.5  # one poll, answered
        assert time.monotonic() - tick < 1.5
    with LossCallback(Instant(delay=0.2), window=0.0, poll_wait=0.0) as callback:
        tick = time.monotonic()
        assert math.isnan(callback.poll(callback.submit("y * fx")))  # pending, at once
        assert time.monotonic() - tick < 0.15


def test_serial_requests_are_one_batch_each():
    evaluator = Instant()
    with LossCallback(evaluator, **bridge_settings({"deterministic": True})) as callback:
        for text in ("y * fx", "y - fx", "aq(y, fx)"):
            assert poll_until_answered(callback, callback.submit(text), deadline_s=5) == 0.5
    assert evaluator.batches == [["(y * fx)"], ["(y - fx)"], ["aq(y, fx)"]]


# ------------------------------------------------------------------ memo, batches, failures
def test_callback_memoises_on_text_and_canonical_form():
    evaluator = FakeEvaluator()
    with LossCallback(evaluator) as callback:
        first = callback("y * plog(fx)")
        again = [callback("y * plog(fx)"), callback("(y * log(fx))"), callback("((y) * plog(fx))")]
    assert evaluator.requested == ["(y * log(fx))"]
    assert first == fake_fitness("(y * log(fx))") and again == [first] * 3
    assert callback.stats.calls == 4 and callback.stats.memo_hits == 3 and callback.stats.batches == 1
    assert callback.result_for("y * plog(fx)").weights == evaluator.result("(y * log(fx))").weights


@pytest.mark.parametrize("kind", ["bad string", "incomplete", "evaluator raises", "nan fitness", "not a str"])
def test_callback_returns_inf_on_every_failure(kind):
    target = "(y * log(fx))"
    evaluator = FakeEvaluator(
        fail_on={target} if kind == "evaluator raises" else (), nan_on={target} if kind == "nan fitness" else ()
    )
    text = {"bad string": "y / fx", "incomplete": "plog(fx)", "not a str": 3.5}.get(kind, "y * plog(fx)")
    with LossCallback(evaluator) as callback:
        assert callback(text) == math.inf
        assert callback(text) == math.inf  # and memoised
        assert callback("fx - y") == fake_fitness("(fx - y)")  # other candidates are unaffected
    if kind in ("bad string", "incomplete", "not a str"):
        assert target not in evaluator.requested


def test_a_failing_batch_is_retried_one_by_one():
    evaluator = FakeEvaluator(delay=0.05, fail_on={"(y * fx)"})
    texts = ["y * fx", "y - fx", "y + fx", "aq(y, fx)"]
    with LossCallback(evaluator, window=0.2) as callback:
        tickets = [callback.submit(t) for t in texts]
        deadline = time.monotonic() + 10
        values = [math.nan] * len(texts)
        while any(math.isnan(v) for v in values) and time.monotonic() < deadline:
            values = [callback.poll(t) if math.isnan(v) else v for t, v in zip(tickets, values)]
            time.sleep(0.01)
    assert values[0] == math.inf
    assert values[1:] == [fake_fitness(str(canonical_expression(t))) for t in texts[1:]]
    assert evaluator.batches[0] == [str(canonical_expression(t)) for t in texts]


def test_callback_survives_an_evaluator_returning_the_wrong_length():
    class Short(FakeEvaluator):
        def evaluate(self, expressions):
            return super().evaluate(expressions)[:-1]

    with LossCallback(Short()) as callback:
        assert callback("y * fx") == math.inf


EXPRESSIONS = [f"(y * {c}.0) - aq(fx, y)" for c in range(1, 33)]


@pytest.mark.parametrize("use_tickets", [False, True])
def test_concurrent_requests_are_served_in_batches(use_tickets):
    evaluator = FakeEvaluator(delay=0.05)
    answers: dict[int, float] = {}
    start = threading.Barrier(len(EXPRESSIONS))

    def worker(i, callback):
        start.wait()
        if not use_tickets:
            answers[i] = callback(EXPRESSIONS[i])
            return
        ticket = callback.submit(EXPRESSIONS[i])  # how the Julia objective asks
        while math.isnan(value := callback.poll(ticket)):
            time.sleep(0.002)
        answers[i] = value

    with LossCallback(evaluator, window=0.02) as callback:
        threads = [threading.Thread(target=worker, args=(i, callback)) for i in range(len(EXPRESSIONS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    sizes = callback.stats.batch_sizes
    assert sum(sizes) == len(EXPRESSIONS) and len(sizes) < len(EXPRESSIONS) / 2 and max(sizes) > 1
    for i, text in enumerate(EXPRESSIONS):
        assert answers[i] == fake_fitness(str(canonical_expression(text)))


def test_poll_and_close_semantics():
    evaluator = FakeEvaluator(delay=0.2)
    callback = LossCallback(evaluator)
    ticket = callback.submit("y * fx")
    assert math.isnan(callback.poll(ticket))  # pending
    assert callback.poll(10_000) == math.inf  # unknown ticket
    callback.close()
    assert callback.poll(ticket) == fake_fitness("(y * fx)")  # the batch in progress finished
    assert callback("y - fx") == math.inf  # closed
    assert not callback._worker.is_alive()


def test_waiting_too_long_gives_inf():
    with LossCallback(FakeEvaluator(delay=0.5)) as callback:
        with pytest.warns(CandidateTimeoutWarning, match="y \\* fx"):
            assert callback("y * fx", timeout=0.01) == math.inf
        assert callback("y * fx") == fake_fitness("(y * fx)")


def test_on_batch_errors_are_kept_not_raised():
    def hook(results, seconds):
        raise ValueError("progress bar broke")

    with LossCallback(FakeEvaluator(), on_batch=hook) as callback:
        assert callback("y * fx") == fake_fitness("(y * fx)")
    assert isinstance(callback.error, ValueError)


@pytest.mark.slow
def test_callback_with_the_real_evaluator():
    from evomal_sr.data.tasks import Task
    from evomal_sr.scoring.evaluator import Evaluator

    evaluator = Evaluator(Task.builtin("iris", seed=0), preset="tiny", repair=False)
    with LossCallback(evaluator) as callback:
        cross_entropy = callback("-1.0f0 * (y * plog(fx))")
        assert math.isfinite(cross_entropy) and 0.0 <= cross_entropy <= 1.0
        assert callback("plog(fx)") == math.inf  # lacks y: rejected before training
    result = callback.result_for("(-1.0 * (y * log(fx)))")
    assert result.trained and len(result.weights) == Expression.parse(result.expression).size - 1


# ------------------------------------------------------------------ the Julia side (needs Julia)


@pytest.mark.julia
@pytest.mark.skipif(julia_skip_reason() is not None, reason=julia_skip_reason() or "")
def test_the_julia_poll_loop_gives_up_after_its_limit():
    from evomal_sr.engines.pysr import load_objective, start_julia

    start_julia()
    from juliacall import Main as jl

    load_objective(jl)

    class Pending:  # submits, then answers "pending" forever
        def submit(self, text):
            return 1

        def poll(self, ticket):
            return math.nan

    jl.EvomalPySR.install_callback(Pending(), 0.5)
    try:
        tick = time.monotonic()
        assert float(jl.EvomalPySR.request_fitness("y * fx")) == math.inf
        assert 0.5 <= time.monotonic() - tick < 5.0
    finally:
        jl.EvomalPySR.remove_callback()
