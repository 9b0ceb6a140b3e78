"""Training loop on tiny real data: overfitting, a whole run, CLI errors, NaN stop,
exact resume after SIGKILL, and 2-process gloo DDP equal to one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import mrirecon.train.fit as fit_module
from mrirecon.cli import main
from mrirecon.data.dataset import SliceDataset
from mrirecon.data.masks import MaskSpec
from mrirecon.data.transforms import KspaceTransform, UnetTransform
from mrirecon.fft import center_crop, fft2c_np, ifft2c, ifft2c_np, rss
from mrirecon.metrics import ssim, volume_metrics
from mrirecon.models import UnetConfig
from mrirecon.train.checkpoint import load_checkpoint, load_model
from mrirecon.train.config import LossConfig, OptimConfig, SchedConfig, load_train_config
from mrirecon.train.fit import fit
from mrirecon.train.logs import read_metrics
from mrirecon.train.loop import NonFiniteLossError, TrainContext, train_one_epoch
from mrirecon.train.losses import build_loss, noharm_hinge
from mrirecon.train.optim import build_optimizer, build_scheduler
from mrirecon.train.runtime import Runtime
from tests.conftest import real_kspace, write_fastmri
from tests.train_utils import sigkill_fit, step_losses

REPO = Path(__file__).resolve().parents[1]
# A tiny but complete run: 16 training slices (4 steps of global batch 4), one val volume.
TINY = [
    "model.chans=4",
    "model.num_groups=2",
    "run.batch_size=4",
    "run.log_every=1",
    "run.progress=false",
    "run.tensorboard=false",
    "optim.lr=3e-3",
    "sched.name=cosine",
    "sched.warmup_steps=2",
]


def tiny_volume(seed: int, slices: int, kshape=(48, 40), recon=(32, 32)):
    """Multi-coil slices of the real TU Graz brain at low resolution (central k-space),
    each shifted, phase-rotated and with its own noise. Returns kspace (S, 4, H, W), target."""
    k_full = real_kspace()[0]
    H, W = kshape
    r0, c0 = (k_full.shape[-2] - H) // 2, (k_full.shape[-1] - W) // 2
    img = ifft2c_np(k_full[:, r0 : r0 + H, c0 : c0 + W])
    rng = np.random.default_rng(seed)
    ks, ts = [], []
    for _ in range(slices):
        shift = tuple(int(s) for s in rng.integers(-4, 5, size=2))
        im = np.roll(img, shift, axis=(-2, -1)) * np.exp(1j * rng.uniform(-np.pi, np.pi))
        k = fft2c_np(im)
        k = (
            k
            + (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
            * 1e-4
            * np.abs(k).max()
        )
        ks.append(k)
        ts.append(np.sqrt((np.abs(center_crop(ifft2c_np(k), recon)) ** 2).sum(0)))
    return np.stack(ks).astype(np.complex64), np.stack(ts).astype(np.float32)


def write_tiny_data(root: Path) -> Path:
    """train/ (2 volumes x 8 slices) and val/ (1 x 3) of :func:`tiny_volume` files in ``root``."""
    for split, n_vol, n_sl in (("train", 2, 8), ("val", 1, 3)):
        (root / split).mkdir()
        for v in range(n_vol):
            k, t = tiny_volume(100 * (split == "val") + v, n_sl)
            write_fastmri(root / split / f"{split}_{v}.h5", k, t, multicoil=True)
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("tiny_data"))


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def test_overfit_real_slices_lowers_l1_5x(data_root):
    ds = SliceDataset(
        data_root / "val", transform=UnetTransform(MaskSpec("random", (0.08,), (4.0,)))
    )
    batch = next(iter(DataLoader(ds, batch_size=3)))
    torch.manual_seed(0)
    net = UnetConfig(chans=8, num_pool_layers=3, num_groups=4).build()
    opt = build_optimizer(net.parameters(), OptimConfig(lr=3e-3))
    sched = build_scheduler(opt, SchedConfig(), 1, 1)
    rt = Runtime(device=torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss_fn = build_loss(LossConfig())
    ctx = TrainContext(net, opt, sched, scaler, loss_fn, rt, show_progress=False)
    losses = []
    for i in range(100):
        res = train_one_epoch(ctx, [batch], epoch=i, global_step=i)
        losses.append(res.loss)
    assert losses[0] / min(losses[-5:]) >= 5.0, (losses[0], losses[-5:])


def test_noharm_hinge_scores_outputs_against_the_zero_filled_input(data_root):
    # Real multi-coil slices at 8x, as a VarNet batch: its image is the network's own
    # zero-filled RSS, normalised like the target.
    ds = SliceDataset(
        data_root / "val", transform=KspaceTransform(MaskSpec("random", (0.04,), (8.0,)))
    )
    item = next(iter(DataLoader(ds, batch_size=3)))
    s = item.sample
    crop = tuple(int(c) for c in item.crop[0])
    own = center_crop(rss(ifft2c(item.kspace).abs(), dim=1), crop)
    norm = (own - s.mean[:, None, None]) / (s.std[:, None, None] + 1e-11)
    assert torch.allclose(s.image[:, 0], norm.clamp(-6, 6), atol=1e-5)

    def scores(pred: torch.Tensor) -> np.ndarray:  # skimage-equal SSIM per slice, in numpy
        p = (pred * s.std.view(-1, 1, 1, 1) + s.mean.view(-1, 1, 1, 1))[:, 0].numpy()
        t = (s.target * s.std.view(-1, 1, 1, 1) + s.mean.view(-1, 1, 1, 1))[:, 0].numpy()
        return np.array([ssim(t[i : i + 1], p[i : i + 1], float(s.max_value[i])) for i in range(3)])

    args = (s.target, s.mean, s.std, s.max_value)
    assert noharm_hinge(s.image, s.image, *args).item() == 0.0
    assert noharm_hinge(s.target, s.image, *args).item() == 0.0  # the target beats zero-filled
    # An output of zeros is worse than zero-filled on every slice: the hinge is the mean loss.
    zeros = ((0.0 - s.mean) / s.std).view(-1, 1, 1, 1).expand_as(s.image).clone()
    gap = scores(s.image) - scores(zeros)
    assert (gap > 0).all()
    got = noharm_hinge(zeros, s.image, *args).item()
    assert got == pytest.approx(gap.mean(), abs=1e-5)
    # Per slice: a slice where the output beats zero-filled adds nothing and gets no gradient.
    mixed = torch.cat([s.target[:1], zeros[1:]]).requires_grad_(True)
    noharm_hinge(mixed, s.image, *args).backward()
    assert mixed.grad[0].abs().max().item() == 0.0 and mixed.grad[1:].abs().max().item() > 0


def test_noharm_weight_adds_the_hinge_to_the_training_loss(data_root):
    ds = SliceDataset(
        data_root / "val", transform=UnetTransform(MaskSpec("random", (0.04,), (8.0,)))
    )
    batch = next(iter(DataLoader(ds, batch_size=3)))
    rt = Runtime(device=torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    base = build_loss(LossConfig(name="ssim"))
    losses, weights = [], []
    # (weight, first epoch with the hinge, this epoch): off; on; on from a later epoch
    for weight, start, epoch in ((0.0, 0, 3), (5.0, 3, 3), (5.0, 4, 3)):
        torch.manual_seed(0)
        net = UnetConfig(chans=4, num_pool_layers=2, num_groups=2).build()
        opt = build_optimizer(net.parameters(), OptimConfig(lr=1e-3))
        sched = build_scheduler(opt, SchedConfig(), 1, 1)
        with torch.no_grad():
            out = net(batch.image)
        args = (batch.target, batch.mean, batch.std, batch.max_value)
        hinge = noharm_hinge(out, batch.image, *args).item()
        ctx = TrainContext(
            net,
            opt,
            sched,
            scaler,
            base,
            rt,
            noharm_weight=weight,
            noharm_start_epoch=start,
            show_progress=False,
        )
        losses.append((train_one_epoch(ctx, [batch], epoch=epoch, global_step=0).loss, hinge))
        weights.append(torch.cat([q.detach().flatten() for q in net.parameters()]))
    (plain, hinge), (weighted, _), (before_start, _) = losses
    assert hinge > 0  # an untrained U-Net is worse than its zero-filled input
    assert weighted == pytest.approx(plain + 5.0 * hinge, rel=1e-5)
    # before its start epoch the term changes nothing, the step's update included
    assert before_start == plain
    assert torch.equal(weights[2], weights[0]) and not torch.equal(weights[1], weights[0])


def test_fit_writes_run_and_validation_matches_offline_metrics(data_root, tmp_path):
    cfg = load_train_config(
        REPO / "configs" / "demo.yaml", [*TINY, "run.epochs=2", "run.val_every=1"]
    )
    res = fit(cfg, data_root, tmp_path / "run")
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.jsonl", "last.pt", "best.pt"}
    assert load_train_config(run / "config.yaml") == cfg
    epochs = read_metrics(run / "metrics.jsonl", "epoch")
    assert [e["epoch"] for e in epochs] == [0, 1]
    steps = read_metrics(run / "metrics.jsonl", "step")
    assert len(steps) == 8 and all(s["grad_norm"] > 0 and s["lr"] > 0 for s in steps)
    # validation = offline evaluation: de-normalised outputs per volume vs the cropped target
    model, _ = load_model(run / "last.pt")
    ds = SliceDataset(data_root / "val", transform=UnetTransform(cfg.mask.spec(), mode="eval"))
    with torch.no_grad():
        preds = [(model(s.image[None])[0, 0] * s.std + s.mean).numpy() for s in ds]
    target = np.stack([s.target_raw.numpy() for s in ds])
    offline = volume_metrics(target, np.stack(preds))
    assert epochs[-1]["val_ssim"] == pytest.approx(offline.ssim, abs=1e-5)
    assert epochs[-1]["val_psnr"] == pytest.approx(offline.psnr, abs=1e-3)
    assert res.val["val_ssim"] == pytest.approx(offline.ssim, abs=1e-5)
    assert 0 < res.zero_filled["zf_ssim"] < 1
    with pytest.raises(ValueError, match="already holds a run"):
        fit(cfg, data_root, run)


def test_nan_loss_stops_and_keeps_last_checkpoint(data_root, tmp_path, monkeypatch):
    cfg = load_train_config(None, [*TINY, "run.epochs=1"])
    run = tmp_path / "run"
    fit(cfg, data_root, run)
    before = (run / "last.pt").read_bytes()

    def nan_loss(cfg_loss):
        return lambda pred, *args: pred.mean() * float("nan")

    monkeypatch.setattr(fit_module, "build_loss", nan_loss)
    cfg2 = load_train_config(None, [*TINY, "run.epochs=2"])
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss .*last good checkpoint .*last\.pt is unchanged"
    ):
        fit(cfg2, data_root, run, resume=True)
    assert (run / "last.pt").read_bytes() == before
    assert load_checkpoint(run / "last.pt").epoch == 0
    assert read_metrics(run / "metrics.jsonl", "error")


def test_cli_errors_are_one_clear_line(data_root, tmp_path, capsys):
    cfg = REPO / "configs" / "demo.yaml"
    assert main(["train", "--config", str(cfg), "--data-root", str(tmp_path / "nope")]) == 1
    assert "nope: no such data folder" in capsys.readouterr().err
    args = [
        "train",
        "--config",
        str(cfg),
        "--data-root",
        str(data_root),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*args, "--set", "optim.lrr=1"]) == 1
    err = capsys.readouterr().err
    assert (
        "unknown key optim.lrr" in err and "valid keys in 'optim'" in err and "Traceback" not in err
    )
    bad_run = tmp_path / "bad_run"
    bad_run.mkdir()
    (bad_run / "last.pt").write_bytes(b"\x00garbage")
    assert main(["train", "--resume", str(bad_run), "--data-root", str(data_root)]) == 1
    assert "last.pt: not a readable checkpoint" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(
            ["train", "--config", str(cfg), "--data-root", str(empty), "--out", str(tmp_path / "e")]
        )
        == 1
    )
    assert "no .h5 files" in capsys.readouterr().err


def _train_cmd(data_root: Path, out: Path, epochs: int) -> list[str]:
    sets = [x for s in [*TINY, f"run.epochs={epochs}"] for x in ("--set", s)]
    return ["-m", "mrirecon", "train", "--data-root", str(data_root), "--out", str(out), *sets]


EPOCHS = 3  # of the reference run shared by the resume and DDP tests (4 steps each)


@pytest.fixture(scope="module")
def ref_run(data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_train_config(None, [*TINY, f"run.epochs={EPOCHS}"]), data_root, out)
    finally:
        torch.set_num_threads(old)
    return out


# Every stream a resume must restore: dropout (global torch RNG), augmentation (per-sample
# RNG), validation (and the zero-filled pass) after every epoch.
STOCHASTIC = [
    "model.drop_prob=0.1",
    "augment.enabled=true",
    "augment.scale_p=0.5",
    "run.val_every=1",
]


@pytest.fixture(scope="module")
def ref_run_stochastic(data_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref_stochastic") / "run"
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_train_config(None, [*TINY, *STOCHASTIC, f"run.epochs={EPOCHS}"]), data_root, out)
    finally:
        torch.set_num_threads(old)
    return out


def _fit_in_child(cfg, data_root: Path, out: Path) -> None:
    torch.set_num_threads(1)
    fit(cfg, data_root, out)


def test_resume_after_sigkill_matches_uninterrupted(data_root, ref_run_stochastic, tmp_path):
    """SIGKILL mid-run, then --resume: with dropout, augmentation and validation the
    continued run equals the uninterrupted one step for step and in its final weights."""
    ref = step_losses(ref_run_stochastic)
    assert len(ref) == 4 * EPOCHS
    killed = tmp_path / "killed"
    cfg = load_train_config(None, [*TINY, *STOCHASTIC, f"run.epochs={EPOCHS}"])
    # SIGKILL in the middle of epoch 1: after epoch 0's checkpoint, before epoch 1 ends
    code = sigkill_fit(_fit_in_child, (cfg, data_root, killed), killed, at_step=6)
    assert code == -signal.SIGKILL, "the run ended before it could be killed"
    saved_epoch = load_checkpoint(killed / "last.pt").epoch
    assert saved_epoch < EPOCHS - 1

    assert main(["train", "--resume", str(killed)]) == 0  # the data root comes from the run
    got = step_losses(killed)
    later = [s for s in ref if s > 4 * (saved_epoch + 1)]
    assert later and all(got[s] == pytest.approx(ref[s], rel=1e-5, abs=1e-7) for s in later)
    final, want = (
        load_checkpoint(killed / "last.pt"),
        load_checkpoint(ref_run_stochastic / "last.pt"),
    )
    assert final.epoch == EPOCHS - 1
    for name, tensor in want.model.items():
        torch.testing.assert_close(final.model[name], tensor, rtol=0, atol=1e-6, msg=name)
    assert len(read_metrics(killed / "metrics.jsonl", "start")) == 2


def test_ddp_two_gloo_processes_match_single_process(data_root, ref_run, tmp_path):
    ddp = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *_train_cmd(data_root, ddp, EPOCHS),
    ]
    out = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_metrics(ddp / "metrics.jsonl", "start")[0]["world_size"] == 2
    a, b = step_losses(ref_run), step_losses(ddp)
    assert sorted(a) == sorted(b) == list(range(1, 4 * EPOCHS + 1))
    np.testing.assert_allclose([b[s] for s in a], [a[s] for s in a], rtol=1e-4)
    ea = read_metrics(ref_run / "metrics.jsonl", "epoch")
    eb = read_metrics(ddp / "metrics.jsonl", "epoch")
    assert eb[-1]["val_ssim"] == pytest.approx(ea[-1]["val_ssim"], abs=1e-4)
    assert not (ddp / "metrics.jsonl.1").exists()


def test_tensorboard_scalars_and_image_grids_when_importable(data_root, tmp_path, monkeypatch):
    """tensorboard is optional: with a SummaryWriter importable, scalars and grids are logged."""
    calls: list[tuple[str, str, object]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            calls.append(("init", log_dir, None))

        def add_scalar(self, tag, value, step):
            calls.append(("scalar", tag, value))

        def add_image(self, tag, image, step, dataformats):
            calls.append(
                ("image", tag, (image.shape, dataformats, float(image.min()), float(image.max())))
            )

        def close(self):
            calls.append(("close", "", None))

    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    cfg = load_train_config(None, [*TINY, "run.epochs=1", "run.tensorboard=true"])
    fit(cfg, data_root, tmp_path / "run")
    tags = {tag for kind, tag, _ in calls if kind == "scalar"}
    assert {"train/loss", "train/lr", "train/grad_norm", "epoch/val_ssim"} <= tags
    images = [v for kind, _, v in calls if kind == "image"]
    assert images and images[0][0] == (32, 128) and images[0][1] == "HW"
    assert 0.0 <= images[0][2] and images[0][3] <= 1.0
    assert calls[-1][0] == "close"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_channels_last_compile_run(data_root, tmp_path):
    cfg = load_train_config(None, [*TINY, "run.epochs=1", "run.device=cuda", "run.compile=true"])
    res = fit(cfg, data_root, tmp_path / "run")
    start = read_metrics(tmp_path / "run" / "metrics.jsonl", "start")[0]
    assert start["amp"] == "torch.bfloat16" and start["device"].startswith("cuda")
    assert 0 < res.val["val_ssim"] <= 1
    model, _ = load_model(tmp_path / "run" / "last.pt", "cuda")
    assert next(model.parameters()).is_cuda
