"""Residual U-Net output: an untrained residual network is the identity (zero-filled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_reconstruction
from mrirecon.data.transforms import CLAMP
from mrirecon.errors import ConfigError
from mrirecon.models import Unet, UnetConfig
from mrirecon.models.unet import INPUT_CLAMP
from mrirecon.train.checkpoint import Checkpoint, save_checkpoint
from mrirecon.train.config import train_config_from_dict
from tests.recon_utils import data_folder

RESIDUAL_MODEL = {"chans": 4, "num_pool_layers": 2, "num_groups": 2, "residual": True}


def untrained_checkpoint(path: Path, model: dict) -> Path:
    """A freshly initialised (not perturbed) network in the training checkpoint format."""
    cfg = train_config_from_dict({"model": model})
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, Checkpoint(config=cfg, model=cfg.model.build().state_dict()))
    return path


def test_untrained_residual_net_is_exact_identity_even_beyond_the_clamp():
    torch.manual_seed(0)
    net = Unet(1, 1, chans=4, num_pool_layers=2, num_groups=2, residual=True)
    x = torch.randn(2, 1, 37, 29) * 4
    x[0, 0, 3, 4], x[1, 0, 10, 7] = 25.0, -11.0  # outside the normalisation's clamp
    for mode in (net.train, net.eval):
        mode()
        with torch.no_grad():
            assert torch.equal(net(x), x)


def test_residual_net_learns_a_correction():
    """Zero-initialised last conv still gets a gradient: one step moves the output."""
    torch.manual_seed(1)
    net = Unet(1, 1, chans=4, num_pool_layers=2, num_groups=2, residual=True)
    x = torch.randn(2, 1, 32, 32)
    loss = (net(x) - (x + 1.0)).abs().mean()
    loss.backward()
    assert net.up_conv[-1][1].weight.grad.abs().sum() > 0
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    with torch.no_grad():
        assert not torch.equal(net(x), x)


def test_residual_changes_only_the_last_layer_init():
    """Same seed, same draws: residual=False and True differ only in the zeroed last conv."""
    torch.manual_seed(3)
    plain = Unet(1, 1, chans=4, num_pool_layers=2, num_groups=2).state_dict()
    torch.manual_seed(3)
    resid = Unet(1, 1, chans=4, num_pool_layers=2, num_groups=2, residual=True).state_dict()
    assert plain.keys() == resid.keys()
    last = {"up_conv.1.1.weight", "up_conv.1.1.bias"}
    for name in plain:
        if name in last:
            assert not resid[name].any() and plain[name].any()
        else:
            assert torch.equal(plain[name], resid[name]), name


def test_body_clamp_is_the_normalisation_clamp():
    assert INPUT_CLAMP == CLAMP


def test_residual_needs_equal_channels():
    with pytest.raises(ValueError, match="in_chans == out_chans"):
        Unet(1, 2, chans=4, num_groups=2, residual=True)
    with pytest.raises(ConfigError, match="model.residual needs"):
        UnetConfig(in_chans=1, out_chans=2, residual=True)
    assert UnetConfig().residual is False  # the default until a recipe is chosen


def test_untrained_residual_unet_through_cli_returns_zero_filled(tmp_path: Path):
    """reconstruct --method unet with an untrained residual net == --method zero-filled."""
    data_folder(tmp_path / "in", [("mc.h5", True, 2, 1), ("sc.h5", False, 2, 2)])
    ckpt = untrained_checkpoint(tmp_path / "ckpt" / "last.pt", RESIDUAL_MODEL)
    common = ["--input", str(tmp_path / "in"), "--accelerations", "4", "--no-progress"]
    assert (
        main(["reconstruct", "--method", "zero-filled", "--output", str(tmp_path / "zf"), *common])
        == 0
    )
    assert main(["reconstruct", "--method", "unet", "--checkpoint", str(ckpt),
                 "--output", str(tmp_path / "unet"), *common]) == 0  # fmt: skip
    for name in ("mc.h5", "sc.h5"):
        zf = read_reconstruction(tmp_path / "zf" / name)
        net = read_reconstruction(tmp_path / "unet" / name)
        assert zf.shape == net.shape and zf.max() > 0
        np.testing.assert_allclose(net, zf, rtol=1e-5, atol=1e-6 * zf.max())
