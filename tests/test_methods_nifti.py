"""reconstruct --format nifti: .nii.gz files with the h5 data, a header-derived affine and provenance."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_reconstruction
from mrirecon.data.header import parse_header
from mrirecon.io import write_nifti
from tests.conftest import make_volume, write_fastmri

nib = pytest.importorskip("nibabel")

FOV_HEADER = b"""<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>256</x><y>152</y><z>1</z></matrixSize>
<fieldOfView_mm><x>400</x><y>237.5</y><z>3</z></fieldOfView_mm></encodedSpace>
<reconSpace><matrixSize><x>128</x><y>128</y><z>1</z></matrixSize>
<fieldOfView_mm><x>200</x><y>180</y><z>3</z></fieldOfView_mm></reconSpace>
<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>151</maximum>
<center>76</center></kspace_encoding_step_1></encodingLimits></encoding></ismrmrdHeader>"""


@pytest.fixture
def inp(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    k, t = make_volume(True, slices=2, seed=8)
    p = write_fastmri(folder / "fov.h5", k, t, multicoil=True, header=False)
    import h5py

    with h5py.File(p, "r+") as hf:
        hf.create_dataset("ismrmrd_header", data=FOV_HEADER)
    k, t = make_volume(False, slices=1, seed=9)
    write_fastmri(folder / "plain.h5", k, t, multicoil=False)
    return folder


def test_nifti_matches_h5_with_header_voxel_size(inp, tmp_path):
    base = ["reconstruct", "--input", str(inp), "--accelerations", "4", "--no-progress"]
    assert main([*base, "--output", str(tmp_path / "h5")]) == 0
    assert main([*base, "--output", str(tmp_path / "nii"), "--format", "nifti"]) == 0
    files = sorted(p.name for p in (tmp_path / "nii").iterdir())
    assert files == ["fov.nii.gz", "plain.nii.gz"]
    for stem, zooms in (("fov", (180 / 128, 200 / 128, 3.0)), ("plain", (1.0, 1.0, 1.0))):
        img = nib.load(tmp_path / "nii" / f"{stem}.nii.gz")
        ref = read_reconstruction(tmp_path / "h5" / f"{stem}.h5")
        data = np.asarray(img.dataobj)
        assert data.dtype == np.float32 and data.shape == (ref.shape[2], ref.shape[1], ref.shape[0])
        np.testing.assert_array_equal(data, ref[:, ::-1, :].transpose(2, 1, 0))
        np.testing.assert_allclose(img.header.get_zooms(), zooms, rtol=1e-6)
        np.testing.assert_allclose(np.diag(img.affine)[:3], zooms, rtol=1e-6)
        centre = img.affine @ np.r_[(np.asarray(data.shape) - 1) / 2, 1]
        np.testing.assert_allclose(centre[:3], 0, atol=1e-6)
        (ext,) = img.header.extensions
        prov = json.loads(ext.get_content())
        assert prov["method"] == "zero-filled" and prov["acceleration"] == 4.0
        assert prov["source_file"] == f"{stem}.h5" and len(prov["mask_columns"]) > 0
    # a rerun finds the finished NIfTI outputs and redoes none of them
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "nii").iterdir()}
    assert main([*base, "--output", str(tmp_path / "nii"), "--format", "nifti"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "nii").iterdir()} == mtimes


def test_voxel_size_from_header():
    assert parse_header(FOV_HEADER).voxel_size == pytest.approx((200 / 128, 180 / 128, 3.0))
    with pytest.raises(ValueError, match="not valid XML"):
        parse_header(b"<not xml")
    assert parse_header(FOV_HEADER.replace(b"<x>200</x>", b"")).voxel_size is None


def test_write_nifti_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="must be real"):
        write_nifti(tmp_path / "a.nii.gz", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        write_nifti(tmp_path / "a.nii.gz", np.full((1, 4, 4), np.nan))
    assert not list(tmp_path.iterdir())


def test_nifti_without_nibabel_is_a_clear_error(inp, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    code = main(["reconstruct", "--input", str(inp), "--output", str(tmp_path / "o"),
                 "--format", "nifti"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and "needs nibabel" in err and "mrirecon[nifti]" in err
    assert len(err.splitlines()) == 1
