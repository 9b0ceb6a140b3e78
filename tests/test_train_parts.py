"""Training building blocks: config schema, losses, schedules, optimisers, augmentation, checkpoints."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mrirecon.fft import fft2c, ifft2c
from mrirecon.metrics import ssim_torch
from mrirecon.train.augment import KspaceAugment
from mrirecon.train.checkpoint import (
    Checkpoint,
    checkpoint_hash,
    load_checkpoint,
    load_model,
    model_hash,
    save_checkpoint,
)
from mrirecon.train.config import (
    AugmentConfig,
    LossConfig,
    OptimConfig,
    SchedConfig,
    TrainConfig,
    load_train_config,
    train_config_from_dict,
    train_config_to_dict,
)
from mrirecon.train.losses import build_loss, ssim_loss
from mrirecon.train.optim import build_optimizer, build_scheduler, lr_factor

# Training configs; configs/cs_*.yaml hold CS settings (tested in tests/test_cs_cli.py).
CONFIGS = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
    if not p.name.startswith("cs_")
)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_round_trip(path):
    cfg = load_train_config(path)
    assert train_config_from_dict(train_config_to_dict(cfg)) == cfg


def test_shipped_configs_present():
    names = {p.name for p in CONFIGS}
    assert "demo.yaml" in names and any(n.startswith("knee_") for n in names)


def test_overrides_are_typed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "optim:\n  lr: 1e-3\nmask:\n  accelerations: [4, 8]\n  center_fractions: [0.08, 0.04]\n"
    )
    cfg = load_train_config(path, ["optim.lr=3e-4", "optim.betas=0.8,0.99", "run.compile=yes"])
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.betas == (0.8, 0.99)
    assert cfg.mask.accelerations == (4.0, 8.0)
    assert cfg.run.compile is True
    assert load_train_config(None) == TrainConfig()


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["optim.lrr=1"], r"unknown key optim\.lrr; valid keys in 'optim': name, lr, betas"),
        (["optimiser.lr=1"], r"unknown config section 'optimiser'; valid sections: data, mask"),
        (["run.epochs=many"], r"run\.epochs: expected int"),
        (["optim.name=adamax"], r"optim\.name: unknown 'adamax'; choose from"),
        (["optim.betas=0.9"], r"optim\.betas: expected 2 values"),
        (["lr=1"], r"--set lr=1: unknown config section 'lr'"),
        (["loss.noharm_weight=-1"], r"loss\.noharm_weight"),
        (["loss.noharm_start_epoch=-2"], r"loss\.noharm_start_epoch must be >= 0, got -2"),
        (
            ["run.snapshot_every=-1"],
            r"run\.snapshot_every must be >= 0 \(0: no snapshots\), got -1",
        ),
    ],
)
def test_bad_config_values_give_clear_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        load_train_config(None, overrides)


def test_bad_yaml_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        load_train_config(bad)
    with pytest.raises(ValueError, match="no such config file"):
        load_train_config(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- losses


def _loss_inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 12, 11, generator=g, dtype=dtype)
    pred = (target + 0.1 * torch.randn(2, 1, 12, 11, generator=g, dtype=dtype)).requires_grad_(True)
    mean = torch.tensor([0.5, 1.5], dtype=dtype)
    std = torch.tensor([0.2, 0.3], dtype=dtype)
    return pred, target, mean, std


@pytest.mark.parametrize("name", ["ssim", "mix"])
def test_loss_gradcheck_float64(name):
    pred, target, mean, std = _loss_inputs()
    fn = build_loss(LossConfig(name=name, l1_weight=0.3, ssim_weight=0.7))
    maxv = torch.tensor([2.0, 0.0], dtype=torch.float64)  # file max, and fallback to slice max
    assert torch.autograd.gradcheck(lambda p: fn(p, target, mean, std, maxv), (pred,))


def test_ssim_loss_matches_metric_on_denormalised_images():
    pred, target, mean, std = _loss_inputs()
    maxv = torch.tensor([3.0, 4.0], dtype=torch.float64)
    got = ssim_loss(pred, target, mean, std, maxv)
    p = pred.detach() * std.view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)
    t = target * std.view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)
    want = 1 - ssim_torch(t, p, maxv).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert ssim_loss(target, target, mean, std, maxv).item() == pytest.approx(0.0, abs=1e-12)
    l1 = build_loss(LossConfig(name="l1"))(pred, target, mean, std, maxv)
    assert l1.item() == pytest.approx((pred - target).abs().mean().item())


# ---------------------------------------------------------------- optimisers, schedules


def test_lr_schedules():
    warm = SchedConfig(name="cosine", warmup_steps=4, min_lr_factor=0.1)
    factors = [lr_factor(warm, s, 10, 100) for s in range(100)]
    assert factors[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert factors[4] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    step = SchedConfig(name="step", step_epochs=2, gamma=0.5)
    assert [lr_factor(step, s, 10, 100) for s in (0, 19, 20, 45)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(SchedConfig(), 1000, 10, 100) == 1.0


@pytest.mark.parametrize(
    "cfg, cls",
    [
        (OptimConfig(), torch.optim.Adam),
        (OptimConfig(name="adamw", weight_decay=0.01), torch.optim.AdamW),
        (OptimConfig(name="sgd", nesterov=True, momentum=0.9), torch.optim.SGD),
        (OptimConfig(name="rmsprop"), torch.optim.RMSprop),
    ],
)
def test_optimizers_and_scheduler_step(cfg, cls):
    p = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer([p], cfg)
    assert isinstance(opt, cls)
    sched = build_scheduler(
        opt, SchedConfig(name="cosine", warmup_steps=2), steps_per_epoch=5, epochs=2
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.lr / 3)
    (p**2).sum().backward()
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.lr * 2 / 3)
    assert (p.detach() < 1).all()


# ---------------------------------------------------------------- augmentation


def _kspace(seed=0, shape=(2, 16, 12)):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(*shape, generator=g, dtype=torch.float32) + 1j * torch.randn(
        *shape, generator=g
    )
    return fft2c(img.to(torch.complex64))


def test_augment_flips_are_image_flips_and_deterministic():
    k = _kspace()
    aug = KspaceAugment(AugmentConfig(enabled=True, hflip_p=1.0, vflip_p=1.0))
    out = aug(k, np.random.RandomState(0))
    torch.testing.assert_close(ifft2c(out), torch.flip(ifft2c(k), (-2, -1)), atol=1e-5, rtol=0)
    rot = KspaceAugment(AugmentConfig(enabled=True, hflip_p=0, rot90_p=1.0))
    square = _kspace(1, (1, 12, 12))
    r = ifft2c(rot(square, np.random.RandomState(3)))
    cand = [torch.rot90(ifft2c(square), kk, (-2, -1)) for kk in (1, 3)]
    assert any(torch.allclose(r, c, atol=1e-5) for c in cand)
    # non-square k-space keeps its shape (rotated by 180 degrees)
    assert rot(k, np.random.RandomState(3)).shape == k.shape


def test_augment_scale_phase_and_stream_length():
    k = _kspace()
    aug = KspaceAugment(
        AugmentConfig(enabled=True, hflip_p=0, scale_p=1.0, scale_range=(2.0, 2.0), phase_p=1.0)
    )
    out = aug(k, np.random.RandomState(5))
    torch.testing.assert_close(out.abs(), 2 * k.abs(), rtol=1e-5, atol=1e-5)
    # every op consumes its draws: the stream after augmentation does not depend on what fired
    r1, r2 = np.random.RandomState(7), np.random.RandomState(7)
    KspaceAugment(AugmentConfig(enabled=True))(k, r1)
    KspaceAugment(AugmentConfig(enabled=True, hflip_p=0.0))(k, r2)
    assert r1.uniform() == r2.uniform()


# ---------------------------------------------------------------- checkpoints


def _ckpt_state(cfg: TrainConfig) -> Checkpoint:
    torch.manual_seed(0)
    net = cfg.model.build()
    return Checkpoint(config=cfg, model=net.state_dict(), epoch=0, step=3)


def test_checkpoint_round_trip_load_model_and_hash(tmp_path):
    cfg = load_train_config(None, ["model.chans=4", "model.num_groups=2", "model.norm=group"])
    state = _ckpt_state(cfg)
    path = tmp_path / "last.pt"
    save_checkpoint(path, state)
    assert load_checkpoint(path).versions["torch"] == torch.__version__
    model, cfg2 = load_model(path, "cpu")
    assert cfg2 == cfg and not model.training
    x = torch.randn(1, 1, 32, 32)
    ref = cfg.model.build()
    ref.load_state_dict(state.model)
    torch.testing.assert_close(model(x), ref.eval()(x))
    h = checkpoint_hash(path)
    assert len(h) == 16 and checkpoint_hash(tmp_path) == h  # a run folder resolves to its file
    save_checkpoint(tmp_path / "again.pt", replace(state, epoch=5, optimizer={"x": 1}))
    assert checkpoint_hash(tmp_path / "again.pt") == h  # weights decide, not the rest
    changed = {k: v.clone() for k, v in state.model.items()}
    next(iter(changed.values())).add_(1e-3)
    assert model_hash(changed, train_config_to_dict(cfg)["model"])[:16] != h
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_checkpoints_give_clear_errors(tmp_path):
    cfg = load_train_config(None, ["model.chans=4", "model.num_groups=2"])
    good = tmp_path / "good.pt"
    save_checkpoint(good, _ckpt_state(cfg))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"garbage\.pt: not a readable checkpoint"):
        load_model(garbage)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.pt: not a readable checkpoint"):
        load_model(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match=r"foreign\.pt: not an mrirecon U-Net checkpoint"):
        load_model(foreign)
    mismatched = tmp_path / "mismatched.pt"
    state = _ckpt_state(cfg)
    wider = replace(cfg, model=replace(cfg.model, chans=8))
    save_checkpoint(mismatched, replace(state, config=wider))
    with pytest.raises(ValueError, match=r"mismatched\.pt: model weights do not match"):
        load_model(mismatched)
    with pytest.raises(ValueError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    assert math.isfinite(len(checkpoint_hash(good)))
