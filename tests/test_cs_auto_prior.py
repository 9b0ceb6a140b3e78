"""``lam: auto`` where cross-validation is uninformative: the ACS-background prior."""

from __future__ import annotations

import math

import h5py
import pytest
import torch

from mrirecon.cli import main
from mrirecon.cs.auto import acs_background, choose_lambda
from mrirecon.cs.config import AutoLambdaConfig, ConfigError, CSConfig
from mrirecon.data.assets import asset_path
from mrirecon.data.fastmri_h5 import read_attrs
from mrirecon.data.masks import MaskSpec, eval_rng
from tests.recon_utils import data_folder

FAST = CSConfig(iterations=20, auto=AutoLambdaConfig(iterations=20))


def _scan(name: str, acc: float, cf: float):
    """A real scan (the bundled copies of shared/data), its fastMRI-seeded mask applied."""
    with h5py.File(asset_path(name), "r") as hf:
        k, rows = torch.from_numpy(hf["kspace"][()]), hf["reconstruction_rss"].shape[-2]
    mask = torch.from_numpy(
        MaskSpec("random", (cf,), (acc,)).sample(k.shape[-1], eval_rng(name)).mask
    )
    return k * mask, mask, rows


def test_background_share_tells_a_head_in_air_from_a_phantom_filling_the_view():
    """TU Graz brain (air around the head) against the twix phantom (fills the field of
    view), on the ACS image alone."""
    brain = acs_background(*_scan("tugraz_brain_t2_4ch.h5", 4.0, 0.08))
    phantom = acs_background(*_scan("twix_gre_phantom_2ch.h5", 4.0, 0.08))
    assert 0.3 < brain < 0.7 and 0.05 < phantom < 0.3, (brain, phantom)
    # no ACS block: the zero-filled image is used, whose aliasing fills much of the air
    k, mask, rows = _scan("tugraz_brain_t2_4ch.h5", 4.0, 0.08)
    mask = mask.clone()
    mask[mask.shape[-1] // 2] = False
    assert 0.0 < acs_background(k * mask, mask, rows) < brain


def test_one_receive_channel_at_8x_gets_the_prior_and_all_channels_the_cv():
    """Real TU Graz scan at 8x: one receive channel as a single-coil scan has held-out
    columns no lambda predicts better (the prior decides); all four channels with ESPIRiT
    maps cross-validate as before."""
    k, mask, rows = _scan("tugraz_brain_t2_4ch.h5", 8.0, 0.04)
    single, cfg = k[:, 2:3], CSConfig()  # the default 100 iterations (see AutoLambdaConfig)
    choice = choose_lambda(single, mask, cfg, "ch2.h5", 8.0, multicoil=False, crop_rows=rows)
    assert choice.rule == "auto-prior" and choice.background is not None
    assert min(choice.cv_errors) > (1 - cfg.auto.min_gain) * choice.cv_errors[0]
    assert choice.background == pytest.approx(acs_background(single, mask, rows))
    a, b = cfg.auto.prior
    assert choice.lam == pytest.approx(math.exp(a + b * choice.background), rel=1e-3)
    multi = choose_lambda(k, mask, FAST, "all.h5", 8.0, crop_rows=rows)
    assert multi.rule == "auto" and multi.background is None
    # min_gain 0 turns the prior off: the cross-validation rule decides again
    off = cfg.replace(auto=AutoLambdaConfig(min_gain=0.0))
    plain = choose_lambda(single, mask, off, "ch2.h5", 8.0, multicoil=False, crop_rows=rows)
    assert plain.rule == "auto" and plain.cv_errors == choice.cv_errors


def test_a_multicoil_scan_keeps_the_cross_validated_choice_however_flat():
    """The prior is fitted on single-coil images: on the real twix phantom (2 channels,
    filling the field of view, so little background) it would say 1e-4 where the phantom
    wants 1e-2. However small the gain, a multi-coil scan keeps the cross-validation."""
    k, mask, rows = _scan("twix_gre_phantom_2ch.h5", 8.0, 0.04)
    flat = FAST.replace(auto=AutoLambdaConfig(iterations=20, min_gain=0.99))
    multi = choose_lambda(k, mask, flat, "twix.h5", 8.0, crop_rows=rows)
    assert multi.rule == "auto" and multi.background is None
    one = choose_lambda(k[:, :1], mask, flat, "twix.h5", 8.0, multicoil=False, crop_rows=rows)
    assert one.rule == "auto-prior"
    assert one.lam < 1e-3 < multi.lam, (one.lam, multi.lam)


def test_the_prior_is_clipped_to_the_grid():
    k, mask, rows = _scan("tugraz_brain_t2_4ch.h5", 8.0, 0.04)
    high = FAST.replace(auto=AutoLambdaConfig(iterations=20, prior=(0.0, 1.0), min_gain=0.99))
    choice = choose_lambda(k[:, :1], mask, high, "c.h5", 8.0, multicoil=False, crop_rows=rows)
    assert choice.rule == "auto-prior" and choice.lam == pytest.approx(high.auto.grid[-1], rel=1e-3)


def test_prior_choice_is_named_in_the_output_attrs(tmp_path):
    inp = tmp_path / "in"
    data_folder(inp, [("sc_p.h5", False, 1, 1)])
    argv = ["reconstruct", "--input", str(inp), "--output", str(tmp_path / "o"), "--method", "cs"]
    argv += ["--accelerations", "8", "--no-progress", "--cs-set", "iterations=10"]
    assert main([*argv, "--cs-set", "auto.min_gain=0.99"]) == 0  # any single-coil scan: the prior
    attrs = read_attrs(tmp_path / "o" / "sc_p.h5")
    assert attrs["cs_lambda_rule"].startswith("auto: single-coil k-space cross-validation")
    assert "background prior exp(-9.586 + 5.011 x 0." in attrs["cs_lambda_rule"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("min_gain", 1.0), ("min_gain", -0.1), ("prior", (1.0,)), ("prior", (0, math.nan))],
)
def test_bad_prior_settings_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=f"auto.{key} must be"):
        AutoLambdaConfig(**{key: value})
