"""Resume rules (mrirecon.train.resume) and torchrun's environment (train.runtime)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mrirecon.device import TorchrunEnv, torchrun_env
from mrirecon.errors import ConfigError
from mrirecon.train.checkpoint import Checkpoint, save_checkpoint
from mrirecon.train.config import load_train_config
from mrirecon.train.resume import RESUME_MUTABLE, resume_config

TINY = ["model.chans=4", "model.num_pool_layers=2", "model.num_groups=2", "run.epochs=2"]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    cfg = load_train_config(None, TINY)
    torch.manual_seed(0)
    ckpt = Checkpoint(
        config=cfg, model=cfg.model.build().state_dict(), data_root="/d", val_root="/v"
    )
    save_checkpoint(tmp_path / "last.pt", ckpt)
    return tmp_path


def test_resume_keeps_the_stored_config_and_roots(run_dir):
    plan = resume_config(run_dir, None, ["run.epochs=5", "data.num_workers=2"])
    assert plan.config.run.epochs == 5 and plan.config.data.num_workers == 2
    assert plan.config.model.chans == 4  # from the run, not the defaults
    assert (plan.data_root, plan.val_root) == (Path("/d"), Path("/v"))
    assert {"run.epochs", "data.num_workers"} <= RESUME_MUTABLE


def test_resume_refuses_changes_that_shape_the_weights(run_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"--resume must keep .*optim\.lr: 0\.001 -> 0\.01"):
        resume_config(run_dir, None, ["optim.lr=1e-2"])
    other = tmp_path / "other.yaml"
    other.write_text("model:\n  chans: 8\n")
    with pytest.raises(ConfigError, match=r"model\.chans: 4 -> 8"):
        resume_config(run_dir, other, [])
    with pytest.raises(ConfigError, match=r"^--set optim\.lrr=1: unknown key optim\.lrr"):
        resume_config(run_dir, None, ["optim.lrr=1"])


def test_torchrun_env(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert torchrun_env() == TorchrunEnv(0, 1, 0)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_env() == TorchrunEnv(rank=1, world_size=2, local_rank=1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2 is not below WORLD_SIZE=2"):
        torchrun_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match=r"WORLD_SIZE='two' must be an integer >= 1"):
        torchrun_env()
