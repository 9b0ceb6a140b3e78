"""The CS output's noise floor (mrirecon.noise_floor): estimate, level and effect on real scans."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from mrirecon.cs.config import CSConfig, load_cs_config
from mrirecon.cs.volume import cs_reconstruct
from mrirecon.data.assets import asset_path
from mrirecon.data.masks import MaskSpec, eval_rng
from mrirecon.fft import fft2c_np
from mrirecon.metrics import nmse, ssim
from mrirecon.noise_floor import chi_mean_factor, floor_level, noise_power
from mrirecon.synth import sources
from tests.conftest import real_scan_path


def _scan(name: str = "tugraz_brain_t2_4ch.h5", acc: float = 4.0):
    with h5py.File(asset_path(name), "r") as hf:
        k, target = torch.from_numpy(hf["kspace"][()]), hf["reconstruction_rss"][()]
    spec = MaskSpec("random", (0.08 if acc == 4 else 0.04,), (acc,))
    mask = torch.from_numpy(spec.sample(k.shape[-1], eval_rng(name)).mask)
    return k, mask, target


def _corner_mean(target: np.ndarray, c: int = 16) -> float:
    """Mean of the target's four corner patches: air, pure noise on the real scans."""
    t = target
    patches = [t[..., :c, :c], t[..., :c, -c:], t[..., -c:, :c], t[..., -c:, -c:]]
    return float(np.mean([p.mean() for p in patches]))


def test_chi_mean_factor_is_the_noise_magnitude_mean():
    assert chi_mean_factor(1) == pytest.approx(math.sqrt(math.pi) / 2, rel=1e-12)  # Rayleigh
    rng = np.random.default_rng(0)
    for coils in (2, 4, 15):
        n = rng.standard_normal((100_000, coils)) + 1j * rng.standard_normal((100_000, coils))
        r = np.sqrt((np.abs(n) ** 2).sum(1))
        assert chi_mean_factor(coils) == pytest.approx(r.mean() / np.sqrt((r**2).mean()), 2e-3)
    with pytest.raises(ValueError, match="coils"):
        chi_mean_factor(0)


def test_floor_matches_the_real_targets_background():
    """Real TU Graz (4 coils) and twix (2 coils) scans: the level estimated from the
    undersampled k-space alone matches the mean of the RSS target in the corners (the
    phantom fills the readout field of view, so no row band is empty of signal: the band
    estimate alone was 22 % high, the second-difference bound brings it to 9 %)."""
    for name, tol in (("tugraz_brain_t2_4ch.h5", 0.05), ("twix_gre_phantom_2ch.h5", 0.12)):
        k, mask, target = _scan(name)
        level = floor_level(k * mask, mask)
        assert level == pytest.approx(_corner_mean(target), rel=tol), name


def test_noise_power_measures_added_noise_on_real_kspace():
    """White noise of known power added to the real scan's k-space raises the estimate by
    that power, coil by coil (different per coil)."""
    k, mask, _ = _scan()
    base = noise_power(k * mask, mask)
    gen = torch.Generator().manual_seed(0)
    per_coil = torch.tensor([1.0, 2.0, 4.0, 8.0]) * base  # 15x the scan's own noise in all
    noise = (
        torch.complex(torch.randn(k.shape, generator=gen), torch.randn(k.shape, generator=gen))
        * torch.sqrt(per_coil / 2)[None, :, None, None]
    )
    raised = noise_power((k + noise) * mask, mask)
    assert raised - base == pytest.approx(float(per_coil.sum()), rel=0.1)


def test_object_in_every_row_band_does_not_lift_the_noise_power():
    """No readout oversampling and an object in every row: each band's median holds signal,
    the second difference along the readout does not (a smooth profile cancels), so the
    estimate stays the noise's, at 8x as at 4x."""
    gen = torch.Generator().manual_seed(1)
    s, c, h, w = 2, 3, 64, 48
    y = torch.linspace(-1, 1, h)[:, None]
    image = (1.0 + 0.5 * y + 0.3 * torch.cos(torch.linspace(0, 3, w))[None, :]) * torch.ones(h, w)
    k = torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(image.to(torch.complex64)), norm="ortho")
    )
    sigma = 0.01  # per coil, complex
    shape = (s, c, h, w)
    noise = torch.complex(torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))
    k = k.expand(shape) + noise * sigma / math.sqrt(2)
    for acc, cf in ((4.0, 0.08), (8.0, 0.04)):
        mask = torch.from_numpy(MaskSpec("random", (cf,), (acc,)).sample(w, eval_rng("x")).mask)
        assert noise_power(k * mask, mask) == pytest.approx(c * sigma**2, rel=0.25), acc


