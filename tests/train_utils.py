"""Helpers for training tests: per-step losses of a run, and a fit killed with SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from mrirecon.train.logs import read_metrics


def step_losses(run_dir: Path) -> dict[int, float]:
    """Loss of every optimiser step (a resumed run's later record of a step wins)."""
    return {r["step"]: r["loss"] for r in read_metrics(run_dir / "metrics.jsonl", "step")}


def sigkill_fit(target: Callable[..., None], args: tuple, run_dir: Path, at_step: int) -> int:
    """Run ``target(*args)`` (a fit writing ``run_dir``) in a forked child and SIGKILL it as
    soon as its log holds step ``at_step``; returns the child's exit code (-SIGKILL when the
    kill landed, 0 when the run had already ended)."""
    proc = multiprocessing.get_context("fork").Process(target=target, args=args)
    proc.start()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.is_alive():
            log = run_dir / "metrics.jsonl"
            if log.exists() and max(step_losses(run_dir), default=0) >= at_step:
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(30)
    return proc.exitcode
