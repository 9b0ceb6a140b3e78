"""The fastMRI HDF5 format module: layouts read without data, slice reads, output files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from mrirecon.data.dataset import inspect_file, read_volume
from mrirecon.data.fastmri_h5 import (
    COMPLETE_ATTR,
    VolumeReader,
    read_attrs,
    read_finished_attrs,
    read_layout,
    read_output_mask,
    read_reconstruction,
    reconstruction_bytes,
    volume_bytes,
)
from mrirecon.errors import DataError
from mrirecon.io import write_reconstruction
from tests.conftest import ismrmrd_header, make_volume, write_fastmri


def test_layout_declares_without_reading_data(tmp_path, monkeypatch):
    k, t = make_volume(True, slices=2, seed=3)
    path = write_fastmri(tmp_path / "a.h5", k, t, multicoil=True, attrs={"patient_id": "p1"})
    # a read of k-space or target data would go through Dataset.__getitem__
    reads = []
    orig = h5py.Dataset.__getitem__

    def spy(self, key):
        reads.append(self.name)
        return orig(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    lay = read_layout(path)
    assert "/kspace" not in reads and "/reconstruction_rss" not in reads
    assert lay.kspace.shape == k.shape and lay.kspace.dtype == np.complex64
    assert lay.target_key == "reconstruction_rss" and lay.target.shape == t.shape
    assert lay.header is not None and lay.header.recon_size[:2] == (128, 128)
    assert lay.attrs["acquisition"] == "TEST" and lay.attrs["patient_id"] == "p1"
    assert lay.mask_shape is None and lay.mask is None


def test_volume_reader_slices_equal_whole_volume(tmp_path):
    k, t = make_volume(False, slices=3, seed=4)
    mask = np.zeros(k.shape[-1], bool)
    mask[::3] = True
    mask[60:90] = True
    path = write_fastmri(tmp_path / "sc.h5", k, t, multicoil=False, mask=mask)
    info = inspect_file(path)
    kspace, target, file_mask = read_volume(info)
    assert kspace.shape == (3, 1, *k.shape[-2:]) and np.array_equal(kspace[:, 0], k)
    np.testing.assert_array_equal(target, t)
    np.testing.assert_array_equal(file_mask, mask)
    with VolumeReader(path, info.target_key, True) as reader:
        ks1, t1, m1 = reader.read(1)
    np.testing.assert_array_equal(ks1, k[1])
    np.testing.assert_array_equal(t1, t[1])
    np.testing.assert_array_equal(m1, mask)


def test_volume_bytes_round_trip_is_a_valid_input_file(tmp_path):
    k, t = make_volume(True, slices=1, seed=5)
    data = volume_bytes(k, t, ismrmrd_header(k.shape[-2:], (128, 128)), {"acquisition": "X"})
    path = tmp_path / "v.h5"
    path.write_bytes(data)
    info = inspect_file(path)
    assert (
        info.multicoil and info.target_key == "reconstruction_rss" and info.recon_size == (128, 128)
    )
    assert read_attrs(path)["acquisition"] == "X"
    assert volume_bytes(k, t, None, {}) == volume_bytes(k, t, None, {})  # reproducible bytes


def test_reconstruction_file_round_trip(tmp_path):
    recon = np.random.default_rng(0).random((2, 8, 6)).astype(np.float32)
    mask = np.arange(10) % 3 == 0
    path = write_reconstruction(tmp_path / "r.h5", recon, {"method": "x", "accs": [4.0]}, mask)
    np.testing.assert_array_equal(read_reconstruction(path), recon)
    np.testing.assert_array_equal(read_output_mask(path), mask)
    attrs = read_finished_attrs(path)
    assert attrs is not None and attrs["method"] == "x" and attrs[COMPLETE_ATTR] is True
    # bytes built in memory give the same file
    assert path.read_bytes() == reconstruction_bytes(recon, {"method": "x", "accs": [4.0]}, mask)


def test_unfinished_or_foreign_outputs_are_not_finished(tmp_path):
    with h5py.File(tmp_path / "foreign.h5", "w") as hf:
        hf["reconstruction"] = np.zeros((1, 4, 4), np.float32)
    (tmp_path / "junk.h5").write_bytes(b"junk")
    assert read_finished_attrs(tmp_path / "foreign.h5") is None
    assert read_finished_attrs(tmp_path / "junk.h5") is None
    assert read_finished_attrs(tmp_path / "missing.h5") is None
    assert read_output_mask(tmp_path / "foreign.h5") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (np.zeros((1, 4, 4), np.complex64), "must be real"),
        (np.zeros((4, 4), np.float32), r"must be \(S, h, w\)"),
    ],
)
def test_read_reconstruction_rejects_bad_arrays(tmp_path, data, reason):
    with h5py.File(tmp_path / "p.h5", "w") as hf:
        hf["reconstruction"] = data
    with pytest.raises(DataError, match=reason):
        read_reconstruction(tmp_path / "p.h5")
