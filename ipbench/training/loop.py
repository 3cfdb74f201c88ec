"""Pieces every training loop shares: a time-aware schedule, autocast, fp16 saving, progress."""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import torch


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (CPU training is for tests and small user runs)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_half(model, out_dir: Path) -> None:
    """``save_pretrained`` with float16 weights (half the bytes in the repo), then back to float32.

    Loaders must ask for float32 explicitly (``torch_dtype=``/``dtype=torch.float32``):
    diffusers and transformers otherwise keep the stored float16.
    """
    model.to(torch.float16).save_pretrained(out_dir, safe_serialization=True)
    model.to(torch.float32)


DEADLINE_ENV = "IPBENCH_TRAIN_DEADLINE"


def lease_limit(time_limit_s: float | None) -> float | None:
    """``time_limit_s``, shortened to the seconds left before ``$IPBENCH_TRAIN_DEADLINE`` (unix time) where that
    is set: scripts/gpu_retrain.sh sets it from the device call's length, less the time that evaluating and
    packing need, so training stops in time for its manifest to be written inside the call."""
    value = os.environ.get(DEADLINE_ENV)
    if not value:
        return time_limit_s
    try:
        left = max(float(value) - time.time(), 1.0)
    except ValueError:
        raise ValueError(f"${DEADLINE_ENV}={value!r}: expected a unix time in seconds") from None
    return left if time_limit_s is None else min(time_limit_s, left)


class ProgressSchedule:
    """Linear warmup, then cosine decay over training *progress*: the larger of steps done / ``steps``
    and time used / ``time_limit_s`` (shortened by a lease deadline: :func:`lease_limit`). A run that the
    time limit stops early still ends at a decayed learning rate, so stopping (recorded as
    ``stopped_at_step``) costs steps, not a cut-short schedule.
    """

    def __init__(self, optimizer, lr: float, steps: int, time_limit_s: float | None = None,
                 warmup: int | None = None):
        self.optimizer, self.lr, self.steps = optimizer, lr, max(steps, 1)
        self.time_limit_s = lease_limit(time_limit_s)
        self.warmup = max(1, min(500, steps // 20) if warmup is None else warmup)
        self.started = time.perf_counter()

    def progress(self, step: int) -> float:
        done = step / self.steps
        if self.time_limit_s:
            done = max(done, (time.perf_counter() - self.started) / self.time_limit_s)
        return done

    def set_lr(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup)
        lr = self.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress(step))))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def finished(self, step: int) -> bool:
        return self.progress(step) >= 1.0


def min_snr_weights(snr: torch.Tensor, gamma: float, prediction_type: str = "epsilon") -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023) at the drawn timesteps' SNR: min(SNR, gamma) / SNR
    for epsilon prediction, min(SNR, gamma) / (SNR + 1) for v-prediction."""
    return snr.clamp(max=gamma) / (snr + 1 if prediction_type == "v_prediction" else snr)


class TrainingSteps:
    """The step loop the denoising trainers share. Iterating yields step numbers until ``steps`` are done
    or the time limit ends the schedule (the limit covers the preparation since ``started``, so a lease
    limit is kept); ``update(loss)`` takes one optimizer step (gradient clipping, EMA) and logs the loss;
    ``record()`` is what the manifest keeps of the run: its ``steady_seconds_per_step`` leaves out the
    first ``WARM_STEPS`` steps (cuDNN autotuning, torch.compile), so settings compare at their running speed.
    """

    WARM_STEPS = 10

    def __init__(self, name: str, optimizer, parameters, lr: float, steps: int, started: float, device,
                 time_limit_s: float | None = None, log_every: int = 100, ema=None, clip_norm: float | None = 1.0):
        self.prepare_seconds = time.perf_counter() - started
        limit = max(time_limit_s - self.prepare_seconds, 1.0) if time_limit_s else None
        self.schedule = ProgressSchedule(optimizer, lr, steps, limit)
        self.name, self.optimizer, self.parameters, self.steps, self.device = name, optimizer, list(parameters), \
            steps, device
        self.log_every, self.ema, self.clip_norm = log_every, ema, clip_norm
        self.history: list[dict] = []
        self.stopped_at_step, self.train_seconds, self.steady_seconds_per_step = steps, 0.0, None

    def __iter__(self):
        bar = progress_bar(self.steps, self.name)
        started = time.perf_counter()
        steady_started = None
        for step in range(self.steps):
            if self.schedule.finished(step):
                self.stopped_at_step = step
                break
            if step == self.WARM_STEPS:
                steady_started = seconds_since(started, self.device)
            bar.update()
            self._step, self._lr = step, self.schedule.set_lr(step)
            yield step
        bar.close()
        self.train_seconds = seconds_since(started, self.device)
        if steady_started is not None and self.stopped_at_step > self.WARM_STEPS:
            self.steady_seconds_per_step = ((self.train_seconds - steady_started)
                                            / (self.stopped_at_step - self.WARM_STEPS))

    def update(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.clip_norm)
        self.optimizer.step()
        if self.ema:
            self.ema.step(self.parameters)
        if self._step % self.log_every == 0 or self._step == self.steps - 1:
            self.history.append({"step": self._step, "loss": loss.item(), "lr": self._lr})

    def record(self) -> dict:
        history = self.history
        return {"steps": self.steps, "stopped_at_step": self.stopped_at_step,
                "train_time_limit_s": self.schedule.time_limit_s,  # after preparation and a lease deadline
                "prepare_seconds": self.prepare_seconds, "train_seconds": self.train_seconds,
                "seconds_per_step": self.train_seconds / max(self.stopped_at_step, 1),
                "steady_seconds_per_step": self.steady_seconds_per_step, "device": str(self.device),
                "first_loss": history[0]["loss"] if history else None,
                "final_loss": history[-1]["loss"] if history else None, "history": history}


def seconds_since(started: float, device) -> float:
    """Wall seconds of a training loop, after the GPU's queued work has finished."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr (the rule's log inside a job); sparse updates, so logs stay small."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, file=sys.stderr, mininterval=0.5 if interactive else 15.0,
                ascii=not interactive, dynamic_ncols=interactive)
