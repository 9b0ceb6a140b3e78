"""E2E-VarNet through the real CLI: train (model.kind: varnet), reconstruct, compare (resume
after a kill: tests/test_varnet_resume.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
from mrirecon.evaluate import evaluate_folders
from mrirecon.train.checkpoint import load_checkpoint, load_model
from tests.recon_utils import data_folder, tiny_checkpoint

CONFIG = """
mask: {kind: random, center_fractions: [0.08, 0.04], accelerations: [4, 8]}
model: {kind: varnet, num_cascades: 2, chans: 4, pools: 2, sens_chans: 4, sens_pools: 2,
        num_groups: 2, sens_num_groups: 2, checkpointing: true}
optim: {lr: 1.0e-3}
loss: {name: ssim}
run: {epochs: 2, batch_size: 1, seed: 0, progress: false, tensorboard: false}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("varnet")
    data_folder(root / "train", [("t_mc.h5", True, 2, 21), ("t_sc.h5", False, 2, 22)])
    data_folder(root / "val", [("v_mc.h5", True, 2, 23)])
    cfg = root / "varnet.yaml"
    cfg.write_text(CONFIG)
    code = main(["train", "--config", str(cfg), "--data-root", str(root / "train"),
                 "--val-root", str(root / "val"), "--out", str(root / "run")])  # fmt: skip
    return root, code


def test_training_writes_a_varnet_checkpoint_that_reconstructs(trained, tmp_path, capsys):
    root, code = trained
    assert code == 0
    ckpt = load_checkpoint(root / "run" / "last.pt")
    assert ckpt.config.model.kind == "varnet" and ckpt.epoch == 1
    model, _ = load_model(root / "run")
    assert type(model).__name__ == "VarNet"
    # No --method: the checkpoint's config decides it.
    out = tmp_path / "out"
    assert main(["reconstruct", "--checkpoint", str(root / "run"), "--input", str(root / "val"),
                 "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    rec = read_reconstruction(out / "v_mc.h5")
    assert rec.shape == (2, 128, 128) and np.isfinite(rec).all()
    attrs = read_attrs(out / "v_mc.h5")
    assert attrs["method"] == "varnet" and attrs["model_num_cascades"] == 2
    scores = evaluate_folders(root / "val", out)
    assert scores.ok and 0.0 < scores.scores[0].ssim <= 1.0


def test_varnet_output_matches_the_model_run_directly(trained, tmp_path):
    root, _ = trained
    out = tmp_path / "out"
    assert main(["reconstruct", "--method", "varnet", "--checkpoint", str(root / "run"),
                 "--input", str(root / "val"), "--output", str(out), "--no-progress",
                 "--accelerations", "8"]) == 0  # fmt: skip
    from mrirecon.data.dataset import inspect_file
    from mrirecon.data.masks import MaskSpec
    from mrirecon.reconstruct import load_volume

    vol = load_volume(inspect_file(root / "val" / "v_mc.h5"), MaskSpec.paired("random", (8,)), None)
    model, _ = load_model(root / "run")
    with torch.no_grad():
        want = model(vol.kspace, vol.mask, vol.mask_info.num_low, vol.crop).numpy()
    np.testing.assert_allclose(read_reconstruction(out / "v_mc.h5"), want, rtol=1e-5, atol=1e-7)


def test_wrong_method_for_the_checkpoint_is_one_line(trained, tmp_path, capsys):
    root, _ = trained
    code = main(["reconstruct", "--method", "unet", "--checkpoint", str(root / "run"),
                 "--input", str(root / "val"), "--output", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "varnet" in err and "Traceback" not in err


def test_compare_reports_every_learned_checkpoint(trained, tmp_path, capsys):
    root, _ = trained
    unet = tiny_checkpoint(tmp_path / "unet.pt")
    out = tmp_path / "report"
    code = main(["compare", "--data", str(root / "val"), "--out", str(out),
                 "--checkpoint", str(unet), str(root / "run"), "--accelerations", "4",
                 "--cs-set", "iterations=3", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    md = (out / "summary.md").read_text()
    assert "E2E-VarNet" in md and "U-Net" in md and "CS (l1-wavelet)" in md
    assert (out / "recon" / "varnet" / "4x" / "v_mc.h5").is_file()
    assert (out / "recon" / "unet" / "4x" / "v_mc.h5").is_file()
    assert main(["compare", "--data", str(root / "val"), "--out", str(tmp_path / "r2"),
                 "--methods", "zero-filled", "--checkpoint", str(unet)]) == 1  # fmt: skip
    assert "more checkpoints than learned methods" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["output_gate", "output_mix"])
def test_init_can_add_an_output_module_to_a_trained_varnet(trained, tmp_path, capsys, option):
    root, code = trained
    assert code == 0
    base = ["train", "--config", str(root / "varnet.yaml"), "--data-root", str(root / "train"),
            "--val-root", str(root / "val"), "--init", str(root / "run" / "last.pt"),
            "--set", "run.epochs=1", "--set", "optim.lr=1e-9", "--set", "sched.name=none"]  # fmt: skip
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "gated"), "--set", f"model.{option}=true"]) == 0
    assert f"{option} added, freshly initialised" in capsys.readouterr().err
    given = load_checkpoint(root / "run" / "last.pt").model
    tuned = load_checkpoint(tmp_path / "gated" / "last.pt")
    assert getattr(tuned.config.model, option)
    new = [key for key in tuned.model if key not in given]
    assert new and all(key.startswith(f"{option}.") for key in new)
    for key, value in given.items():  # every other weight came from --init
        torch.testing.assert_close(tuned.model[key].float(), value.float(), atol=1e-6, rtol=0)
    assert float(tuned.model[f"{option}.layers.4.bias"].abs()) < 1e-6  # starts at 0
    # Anything else that differs is still refused, in one line naming the checkpoint.
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "other"), "--set", "model.chans=8"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "chans" in err and "Traceback" not in err
