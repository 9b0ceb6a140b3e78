"""Hostile files are refused at the door, by one check that every command shares.

Also: skipped folder entries are listed, and the crop rules match fastMRI where the size
differences are odd and where k-space is narrower than the recon width.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.dataset import SliceDataset
from mrirecon.data.masks import MaskSpec
from mrirecon.data.transforms import UnetTransform
from mrirecon.fft import center_crop
from mrirecon.io import write_reconstruction
from tests.conftest import make_volume, write_fastmri


def _good(folder: Path, name: str = "a_good.h5") -> Path:
    folder.mkdir(exist_ok=True)
    k, t = make_volume(True, slices=1, seed=50)
    return write_fastmri(folder / name, k, t, multicoil=True)


def _declared_only(path: Path, shape: tuple[int, ...], chunks: tuple[int, ...]) -> Path:
    """A file whose k-space is declared (chunked) but never written: a few KiB on disk."""
    with h5py.File(path, "w") as hf:
        hf.create_dataset("kspace", shape=shape, dtype=np.complex64, chunks=chunks)
    return path


def _test_file(path: Path, mask: np.ndarray | None = None, recon=(128, 128)) -> Path:
    """A test file (no target; mask and header recon size given)."""
    k, _ = make_volume(False, slices=1, seed=51)
    if mask is None:
        mask = np.zeros(k.shape[-1], bool)
        mask[::4] = True
        mask[70:82] = True
    return write_fastmri(path, k, None, multicoil=False, recon=recon, mask=mask)


def _one_line_for(err: str, prefix: str, path: Path, reason: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith(prefix) and path.name in line]
    assert len(lines) == 1 and reason in lines[0], err
    assert "Traceback" not in err


def test_absurd_declared_kspace_is_refused_by_every_command(tmp_path, capsys):
    inp = tmp_path / "in"
    _good(inp)
    huge = _declared_only(inp / "b_huge.h5", (2, 4, 2**20, 2**20), (1, 1, 64, 64))
    out = tmp_path / "out"
    code = main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"])
    _one_line_for(capsys.readouterr().err, "FAILED", huge, "beyond the limits")
    assert code == 1 and [p.name for p in out.iterdir() if p.suffix == ".h5"] == ["a_good.h5"]

    write_reconstruction(out / huge.name, np.zeros((2, 8, 8), np.float32))
    assert main(["evaluate", "--targets", str(inp), "--predictions", str(out)]) == 1
    _one_line_for(capsys.readouterr().err, "FAILED", huge, "beyond the limits")

    assert main(["data", "check", str(inp)]) == 1
    _one_line_for(capsys.readouterr().out, "UNUSABLE", huge, "beyond the limits")


def test_data_check_bounds_its_work_on_a_file_declaring_ten_million_slices(tmp_path, capsys):
    _good(tmp_path)
    many = _declared_only(tmp_path / "many.h5", (10**7, 64, 64), (1, 64, 64))
    start = time.perf_counter()
    assert main(["data", "check", str(tmp_path)]) == 1
    assert time.perf_counter() - start < 30
    _one_line_for(capsys.readouterr().out, "UNUSABLE", many, "10000000")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("zero", "acquires no columns"),
        ("centre_only", "acquires only the 12 centre columns"),
    ],
)
def test_unusable_masks_are_reported_by_data_check_and_reconstruct(tmp_path, capsys, case, reason):
    inp = tmp_path / "in"
    inp.mkdir()
    _test_file(inp / "a_ok.h5")
    mask = np.zeros(152, bool)
    if case == "centre_only":
        mask[70:82] = True
    bad = _test_file(inp / "b_mask.h5", mask)
    assert main(["data", "check", str(inp)]) == 1
    out = capsys.readouterr().out
    _one_line_for(out, "UNUSABLE", bad, reason)
    assert "1 usable, 1 unusable" in out
    code = main(
        ["reconstruct", "--input", str(inp), "--output", str(tmp_path / "o"), "--no-progress"]
    )
    _one_line_for(capsys.readouterr().err, "FAILED", bad, reason)
    assert code == 1 and (tmp_path / "o" / "a_ok.h5").is_file()


@pytest.mark.parametrize(
    ("recon", "reason"),
    [
        ((10**9, 10**9), "is larger than k-space"),
        ((0, 0), "must be positive"),
        ((-64, -64), "must be positive"),
        ((128, 0), "must be positive"),
    ],
)
def test_recon_sizes_must_be_positive_and_within_kspace(tmp_path, capsys, recon, reason):
    inp = tmp_path / "in"
    inp.mkdir()
    bad = _test_file(inp / "b_recon.h5", recon=recon)
    assert main(["data", "check", str(inp)]) == 1
    _one_line_for(capsys.readouterr().out, "UNUSABLE", bad, reason)
    code = main(
        ["reconstruct", "--input", str(inp), "--output", str(tmp_path / "o"), "--no-progress"]
    )
    assert code == 1
    _one_line_for(capsys.readouterr().err, "FAILED", bad, reason)


def test_data_check_lists_skipped_entries_once(tmp_path, capsys):
    _good(tmp_path)
    (tmp_path / "x.h5").mkdir()
    (tmp_path / "dangling.h5").symlink_to(tmp_path / "nowhere.h5")
    (tmp_path / "loop.h5").symlink_to(tmp_path / "loop.h5")
    assert main(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for name, why in (("x.h5", "not a regular file"), ("dangling.h5", "broken symbolic link"),
                      ("loop.h5", "symbolic link loop")):  # fmt: skip
        _one_line_for(out, "SKIPPED", tmp_path / name, why)
        assert out.count(name) == 1
    assert "1 usable, 0 unusable of 1 file(s), 3 skipped" in out


@pytest.mark.parametrize(
    ("size", "crop"), [((12, 16), (7, 9)), ((11, 15), (4, 6)), ((9, 9), (8, 2))]
)
def test_centre_crop_matches_fastmri_at_odd_and_even_differences(size, crop):
    fm = pytest.importorskip("fastmri.data.transforms")
    x = torch.arange(2 * size[0] * size[1], dtype=torch.float32).reshape(2, *size)
    np.testing.assert_array_equal(center_crop(x, crop), fm.center_crop(x, crop))
    np.testing.assert_array_equal(center_crop(x.numpy(), crop), fm.center_crop(x, crop).numpy())
    xc = torch.complex(x, -x)
    ref = fm.complex_center_crop(torch.view_as_real(xc), crop)
    np.testing.assert_array_equal(torch.view_as_real(center_crop(xc, crop)), ref)


@pytest.mark.parametrize("multicoil", [True, False])
def test_narrow_kspace_crop_matches_fastmri_unet_transform(tmp_path, multicoil):
    """k-space 101 columns wide, target 128 x 128: fastMRI crops both to 101 x 101."""
    fm_data = pytest.importorskip("fastmri.data")
    from fastmri.data.subsample import RandomMaskFunc
    from fastmri.data.transforms import UnetDataTransform

    k, t = make_volume(multicoil, slices=2, seed=52, pad_w=0)
    narrow = k[..., 13:114]  # the centre 101 of 128 columns: odd size differences
    assert narrow.shape[-1] == 101 and t.shape[-1] == 128
    write_fastmri(tmp_path / "narrow.h5", narrow, t, multicoil=multicoil)
    challenge = "multicoil" if multicoil else "singlecoil"
    ref_ds = fm_data.SliceDataset(
        root=tmp_path,
        challenge=challenge,
        transform=UnetDataTransform(
            challenge, mask_func=RandomMaskFunc([0.08], [4]), use_seed=True
        ),
    )
    ours = SliceDataset(
        tmp_path, transform=UnetTransform(MaskSpec("random", (0.08,), (4,)), mode="eval")
    )
    for i in range(2):
        ref, got = ref_ds[i], ours[i]
        assert tuple(got.image.shape[-2:]) == tuple(ref.image.shape) == (101, 101)
        np.testing.assert_allclose(got.image[0].numpy(), ref.image.numpy(), atol=2e-5, rtol=1e-5)
        np.testing.assert_allclose(got.target[0].numpy(), ref.target.numpy(), atol=2e-5, rtol=1e-5)
        np.testing.assert_allclose(got.mean.item(), ref.mean.item(), rtol=1e-5)
    ours.close()
