"""Shipped assets and the Colin 27 k-space synthesiser (data.assets, synth.volumes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from mrirecon.data.assets import ASSETS, COLIN27_SHAPE, asset_path, load_colin27
from mrirecon.fft import fft2c_np, ifft2c_np
from mrirecon.synth.kspace import kspace_size_for
from mrirecon.synth.volumes import VAL_BAND, SynthConfig, demo_dataset, make_volume, synthesize

# Small, non-square geometry so that H/W or h/w mix-ups show; pad/no-pad made explicit.
SMALL = SynthConfig(
    seed=3, num_singlecoil=2, num_multicoil=3, slices=3, recon_size=(40, 32), coils=(2, 9)
)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def colin() -> np.ndarray:
    return load_colin27()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, list[Path]]:
    """Single-coil and multi-coil files in separate folders (fastMRI reads one kind per root)."""
    root = tmp_path_factory.mktemp("synth")
    sc = replace(SMALL, num_multicoil=0, pad_prob=1.0)
    mc = replace(SMALL, num_singlecoil=0, pad_prob=0.5)
    return {
        "singlecoil": synthesize(root / "sc", sc),
        "multicoil": synthesize(root / "mc", mc),
    }


# ---------------------------------------------------------------- assets


def test_assets_present_with_licences():
    total = 0
    notice = asset_path("NOTICE.md").read_text()
    for data, licence in ASSETS.items():
        path = asset_path(data)
        total += path.stat().st_size
        text = asset_path(licence).read_text()
        assert "Redistribution" in text or "Permission is hereby granted" in text
        assert data in notice and licence in notice
    assert "CC BY 4.0" in notice and "Holmes" in notice and "Ehses" in notice
    assert total < 12 * 2**20  # corpus anatomy (MNI, masks, images) adds ~4 MB


def test_asset_path_rejects_unknown_name():
    with pytest.raises(ValueError, match="no_such.h5"):
        asset_path("no_such.h5")


def test_real_assets_are_fastmri_like():
    for name, coils in (("tugraz_brain_t2_4ch.h5", 4), ("twix_gre_phantom_2ch.h5", 2)):
        with h5py.File(asset_path(name), "r") as hf:
            kspace = hf["kspace"][()]
            assert kspace.dtype == np.complex64 and kspace.shape[:2] == (1, coils)
            rss = np.sqrt((np.abs(ifft2c_np(kspace.astype(np.complex128))) ** 2).sum(1))
            np.testing.assert_allclose(rss, hf["reconstruction_rss"][()], rtol=1e-4, atol=1e-9)


def test_load_colin27(colin):
    assert colin.shape == COLIN27_SHAPE == (181, 217, 181)
    assert colin.dtype == np.uint8 and colin.flags.writeable
    assert 250 <= colin.max() <= 255 and (colin > 20).mean() > 0.2  # a head, not noise
    first = load_colin27()
    first[90, 100, 90] = 255 - first[90, 100, 90]
    assert load_colin27()[90, 100, 90] == colin[90, 100, 90]  # each call is a fresh copy


# ---------------------------------------------------------------- file format


def _fastmri_target(kspace: np.ndarray, crop: tuple[int, int], multicoil: bool) -> np.ndarray:
    import fastmri
    from fastmri.data import transforms as T

    image = fastmri.ifft2c(T.to_tensor(kspace))
    image = fastmri.complex_abs(T.complex_center_crop(image, crop))
    return (fastmri.rss(image, dim=0) if multicoil else image).numpy()


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_fastmri_slicedataset_reads_files(folders, challenge):
    mri_data = pytest.importorskip("fastmri.data.mri_data")
    files = folders[challenge]
    dataset = mri_data.SliceDataset(files[0].parent, challenge=challenge)
    assert len(dataset) == len(files) * SMALL.slices
    H, W = SMALL.kspace
    h, w = SMALL.recon_size
    for kspace, mask, target, attrs, _fname, _ in dataset:
        assert mask is None and kspace.dtype == np.complex64
        assert kspace.shape[-2:] == (H, W) and target.shape == (h, w)
        assert attrs["encoding_size"] == (H, W, 1) and attrs["recon_size"] == (h, w, 1)
        # Acquired columns are exactly [padding_left, padding_right): zero outside only.
        left, right = attrs["padding_left"], attrs["padding_right"]
        col_energy = (np.abs(kspace) ** 2).reshape(-1, W).sum(0)
        assert 0 <= left < right <= W and np.all(col_energy[:left] == 0)
        assert np.all(col_energy[right:] == 0) and np.all(col_energy[left:right] > 0)
        # Target = fastMRI's fully sampled zero-filled reconstruction.
        ref = _fastmri_target(kspace, (h, w), challenge == "multicoil")
        assert np.linalg.norm(ref - target) <= 1e-6 * np.linalg.norm(target)
        assert attrs["acquisition"].startswith("SYNTH_") and attrs["patient_id"]


def test_attrs_and_header(folders):
    from mrirecon.data.header import parse_header

    for path in folders["multicoil"] + folders["singlecoil"]:
        with h5py.File(path, "r") as hf:
            key = "reconstruction_rss" if hf["kspace"].ndim == 4 else "reconstruction_esc"
            target = hf[key][()]
            assert target.dtype == np.float32
            assert hf.attrs["max"] == pytest.approx(float(target.max()), rel=1e-6)
            assert hf.attrs["norm"] == pytest.approx(float(np.linalg.norm(target)), rel=1e-5)
            header = parse_header(hf["ismrmrd_header"][()])
            params = json.loads(hf.attrs["synth_params"])
        assert header.recon_size == (*SMALL.recon_size, 1)
        assert header.padding_left == params["padding"][0]
        assert header.padding_right == SMALL.kspace[1] - params["padding"][1]
    # pad_prob=1: every single-coil file is zero-padded.
    for path in folders["singlecoil"]:
        with h5py.File(path, "r") as hf:
            assert min(json.loads(hf.attrs["synth_params"])["padding"]) >= 1
    assert not list(folders["multicoil"][0].parent.glob(".*tmp"))  # atomic writes left no temp


# ---------------------------------------------------------------- content


def _conj_asymmetry(kspace: np.ndarray) -> float:
    """||k - conj(k(-f))|| / ||k||; 0 for the k-space of a real image (even sizes)."""
    k = kspace[..., 1:, 1:]
    return float(np.linalg.norm(k - np.conj(k[..., ::-1, ::-1])) / np.linalg.norm(k))


def test_kspace_has_phase(colin):
    quiet = replace(SMALL, noise=(1e-6, 1e-6), pad_prob=0.0)
    vol = make_volume(quiet, 0, multicoil=False, volume=colin)
    real_image = np.abs(ifft2c_np(vol.kspace.astype(np.complex128)))

    assert _conj_asymmetry(fft2c_np(real_image)) < 1e-6  # the measure itself works
    assert _conj_asymmetry(vol.kspace) > 0.3
    mc = make_volume(quiet, 0, multicoil=True, volume=colin)
    assert _conj_asymmetry(mc.kspace) > 0.3


def test_anatomy_fills_the_crop_and_noise_is_present(colin):
    vol = make_volume(replace(SMALL, pad_prob=0.0), 1, multicoil=True, volume=colin)
    target = vol.target
    assert target.shape == (SMALL.slices, *SMALL.recon_size)
    inside = (target > 0.2 * target.max()).mean()
    assert 0.1 < inside < 0.95  # head and background both present
    image = ifft2c_np(vol.kspace.astype(np.complex128))
    corner = image[..., :4, :4]  # readout-oversampled air: noise only
    assert 0 < np.abs(corner).std() < 0.1 * np.abs(image).max()


def test_reproducible_and_seed_dependent(colin, tmp_path):
    a = make_volume(SMALL, 2, multicoil=True, volume=colin)
    b = make_volume(SMALL, 2, multicoil=True, volume=colin)
    assert a.kspace.tobytes() == b.kspace.tobytes() and a.target.tobytes() == b.target.tobytes()
    assert a.header == b.header and a.attrs == b.attrs
    c = make_volume(replace(SMALL, seed=4), 2, multicoil=True, volume=colin)
    d = make_volume(SMALL, 3, multicoil=True, volume=colin)
    for other in (c, d):
        assert other.kspace.shape != a.kspace.shape or not np.array_equal(other.kspace, a.kspace)
    cfg = replace(SMALL, num_singlecoil=1, num_multicoil=1)
    first = synthesize(tmp_path / "x", cfg)
    second = synthesize(tmp_path / "y", cfg)
    assert [p.name for p in first] == [p.name for p in second]
    assert [_sha(p) for p in first] == [_sha(p) for p in second]


def test_coil_counts_and_layouts_vary(colin):
    cfg = replace(SMALL, slices=1, recon_size=(16, 16), coils=(4, 12))
    params = [make_volume(cfg, i, True, colin).params for i in range(12)]
    counts = {p["coils"] for p in params}
    assert len(counts) >= 4 and min(counts) >= 4 and max(counts) <= 12
    assert len({p["coil_layout"] for p in params}) >= 2
    assert len({p["orientation"] for p in params}) == 3
    assert len({p["contrast"] for p in params}) == 3


def test_config_validation():
    with pytest.raises(ValueError, match="slices"):
        SynthConfig(slices=0)
    with pytest.raises(ValueError, match="smaller than recon"):
        SynthConfig(recon_size=(64, 64), kspace_size=(128, 32))
    with pytest.raises(ValueError, match="coils"):
        SynthConfig(coils=(8, 4))
    assert kspace_size_for((320, 320)) == (640, 368)
    assert kspace_size_for((128, 128)) == (256, 144)
    impossible = replace(SMALL, slab_band=(0.45, 0.55), exclude_band=(0.4, 0.6))
    with pytest.raises(ValueError, match="slab"):
        make_volume(impossible, 0, True)


def test_demo_dataset(tmp_path):
    layout = demo_dataset(tmp_path / "demo", num_train=3, num_val=2, slices=2, recon_size=(32, 32))
    train = sorted(layout.train_dir.glob("*.h5"))
    val = sorted(layout.val_dir.glob("*.h5"))
    assert len(train) == 3 and len(val) == 2
    assert {p.name for p in layout.real_dir.iterdir()} == {
        "tugraz_brain_t2_4ch.h5",
        "twix_gre_phantom_2ch.h5",
    }
    for name in ("tugraz_brain_t2_4ch.h5", "twix_gre_phantom_2ch.h5"):
        assert _sha(layout.real_dir / name) == _sha(asset_path(name))
    lo, hi = VAL_BAND
    for path in train + val:
        with h5py.File(path, "r") as hf:
            params = json.loads(hf.attrs["synth_params"])
            assert hf["kspace"].ndim == 4 and 4 <= hf["kspace"].shape[1] <= 8
        frac = params["slab_centre_frac"]
        assert (lo <= frac <= hi) == (path in val)
    hashes = {_sha(p) for p in train + val}
    assert len(hashes) == 5
