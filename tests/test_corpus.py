"""The domain-randomised training corpus (mrirecon.synth.corpus / sources)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mrirecon.data import assets
from mrirecon.data.dataset import RawSlice, SliceDataset
from mrirecon.data.masks import MaskSpec
from mrirecon.data.transforms import UnetTransform
from mrirecon.errors import ConfigError
from mrirecon.fft import center_crop, ifft2c_np
from mrirecon.synth import sources
from mrirecon.synth.corpus import (
    CorpusConfig,
    CorpusSliceDataset,
    corpus_slice,
    corpus_volume,
    write_corpus,
)

# Small matrices keep the tests fast; every other knob at its default.
SMALL = CorpusConfig(slices=2, matrix=(32, 64), coils=(2, 6))


def _same(a, b) -> bool:
    return (
        a.kspace.tobytes() == b.kspace.tobytes()
        and a.target.tobytes() == b.target.tobytes()
        and a.header == b.header
        and a.attrs == b.attrs
    )


def test_volume_is_a_pure_function_of_the_seed():
    for index in range(4):
        assert _same(corpus_volume(SMALL, 7, index), corpus_volume(SMALL, 7, index))
    first = corpus_volume(SMALL, 7, 0)
    assert not np.array_equal(first.target, corpus_volume(SMALL, 8, 0).target)
    assert not np.array_equal(first.target, corpus_volume(SMALL, 7, 1).target)


def test_streamed_slice_is_a_pure_function_of_seed_epoch_index():
    a, b = corpus_slice(SMALL, 1, 2, 3), corpus_slice(SMALL, 1, 2, 3)
    assert a.kspace.tobytes() == b.kspace.tobytes() and a.info.fname == b.info.fname
    other_epoch = corpus_slice(SMALL, 1, 3, 3)
    assert a.kspace.shape != other_epoch.kspace.shape or not np.array_equal(
        a.kspace, other_epoch.kspace
    )


@pytest.mark.parametrize("singlecoil_prob", [0.0, 1.0])
@pytest.mark.parametrize("oversample_prob", [1.0, 0.0])
def test_targets_are_fastmri_targets_of_the_stored_kspace(singlecoil_prob, oversample_prob):
    config = replace(
        SMALL, singlecoil_prob=singlecoil_prob, pad_prob=0.5, oversample_prob=oversample_prob
    )
    for index in range(6):
        vol = corpus_volume(config, 3, index)
        multicoil = vol.kspace.ndim == 4
        assert multicoil == (singlecoil_prob == 0.0)
        S, H, W = vol.kspace.shape[0], vol.kspace.shape[-2], vol.kspace.shape[-1]
        h, w = vol.params["recon"]
        assert vol.target.shape == (S, h, w) and W >= w
        assert H == (2 * h if oversample_prob == 1.0 else h)
        images = center_crop(ifft2c_np(vol.kspace.astype(np.complex128)), (h, w))
        ref = np.sqrt((np.abs(images) ** 2).sum(axis=1)) if multicoil else np.abs(images)
        np.testing.assert_allclose(vol.target, ref, rtol=1e-4, atol=1e-5 * ref.max())
        assert vol.attrs["max"] == pytest.approx(float(vol.target.max()))


def test_draws_cover_the_randomised_domain():
    config = replace(SMALL, matrix=(96, 512), slices=1, coils=(2, 12))
    params = [json.loads(corpus_volume(config, 11, i).attrs["synth_params"]) for i in range(40)]
    recon = np.array([p["recon"] for p in params])
    assert recon.min() >= 96 and recon.max() <= 512 and np.all(recon % 8 == 0)
    ratios = recon[:, 0] / recon[:, 1]
    assert ratios.min() < 0.85 and ratios.max() > 1.15 and ratios.max() <= 1.6 + 0.1
    assert all(p["kspace"][0] == 2 * p["recon"][0] for p in params)
    assert {p["source"] for p in params} >= {"mni152", "colin27"}
    assert any(p["skull"] for p in params) and any(not p["skull"] for p in params)
    assert any(max(p["padding"]) > 0 for p in params) and any(p["phase_wrap"] for p in params)
    coils = [p.get("coils", 1) for p in params]
    assert 1 in coils and max(coils) > 6
    noise = [p["noise_rel"] for p in params]
    assert min(noise) >= 0 and max(noise) <= 0.05


def test_readout_oversampling_is_drawn_per_volume_and_unoversampled_objects_fill_the_fov():
    config = replace(SMALL, slices=1, oversample_prob=0.5, singlecoil_prob=1.0)
    vols = [corpus_volume(config, 11, i) for i in range(16)]
    rows = [v.kspace.shape[-2] / v.params["recon"][0] for v in vols]
    assert set(rows) == {1.0, 2.0}
    # Without oversampling the image is not faded towards the readout edges: some objects
    # reach the first and last rows of the field of view, as in real exported raw data.
    edge = [
        v.target[0, [0, -1]].max() / v.target.max()
        for v, r in zip(vols, rows, strict=True)
        if r == 1.0
    ]
    assert max(edge) > 0.2


def test_magnitude_noise_draws_keep_rician_noise_in_the_target_and_none_in_kspace():
    config = replace(
        SMALL, slices=1, magnitude_noise_prob=0.5, singlecoil_prob=0.5, magnitude_noise=(0.05, 0.15)
    )
    vols = [corpus_volume(config, 13, i) for i in range(16)]
    magnitude = [v for v in vols if "magnitude_noise_rel" in v.params]
    assert 0 < len(magnitude) < len(vols)
    for v in magnitude:
        rel = v.params["magnitude_noise_rel"]
        lo, hi = config.magnitude_noise
        assert v.params["noise_rel"] == 0.0 and lo <= rel <= hi
        # The noise floor covers the whole target, brain-stripped background included:
        # no pixel of a noisy magnitude image is exactly zero.
        assert (v.target > 0).all()
    # Without the option the same draw stream gives noise-free stripped backgrounds and
    # k-space noise only.
    for v in (corpus_volume(SMALL, 13, i) for i in range(8)):
        assert "magnitude_noise_rel" not in v.params


def test_magnitude_noise_of_n_channels_follows_the_noncentral_chi_law_on_real_anatomy():
    from math import gamma, sqrt

    from mrirecon.synth.fields import magnitude_noise

    # Real anatomy (skull-stripped Colin 27 / MNI draw): exactly zero outside the brain.
    mag, _ = sources.draw_source("colin27", np.random.RandomState(3), (2, 192, 160), (96, 160), 0.0)
    background, bright = mag == 0, mag > 0.6
    assert background.mean() > 0.3 and bright.sum() > 500
    rel = 0.04
    for n in (1, 4, 16):
        noisy = magnitude_noise(mag, rel, n, np.random.RandomState(n))
        sigma = rel * mag.reshape(2, -1).max(axis=1)[:, None, None]
        z = noisy / sigma
        # Background: chi with 2N degrees of freedom, mean sqrt(2) G(N + 1/2) / G(N).
        chi_mean = sqrt(2) * gamma(n + 0.5) / gamma(n)
        assert z[background].mean() == pytest.approx(chi_mean, rel=0.02)
        assert z[background].var() == pytest.approx(2 * n - chi_mean**2, rel=0.05)
        # High SNR: about sqrt(A^2 + (2N - 1) sigma^2), spread about one noise std.
        expect = np.sqrt((mag / sigma) ** 2 + 2 * n - 1)
        assert (z - expect)[bright].mean() == pytest.approx(0.0, abs=0.1)
        assert (z - expect)[bright].std() == pytest.approx(1.0, rel=0.1)
    # One channel is the Rician draw, value for value: |mag + n| with the same normals.
    rician = magnitude_noise(mag, rel, 1, np.random.RandomState(9))
    normals = np.random.RandomState(9).standard_normal((2, *mag.shape)).astype(np.float32)
    normals *= rel * mag.reshape(2, -1).max(axis=1)[:, None, None]
    assert np.array_equal(rician, np.abs(mag + normals[0] + 1j * normals[1]).astype(np.float32))


def test_magnitude_coils_draws_record_their_channels_and_raise_the_target_floor():
    base = replace(SMALL, slices=1, singlecoil_prob=1.0, magnitude_noise_prob=1.0)
    many = replace(base, magnitude_coils=(8, 16))
    floors = {}
    for name, config in (("rician", base), ("chi", many)):
        vols = [corpus_volume(config, 21, i) for i in range(6)]
        channels = [v.params["magnitude_noise_channels"] for v in vols]
        lo, hi = config.magnitude_coils
        assert all(lo <= c <= hi for c in channels)
        # The floor (1st percentile) relative to the noise std: Rayleigh vs chi-2N.
        floors[name] = np.median(
            [np.percentile(v.target, 1) / (v.params["magnitude_noise_rel"] * v.target.max())
             for v in vols]
        )  # fmt: skip
    assert floors["rician"] < 0.5 < 2.0 < floors["chi"]


def test_scanner_supports_interpolate_and_cut_partial_fourier_columns():
    from mrirecon.synth.scanner import scanner_support

    drawn = [scanner_support((64, 48), np.random.RandomState(s)) for s in range(40)]
    kinds = set()
    for support, info in drawn:
        rows, cols = support.any(axis=1), support.any(axis=0)
        # A product of a row and a column range: a rectangle of k-space.
        assert np.array_equal(support, rows[:, None] & cols[None, :])
        interpolated, fraction = bool(info["interpolated"]), info["partial_fourier"]
        assert interpolated or fraction < 1.0
        full_rows, full_cols = (32, 24) if interpolated else (64, 48)
        assert rows.sum() == full_rows and rows[32] and cols[24]  # the centre is kept
        assert cols.sum() == round(fraction * full_cols)
        if fraction < 1.0:  # one side of the phase encode only, zero-filled
            assert 5 / 8 <= fraction <= 7 / 8 and not cols[-1 - (48 - full_cols) // 2]
        kinds.add((interpolated, fraction < 1.0))
    assert kinds == {(True, False), (True, True), (False, True)}


def test_magnitude_noise_through_a_scanner_support_is_correlated_and_band_limited():
    from scipy import ndimage

    from mrirecon.synth.fields import magnitude_noise

    mag, _ = sources.draw_source("colin27", np.random.RandomState(3), (2, 192, 160), (96, 160), 0.0)
    far = ndimage.binary_erosion(mag == 0, np.ones((1, 3, 3), bool), iterations=12)
    assert far.sum() > 2000
    full = np.ones(mag.shape[1:], dtype=bool)
    half = np.zeros_like(full)
    half[48:144, 40:120] = True
    for n in (1, 4):
        # A full support is the plain draw, value for value (same normals, same order).
        plain = magnitude_noise(mag, 0.05, n, np.random.RandomState(n))
        same = magnitude_noise(mag, 0.05, n, np.random.RandomState(n), full)
        np.testing.assert_allclose(same, plain, rtol=1e-4, atol=1e-6)
        # Zero-fill interpolation correlates neighbouring noise pixels (complex correlation
        # sinc(1/2) = 0.64 at one pixel, about its square in the magnitude); white noise
        # is uncorrelated.
        interp = magnitude_noise(mag, 0.05, n, np.random.RandomState(n), half)
        for image, lo, hi in ((plain, -0.1, 0.1), (interp, 0.25, 0.6)):
            a = image - image[far].mean()
            r = (a[:, :, 1:] * a[:, :, :-1])[far[:, :, 1:] & far[:, :, :-1]].mean() / a[far].var()
            assert lo < r < hi
    # The signal channel is blurred: the brain's edges lose their highest frequencies.
    interp = magnitude_noise(mag, 1e-4, 1, np.random.RandomState(0), half)
    edge = np.abs(np.diff(mag, axis=2)).max()
    assert np.abs(np.diff(interp, axis=2)).max() < 0.8 * edge
    with pytest.raises(ValueError, match="support"):
        magnitude_noise(mag, 0.05, 1, np.random.RandomState(0), full[:10])


def test_magnitude_support_draws_are_recorded_and_off_by_default():
    config = replace(
        SMALL, slices=1, singlecoil_prob=1.0, magnitude_noise_prob=1.0, magnitude_support_prob=0.5
    )
    vols = [corpus_volume(config, 31, i) for i in range(12)]
    scanned = [v for v in vols if "scanner_support" in v.params]
    assert 0 < len(scanned) < len(vols)
    for v in scanned:
        assert set(v.params["scanner_support"]) == {"interpolated", "partial_fourier"}
        assert (v.target > 0).all()  # still a noise floor everywhere
    assert not any("scanner_support" in corpus_volume(SMALL, 31, i).params for i in range(6))


def test_every_source_draws_and_stripped_heads_have_exact_zero_background():
    rng = np.random.RandomState(0)
    for name in sources.SOURCES:
        mag, params = sources.draw_source(name, rng, (2, 96, 64), (48, 64), skull_prob=0.0)
        assert mag.shape == (2, 96, 64) and mag.dtype == np.float32
        assert mag.max() == pytest.approx(1.0) and mag.min() >= 0 and params["source"] == name
        assert (mag == 0).mean() > 0.2  # background outside the object (or the brain) is 0
    mag, params = sources.draw_source("mni152", rng, (1, 96, 64), (48, 64), skull_prob=1.0)
    assert params["skull"]


def test_tissue_contrasts_order_the_classes():
    t1, t2, flair = (sources.TISSUE_CONTRASTS[k] for k in ("T1", "T2", "FLAIR"))
    assert t1[0] < t1[1] < t1[2]  # T1: CSF dark, white matter bright
    assert t2[0] > t2[1] > t2[2]  # T2: CSF bright
    assert flair[0] < flair[2] < flair[1]  # FLAIR: CSF nulled, grey over white
    curve = sources.smooth_curve(np.random.RandomState(1), monotone=True)
    assert curve[0] == 0 and curve.max() == pytest.approx(1.0) and np.all(np.diff(curve) >= -1e-6)


def test_sources_carry_licences_and_held_out_scans_are_never_read(monkeypatch):
    notice = assets.asset_path("NOTICE.md").read_text()
    for name in sources.ASSET_FILES:
        assert name in assets.ASSETS and name not in assets.HELD_OUT and name in notice
        licence = assets.ASSETS[name]
        assert licence in notice and assets.asset_path(licence).stat().st_size > 500
    # Re-load everything with asset_path recording what is opened.
    opened: list[str] = []
    real = assets.asset_path
    monkeypatch.setattr(assets, "asset_path", lambda n: opened.append(n) or real(n))
    caches = [
        assets._colin27_cached, assets.load_colin27_brain_mask, assets.load_mni152,
        assets.load_natural_images, sources._mni, sources._colin,
    ]  # fmt: skip
    for cache in caches:
        cache.cache_clear()
    try:
        for i in range(12):
            corpus_volume(replace(SMALL, nonmri_fraction=0.5), 0, i)
    finally:
        for cache in caches:
            cache.cache_clear()
    assert set(opened) == set(sources.ASSET_FILES)
    assert not set(opened) & assets.HELD_OUT


def test_natural_images_exclude_the_held_out_wheels_sample_images():
    names = set(assets.load_natural_images())
    mpl = pytest.importorskip("matplotlib")
    sample = Path(mpl.get_data_path()) / "sample_data"
    held_out = {p.name.split(".")[0].lower() for p in sample.rglob("*") if p.is_file()}
    assert held_out and not names & held_out
    assert "grace_hopper" not in names and "s1045" not in names
    for dipy_name in ("t1", "t2", "stanford_hardi", "scil_b0", "mni_template"):
        assert dipy_name not in names


def test_config_errors_name_the_option():
    with pytest.raises(ConfigError, match="'coils'"):
        CorpusConfig(coils=(1, 8))
    with pytest.raises(ConfigError, match="'nonmri_fraction'"):
        CorpusConfig(nonmri_fraction=1.5)
    with pytest.raises(ConfigError, match="'matrix'"):
        CorpusConfig(matrix=(256, 96))
    with pytest.raises(ConfigError, match="'oversample_prob'"):
        CorpusConfig(oversample_prob=1.5)
    with pytest.raises(ConfigError, match="'magnitude_noise_prob'"):
        CorpusConfig(magnitude_noise_prob=-0.1)
    with pytest.raises(ConfigError, match="'magnitude_noise'"):
        CorpusConfig(magnitude_noise=(0.2, 0.1))
    with pytest.raises(ConfigError, match="'magnitude_coils'"):
        CorpusConfig(magnitude_coils=(0, 4))
    with pytest.raises(ConfigError, match="'magnitude_coils'"):
        CorpusConfig(magnitude_coils=(8, 4))


def test_streaming_dataset_feeds_the_unet_transform_unchanged():
    transform = UnetTransform(MaskSpec("random", (0.08, 0.04), (4, 8)), mode="train", seed=5)
    ds = CorpusSliceDataset(SMALL, num_slices=3, seed=2, transform=transform)
    raw = ds.raw_slice(0)
    assert isinstance(raw, RawSlice) and raw.kspace.ndim == 3 and raw.file_mask is None
    sample = ds[1]
    assert sample.image.shape == sample.target.shape and sample.image.shape[0] == 1
    again = CorpusSliceDataset(SMALL, num_slices=3, seed=2, transform=transform)[1]
    assert torch.equal(sample.image, again.image) and torch.equal(sample.mask, again.mask)
    ds.set_epoch(1)
    assert not torch.equal(ds[1].target_raw.flatten()[:10], sample.target_raw.flatten()[:10])
    ds.set_epoch(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1)
    for got, i in zip(loader, range(3), strict=True):
        assert torch.equal(got.image, ds[i].image)


def test_cli_corpus_files_pass_data_check_and_fastmri_parity(tmp_path, capsys):
    from mrirecon.cli import main

    out = tmp_path / "corpus"
    args = ["data", "synth", "--corpus", "3", "--out", str(out), "--seed", "4"]
    assert main([*args, "--slices", "2", "--matrix", "32", "64", "--oversample-prob", "0.5"]) == 0
    assert "wrote 3 corpus volume(s)" in capsys.readouterr().out
    assert main(["data", "check", str(out)]) == 0
    assert "3 usable, 0 unusable" in capsys.readouterr().out
    fm_data = pytest.importorskip("fastmri.data")
    from fastmri.data.subsample import RandomMaskFunc
    from fastmri.data.transforms import UnetDataTransform

    # fastMRI reads one kind per folder: a multi-coil-only corpus for its parity check.
    mc = tmp_path / "mc"
    mixed = replace(SMALL, singlecoil_prob=0.0, oversample_prob=0.5, magnitude_noise_prob=0.5)
    write_corpus(mc, mixed, 2, seed=10)
    ref_ds = fm_data.SliceDataset(
        root=mc,
        challenge="multicoil",
        transform=UnetDataTransform(
            "multicoil", mask_func=RandomMaskFunc([0.08], [4]), use_seed=True
        ),
    )
    ours = SliceDataset(mc, transform=UnetTransform(MaskSpec("random", (0.08,), (4,)), mode="eval"))
    assert len(ours) == len(ref_ds) == 4
    for i in range(len(ours)):
        ref, got = ref_ds[i], ours[i]
        np.testing.assert_allclose(got.image[0].numpy(), ref.image.numpy(), atol=2e-5, rtol=1e-5)
        np.testing.assert_allclose(got.target[0].numpy(), ref.target.numpy(), atol=2e-5, rtol=1e-5)
    ours.close()


def test_cli_corpus_rejects_bad_options(tmp_path):
    from mrirecon.cli import main

    with pytest.raises(ConfigError, match="--corpus"):
        write_corpus(tmp_path / "x", SMALL, 0)
    assert main(["data", "synth", "--corpus", "1", "--demo", "--out", str(tmp_path)]) == 1
    assert main(["data", "synth", "--matrix", "32", "64", "--out", str(tmp_path)]) == 1
    assert main(["data", "synth", "--oversample-prob", "0.5", "--out", str(tmp_path)]) == 1
    assert main(["data", "synth", "--magnitude-noise-prob", "0.5", "--out", str(tmp_path)]) == 1
    bad = ["data", "synth", "--corpus", "1", "--oversample-prob", "2", "--out", str(tmp_path)]
    assert main(bad) == 1
    bad = ["data", "synth", "--corpus", "1", "--magnitude-noise-prob", "x", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):
        main(bad)


def test_fast_paths_match_their_exact_definitions():
    from mrirecon.fft import fft2c_np
    from mrirecon.synth import fields
    from mrirecon.synth.corpus import _coil_maps
    from mrirecon.synth.kspace import fft2c_rows

    rng = np.random.RandomState(3)
    for hw, rows, width in [(8, 16, 12), (10, 16, 13), (16, 16, 9), (2, 20, 8)]:
        x = (rng.normal(size=(2, hw, width)) + 1j * rng.normal(size=(2, hw, width))).astype(
            np.complex64
        )
        padded = np.zeros((2, rows, width), dtype=np.complex64)
        padded[:, (rows - hw) // 2 : (rows + hw) // 2] = x
        np.testing.assert_allclose(fft2c_rows(x, rows), fft2c_np(padded), atol=2e-6)
    # Coil maps on a 2x coarser grid, linearly upsampled: within 1% of the exact maps in the
    # crop, 3% at the grid's edges (the last row and column are extrapolated).
    shape, recon = (208, 176), (160, 160)
    offsets = np.zeros(1)
    fast = _coil_maps(shape, recon, 8, offsets, np.random.RandomState(5), "ring")
    coarse = fields.coil_maps(
        (104, 88), (80, 80), 8, offsets, np.random.RandomState(5), "ring", True
    )
    np.testing.assert_array_equal(fast[..., ::2, ::2], coarse)
    for seed in range(4):
        for layout in fields.COIL_LAYOUTS:
            full = fields.coil_maps(
                shape, recon, 8, offsets, np.random.RandomState(seed), layout, smooth_phase=True
            )
            fast = _coil_maps(shape, recon, 8, offsets, np.random.RandomState(seed), layout)
            err, peak = np.abs(fast - full), np.abs(full).max()
            assert center_crop(err, recon).max() < 0.01 * peak, (seed, layout)
            assert err.max() < 0.03 * peak, (seed, layout)
    # Quantised normals: unit variance, zero mean, the requested inter-coil gain.
    noise = fields.coil_noise((1, 4, 128, 128), 0.5, np.random.RandomState(0), quantised=True)
    std = np.sqrt((np.abs(noise) ** 2).mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(std, 0.5, rtol=0.03)
    assert abs(noise.mean()) < 0.01
