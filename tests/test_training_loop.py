"""The step loop the denoising trainers share (ipbench/training/loop.py)."""
import pytest
import torch

from ipbench.training import loop
from tests.test_mini_sd import FakeClock


def test_min_snr_weights_follow_the_paper():
    snr = torch.tensor([0.25, 1.0, 5.0, 20.0])
    # Hang et al. 2023, gamma 5: epsilon min(SNR, 5) / SNR; v-prediction min(SNR, 5) / (SNR + 1).
    assert torch.allclose(loop.min_snr_weights(snr, 5.0), torch.tensor([1.0, 1.0, 1.0, 0.25]))
    assert torch.allclose(loop.min_snr_weights(snr, 5.0, "v_prediction"),
                          torch.tensor([0.2, 0.5, 5 / 6, 5 / 21]))


def _quadratic(steps=7, **kwargs):
    weight = torch.nn.Parameter(torch.tensor([3.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    run = loop.TrainingSteps("test", optimizer, [weight], 0.1, steps, started=loop.time.perf_counter(),
                             device="cpu", **kwargs)
    seen = []
    for step in run:
        seen.append(step)
        run.update((weight ** 2).sum())
    return run, seen, weight


def test_training_steps_run_every_step_and_log_every_nth_and_the_last():
    run, seen, weight = _quadratic(steps=7, log_every=3)
    record = run.record()
    assert seen == list(range(7)) and record["stopped_at_step"] == 7
    assert [row["step"] for row in record["history"]] == [0, 3, 6]
    assert record["first_loss"] == pytest.approx(9.0) and record["final_loss"] < record["first_loss"]
    assert 0 < abs(weight.item()) < 3.0


def test_gradient_clipping_is_on_by_default_and_can_be_turned_off():
    # At w = 3 the gradient of w^2 is 6: clipped to norm 1 one SGD step at lr 0.1 gives 2.9, unclipped 2.4.
    assert _quadratic(steps=1)[2].item() == pytest.approx(2.9, abs=1e-5)
    assert _quadratic(steps=1, clip_norm=None)[2].item() == pytest.approx(2.4, abs=1e-6)


def test_the_time_limit_covers_the_preparation_and_stops_the_run(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(loop, "time", clock)
    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    started = clock.perf_counter()
    clock.now += 5.0  # five seconds of preparation
    run = loop.TrainingSteps("test", optimizer, [weight], 0.1, 10_000, started, "cpu", time_limit_s=20)
    assert run.prepare_seconds == pytest.approx(6.0)
    for _ in run:
        run.update((weight ** 2).sum())
    record = run.record()
    # 14 s were left after the preparation; each step reads the clock twice (finished, set_lr).
    assert record["stopped_at_step"] == 6
    assert record["train_seconds"] == pytest.approx(14.0)


class WallClock(FakeClock):
    """FakeClock with a unix time too (the lease deadline is one)."""

    def time(self):
        return 1_000_000.0 + self.now


def test_a_lease_deadline_shortens_the_time_limit_and_stops_the_run_in_time(monkeypatch):
    clock = WallClock()
    monkeypatch.setattr(loop, "time", clock)
    weight = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    monkeypatch.setenv(loop.DEADLINE_ENV, str(clock.time() + 10))  # sooner than the 20 s limit
    run = loop.TrainingSteps("test", optimizer, [weight], 0.1, 10_000, clock.perf_counter(), "cpu", time_limit_s=20)
    for _ in run:
        run.update((weight ** 2).sum())
    record = run.record()
    assert record["train_time_limit_s"] == pytest.approx(8.0)  # two clock reads went to setting up
    assert record["train_seconds"] <= 10.0 and record["stopped_at_step"] < 10
    monkeypatch.setenv(loop.DEADLINE_ENV, str(clock.time() + 1000))  # later than the limit: the limit holds
    assert loop.lease_limit(20.0) == 20.0 and loop.lease_limit(None) == pytest.approx(1000.0)
    monkeypatch.setenv(loop.DEADLINE_ENV, "soon")
    with pytest.raises(ValueError, match=r"\$IPBENCH_TRAIN_DEADLINE='soon': expected a unix time"):
        loop.lease_limit(20.0)
    monkeypatch.delenv(loop.DEADLINE_ENV)
    assert loop.lease_limit(20.0) == 20.0