def test_noise_free_and_zero_kspace_get_no_floor():
    """A noise-free real anatomy (Colin 27) with fastMRI's 2x readout oversampling has
    empty rows, so its floor is ~0; all-zero samples give exactly 0 and change nothing."""
    mag, _ = sources.draw_source("colin27", np.random.RandomState(3), (2, 384, 160), (192, 160), 0)
    k = torch.from_numpy(fft2c_np(mag.astype(np.complex64))[:, None])
    mask = torch.zeros(160, dtype=torch.bool)
    mask[::3] = True
    assert floor_level(k * mask, mask) < 1e-4 * float(mag.max())
    assert noise_power(torch.zeros(1, 2, 32, 16, dtype=torch.complex64), mask[:16]) == 0.0
    with pytest.raises(ValueError, match="bands"):
        noise_power(k, mask, bands=0)


def test_cs_output_is_raised_to_the_floor_and_only_there():
    k, mask, target = _scan()
    km, crop = k * mask, target.shape[-2:]
    cfg = CSConfig(iterations=20, lam=3e-3)
    floored = cs_reconstruct(km, mask, crop, cfg, 4.0)
    plain = cs_reconstruct(km, mask, crop, cfg.replace(noise_floor=False), 4.0)
    assert plain.floor == 0.0
    assert floored.floor == pytest.approx(floor_level(km, mask))
    assert torch.equal(floored.image, plain.image.clamp_min(floored.floor))
    below = plain.image < floored.floor
    assert 0.05 < float(below.float().mean()) < 0.9  # the thresholded background
    assert torch.equal(floored.image[~below], plain.image[~below])


@pytest.mark.parametrize("acc", [4.0, 8.0])
def test_floor_raises_ssim_and_not_error_on_the_real_scan(acc):
    """Real TU Graz scan at the table's lambda: SSIM against the real RSS target rises (the
    background is no longer zero), and NMSE does not get worse."""
    k, mask, target = _scan(str(real_scan_path().name), acc)
    cfg = CSConfig(iterations=50, lam=1e-3)
    floored = cs_reconstruct(k * mask, mask, target.shape[-2:], cfg, acc).image.numpy()
    plain = cs_reconstruct(
        k * mask, mask, target.shape[-2:], cfg.replace(noise_floor=False), acc
    ).image.numpy()
    assert ssim(target, floored) > ssim(target, plain) + 0.005
    assert nmse(target, floored) <= nmse(target, plain)


def test_noise_floor_is_a_config_option():
    assert CSConfig().noise_floor is True
    assert load_cs_config(None, ["noise_floor=false"]).noise_floor is False


def test_long_volume_uses_a_few_slices_with_the_same_answer():
    """Eight copies of the real slice, each with its own noise of one power: the floor read
    from at most MAX_SLICES of them matches the one of a single noisy copy."""
    k, mask, _ = _scan()
    gen = torch.Generator().manual_seed(1)
    power = 10 * noise_power(k * mask, mask)
    noise = torch.complex(
        torch.randn((8, *k.shape[1:]), generator=gen), torch.randn((8, *k.shape[1:]), generator=gen)
    ) * math.sqrt(power / k.shape[1] / 2)
    vol = (k + noise) * mask
    assert floor_level(vol, mask) == pytest.approx(floor_level(vol[3:4], mask), rel=0.05)


def test_learned_methods_take_the_floor_only_when_asked(tmp_path):
    """``reconstruct --noise-floor``: a U-Net's output (files built from the real scan) is
    the plain output raised to the volume's floor_level, recorded in its attributes; without
    the flag it is the plain output, and the two runs are told apart on resume."""
    from mrirecon.cli import main
    from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
    from tests.recon_utils import data_folder, tiny_checkpoint

    data_folder(tmp_path / "in", [("mc.h5", True, 2, 3)])
    ckpt = tiny_checkpoint(tmp_path / "ckpt" / "last.pt")
    base = ["reconstruct", "--method", "unet", "--checkpoint", str(ckpt), "--input",
            str(tmp_path / "in"), "--accelerations", "4", "--no-progress"]  # fmt: skip
    assert main([*base, "--output", str(tmp_path / "plain")]) == 0
    assert main([*base, "--output", str(tmp_path / "floor"), "--noise-floor"]) == 0
    plain = read_reconstruction(tmp_path / "plain" / "mc.h5")
    floored = read_reconstruction(tmp_path / "floor" / "mc.h5")
    with h5py.File(tmp_path / "in" / "mc.h5", "r") as hf:
        k = torch.from_numpy(hf["kspace"][()])
    with h5py.File(tmp_path / "floor" / "mc.h5", "r") as hf:
        mask = torch.from_numpy(hf["mask"][()].astype(bool))
    level = floor_level(k * mask, mask)
    assert level > 0
    np.testing.assert_array_equal(floored, np.maximum(plain, np.float32(level)))
    assert (plain < level).any()  # the floor changed something
    assert read_attrs(tmp_path / "plain" / "mc.h5")["noise_floor"] == "off"
    assert float(read_attrs(tmp_path / "floor" / "mc.h5")["noise_floor"]) == pytest.approx(
        level, rel=1e-3
    )
    # The floored outputs were made with other settings: a plain rerun there refuses.
    assert main([*base, "--output", str(tmp_path / "floor")]) != 0


