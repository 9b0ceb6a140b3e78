"""Bad input to the CS baseline gets one clear ValueError."""

from __future__ import annotations

import pytest
import torch

from mrirecon.cs.config import CSConfig, cs_config_from_dict, load_cs_config, save_cs_config
from mrirecon.cs.recon import solve_batch
from mrirecon.cs.volume import cs_reconstruct


def _data(coils=2, h=32, w=32):
    g = torch.Generator().manual_seed(0)
    k = torch.randn((2, coils, h, w), generator=g, dtype=torch.complex64)
    mask = torch.zeros(w, dtype=torch.bool)
    mask[::2] = True
    mask[w // 2 - 4 : w // 2 + 4] = True
    return k, mask


def test_mismatched_mask_and_kspace_shapes():
    k, mask = _data()
    with pytest.raises(ValueError, match="does not match k-space"):
        cs_reconstruct(k, mask[:-1], (16, 16), CSConfig(iterations=2))
    with pytest.raises(ValueError, match="does not match k-space"):
        solve_batch(k, torch.ones(31, dtype=torch.bool), 1e-3)
    with pytest.raises(ValueError, match="bool"):
        cs_reconstruct(k, mask.float(), (16, 16))
    with pytest.raises(ValueError, match=r"\(S, C, H, W\)"):
        cs_reconstruct(k[0], mask, (16, 16))
    with pytest.raises(ValueError, match="maps"):
        solve_batch(k, mask, 1e-3, maps=torch.ones(2, 3, 32, 32, dtype=torch.complex64))


@pytest.mark.parametrize("lam", [0.0, -1e-3, float("nan")])
def test_non_positive_lambda(lam):
    k, mask = _data()
    with pytest.raises(ValueError, match="lambda must be > 0"):
        CSConfig(lam=lam)
    with pytest.raises(ValueError, match="lambda must be > 0"):
        solve_batch(k, mask, lam)
    with pytest.raises(ValueError, match="lams"):
        CSConfig(lams=((4.0, lam),))


def test_nan_kspace():
    k, mask = _data()
    k[1, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cs_reconstruct(k, mask, (16, 16), CSConfig(iterations=2))


def test_other_bad_options():
    k, mask = _data()
    with pytest.raises(ValueError, match="crop"):
        cs_reconstruct(k, mask, (64, 16), CSConfig(iterations=2))
    with pytest.raises(ValueError, match="centre"):
        no_centre = torch.zeros(32, dtype=torch.bool)
        no_centre[1::4] = True
        cs_reconstruct(k, no_centre, (16, 16), CSConfig(iterations=2))
    with pytest.raises(ValueError, match="needs at least 2"):
        narrow = torch.zeros(32, dtype=torch.bool)
        narrow[::4] = True
        cs_reconstruct(k, narrow, (16, 16), CSConfig(iterations=2))
    with pytest.raises(ValueError, match="single-coil"):
        cs_reconstruct(k, mask, (16, 16), multicoil=False)
    with pytest.raises(ValueError, match="samples no column"):
        cs_reconstruct(k, torch.zeros(32, dtype=torch.bool), (16, 16))
    with pytest.raises(ValueError, match="acceleration"):
        cs_reconstruct(k, mask, (16, 16), acceleration=-2.0)
    with pytest.raises(ValueError, match="unknown wavelet"):
        CSConfig(wavelet="db99")
    with pytest.raises(ValueError, match="tv"):
        CSConfig(tv=-1.0)
    with pytest.raises(ValueError, match="unknown solver"):
        CSConfig(solver="admm")


def test_config_files(tmp_path):
    cfg = CSConfig(iterations=7, lams=((4.0, 2e-3), (8.0, 5e-4)))
    save_cs_config(cfg, tmp_path / "cs.yaml")
    assert load_cs_config(tmp_path / "cs.yaml") == cfg
    assert cfg.lam_for(4.0) == 2e-3 and cfg.lam_for(16.0) == 5e-4
    assert 5e-4 < cfg.lam_for(6.0) < 2e-3  # log-log interpolation
    assert CSConfig(lam=3e-3).lam_for(8.0) == 3e-3
    (tmp_path / "bad.yaml").write_text("cs:\n  iterations: 5\n  lamda: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key 'lamda'; valid keys: wavelet"):
        load_cs_config(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match=r"unknown key espirit\.kernel; valid keys in 'espirit'"):
        cs_config_from_dict({"espirit": {"kernel": 5}})
    with pytest.raises(ValueError, match="no such config file"):
        load_cs_config(tmp_path / "missing.yaml")
