"""Invalid configs, overrides and checkpoints through the real CLI: one line, exit 1,
nothing trained (issue 12 items 5 and 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mrirecon.cli import main
from mrirecon.train.checkpoint import Checkpoint
from mrirecon.train.config import load_train_config
from tests.conftest import make_volume, write_fastmri


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One small multi-coil volume with a target (never read: every case fails first)."""
    root = tmp_path_factory.mktemp("cfg_cli_data")
    k, t = make_volume(True, slices=2, seed=5)
    write_fastmri(root / "vol.h5", k, t, multicoil=True)
    return root


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


BAD_TRAIN_CONFIGS = [
    ("mask:\n  accelerations: [.nan]\n", "mask.accelerations: expected a finite number"),
    ("mask:\n  accelerations: [0]\n", "mask.accelerations must be finite and >= 1, got 0.0"),
    ("mask:\n  accelerations: [-4]\n", "mask.accelerations must be finite and >= 1"),
    ("mask:\n  center_fractions: [0]\n", "mask.center_fractions must be in (0, 1)"),
    ("mask:\n  center_fractions: [.nan]\n", "mask.center_fractions: expected a finite number"),
    ("data:\n  max_train_slices: -5\n", "data.max_train_slices must be >= 0, got -5"),
    ("data:\n  max_val_volumes: -1\n", "data.max_val_volumes must be >= 0, got -1"),
    ("data:\n  num_workers: -2\n", "data.num_workers must be >= 0"),
    ("optim:\n  grad_clip: -1\n", "optim.grad_clip must be >= 0 (0 = off), got -1.0"),
    ("optim:\n  weight_decay: -0.1\n", "optim.weight_decay must be >= 0"),
    ("optim:\n  betas: [0.9, 1.5]\n", "optim.betas must be in [0, 1)"),
    ("sched:\n  gamma: 0\n", "sched.gamma must be > 0"),
    ("loss:\n  ssim_weight: -1\n", "loss.ssim_weight must be >= 0"),
    ("augment:\n  scale_range: [0, 2]\n", "augment.scale_range must be finite with 0 < lo"),
    ("model:\n  drop_prob: 1.5\n", "model.drop_prob must be in [0, 1)"),
    ("model:\n  chans: 0\n", "model.chans must be >= 1"),
    ("model:\n  chans: 6\n  num_groups: 4\n", "model.num_groups 4 must divide model.chans 6"),
    ("run:\n  seed: -1\n", "run.seed must be >= 0"),
    ("run:\n  num_log_images: -1\n", "run.num_log_images must be >= 0"),
    ("foo: 1\n", "unknown config section 'foo'; valid sections: data, mask"),
    ("optim: [1, 2]\n", "optim must be a mapping, got [1, 2]"),
]


@pytest.mark.parametrize("text, message", BAD_TRAIN_CONFIGS, ids=lambda v: str(v)[:30])
def test_train_rejects_bad_config_values(tmp_path, data_root, capsys, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "run"
    argv = ["train", "--config", str(cfg), "--data-root", str(data_root), "--out", str(out)]
    assert main(argv) == 1
    _one_line_error(capsys, "bad.yaml: ", message)
    assert not out.exists()  # nothing trained, nothing written


@pytest.mark.parametrize(
    "item, message",
    [
        ("run.epochs=[1", "--set 'run.epochs=[1': value is not valid YAML"),
        ("run.epochs", "--set 'run.epochs': expected KEY=VALUE"),
        ("mask.accelerations=[.nan]", "--set mask.accelerations=[.nan]: mask.accelerations:"),
        ("optim.grad_clip=-1", "--set optim.grad_clip=-1: optim.grad_clip must be >= 0"),
        ("optim=[1, 2]", "--set optim=[1, 2]: optim must be a mapping"),
    ],
)
def test_train_rejects_bad_overrides(tmp_path, data_root, capsys, item, message):
    out = tmp_path / "run"
    argv = ["train", "--data-root", str(data_root), "--out", str(out), "--set", item]
    assert main(argv) == 1
    _one_line_error(capsys, message)
    assert not out.exists()


def test_resume_from_a_checkpoint_with_a_bad_model_entry(tmp_path, data_root, capsys):
    cfg = load_train_config(
        None, ["model.chans=4", "model.num_pool_layers=2", "model.num_groups=2"]
    )
    torch.manual_seed(0)
    raw = Checkpoint(config=cfg, model=cfg.model.build().state_dict()).to_dict()
    run = tmp_path / "run"
    run.mkdir()
    torch.save({**raw, "model": [1, 2, 3]}, run / "last.pt")
    assert main(["train", "--resume", str(run), "--data-root", str(data_root)]) == 1
    _one_line_error(capsys, "last.pt: checkpoint entry 'model' must be a mapping")
    torch.save({**raw, "config": {"optim": [1]}}, run / "last.pt")
    assert main(["train", "--resume", str(run), "--data-root", str(data_root)]) == 1
    _one_line_error(capsys, "last.pt: stored config is invalid (", "optim must be a mapping")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only torch")
def test_train_on_cuda_without_a_gpu_is_one_line(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data-root", str(data_root), "--out", str(out), "--set", "run.device=cuda"]
    assert main(argv) == 1
    _one_line_error(capsys, "run.device=cuda but no CUDA device is available")
    assert not out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("cs:\n  lam: .nan\n", "bad.yaml: lam: expected a finite number"),
        ("cs:\n  lams: {4: .nan}\n", "bad.yaml: lams: expected a finite number"),
        ("cs:\n  lams: {0: 1e-3}\n", "bad.yaml: lams must be non-empty (acceleration > 0"),
        ("cs:\n  tol: -1\n", "bad.yaml: tol must be >= 0"),
        ("cs:\n  espirit: {threshold: .nan}\n", "bad.yaml: espirit.threshold: expected a finite"),
        ("cs:\n  batch_size: 0\n", "bad.yaml: batch_size must be >= 1"),
        ("cs: [1]\n", "bad.yaml: a config must be a mapping, got list"),
    ],
)
def test_cs_tune_rejects_bad_config_values(tmp_path, data_root, capsys, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "tuned.yaml"
    argv = ["cs", "tune", "--data", str(data_root), "--config", str(cfg), "--out", str(out)]
    assert main(argv) == 1
    _one_line_error(capsys, message)
    assert not out.exists()


def test_cs_tune_rejects_bad_iterations(tmp_path, data_root, capsys):
    out = tmp_path / "tuned.yaml"
    argv = ["cs", "tune", "--data", str(data_root), "--out", str(out), "--iterations", "0"]
    assert main(argv) == 1
    _one_line_error(capsys, "iterations must be >= 1, got 0")
    assert not out.exists()