def test_compare_gives_every_method_but_zero_filled_the_same_floor(tmp_path, capsys):
    """``compare`` is like for like: by default the U-Net takes the floor CS has, with
    ``--no-noise-floor`` (or ``--cs-set noise_floor=false``) neither has it, zero-filled never;
    a flag that contradicts ``--cs-set noise_floor`` is one clear error line."""
    from mrirecon.cli import main
    from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
    from tests.recon_utils import data_folder, tiny_checkpoint

    data_folder(tmp_path / "in", [("mc.h5", True, 2, 3)])
    ckpt = tiny_checkpoint(tmp_path / "ckpt" / "last.pt")
    base = ["compare", "--data", str(tmp_path / "in"), "--checkpoint", str(ckpt), "--methods",
            "zero-filled", "cs", "unet", "--accelerations", "4", "--no-progress",
            "--cs-set", "iterations=5"]  # fmt: skip

    def attrs(out: str, method: str) -> dict:
        return read_attrs(tmp_path / out / "recon" / method / "4x" / "mc.h5")

    assert main([*base, "--out", str(tmp_path / "like")]) == 0
    assert attrs("like", "cs")["cs_noise_floor"] != "off"
    level = float(attrs("like", "unet")["noise_floor"])
    assert level > 0
    low = read_reconstruction(tmp_path / "like/recon/unet/4x/mc.h5").min()
    assert low == pytest.approx(level, rel=1e-3)  # raised to the floor (attribute: 4 digits)
    assert "noise_floor" not in attrs("like", "zero-filled")
    for out, flag in (("none", ["--no-noise-floor"]), ("none2", ["--cs-set", "noise_floor=false"])):
        assert main([*base, "--out", str(tmp_path / out), *flag]) == 0
        assert attrs(out, "cs")["cs_noise_floor"] == "off"
        assert attrs(out, "unet")["noise_floor"] == "off"
    capsys.readouterr()
    bad = [
        *base,
        "--out",
        str(tmp_path / "bad"),
        "--no-noise-floor",
        "--cs-set",
        "noise_floor=true",
    ]
    assert main(bad) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--no-noise-floor conflicts with --cs-set noise_floor=true" in err[0]
    assert "Traceback" not in err[0]


def test_reconstruct_flag_turns_the_cs_floor_off(tmp_path):
    """``reconstruct --method cs --no-noise-floor`` is ``--cs-set noise_floor=false``."""
    from mrirecon.cli import main
    from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
    from tests.recon_utils import data_folder

    data_folder(tmp_path / "in", [("mc.h5", True, 2, 3)])
    base = ["reconstruct", "--method", "cs", "--input", str(tmp_path / "in"), "--accelerations",
            "4", "--no-progress", "--cs-set", "iterations=5", "--cs-set", "lam=0.001"]  # fmt: skip
    runs = {"flag": ["--no-noise-floor"], "set": ["--cs-set", "noise_floor=false"], "on": []}
    for out, extra in runs.items():
        assert main([*base, "--output", str(tmp_path / out), *extra]) == 0
    got = {out: read_reconstruction(tmp_path / out / "mc.h5") for out in runs}
    np.testing.assert_array_equal(got["flag"], got["set"])
    assert read_attrs(tmp_path / "flag" / "mc.h5")["cs_noise_floor"] == "off"
    assert read_attrs(tmp_path / "on" / "mc.h5")["cs_noise_floor"] != "off"
    assert (got["on"] > got["flag"]).any() and (got["on"] >= got["flag"]).all()
