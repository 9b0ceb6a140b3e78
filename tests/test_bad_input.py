"""Every kind of bad input gets one clear line naming the file; the other files are unaffected."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from mrirecon.cli import main
from mrirecon.data.dataset import SliceDataset, inspect_file, scan_folder
from mrirecon.errors import DataError
from tests.conftest import make_volume, write_fastmri


def _good(folder: Path, name: str = "good.h5") -> Path:
    k, t = make_volume(True, slices=2, seed=5)
    return write_fastmri(folder / name, k, t, multicoil=True)


def _non_hdf5(p: Path) -> str:
    p.write_bytes(b"this is not an HDF5 file\n" * 10)
    return "not a readable HDF5"


def _truncated(p: Path) -> str:
    src = _good(p.parent, "full_copy.h5")
    data = src.read_bytes()
    src.unlink()
    p.write_bytes(data[: len(data) // 3])
    return "not a readable HDF5"


def _no_kspace(p: Path) -> str:
    with h5py.File(p, "w") as hf:
        hf.create_dataset("reconstruction_rss", data=np.zeros((1, 8, 8), np.float32))
    return "no 'kspace' dataset"


def _wrong_rank(p: Path) -> str:
    with h5py.File(p, "w") as hf:
        hf.create_dataset("kspace", data=np.zeros((64, 64), np.complex64))
    return "must be (slices, H, W) or (slices, coils, H, W)"


def _real_dtype(p: Path) -> str:
    with h5py.File(p, "w") as hf:
        hf.create_dataset("kspace", data=np.zeros((1, 2, 64, 64), np.float32))
    return "must be complex"


def _nan(p: Path) -> str:
    k, t = make_volume(True, slices=2, seed=6)
    k[1, 0, 3, 3] = np.nan
    write_fastmri(p, k, t, multicoil=True)
    return "NaN/Inf"


def _inf(p: Path) -> str:
    k, t = make_volume(False, slices=1, seed=6)
    k[0, 5, 5] = np.inf
    write_fastmri(p, k, t, multicoil=False)
    return "NaN/Inf"


def _slice_mismatch(p: Path) -> str:
    k, t = make_volume(True, slices=2, seed=7)
    write_fastmri(p, k, t[:1], multicoil=True)
    return "has 1 slices but 'kspace' has 2"


CASES = {
    "non_hdf5": _non_hdf5,
    "truncated": _truncated,
    "no_kspace": _no_kspace,
    "wrong_rank": _wrong_rank,
    "real_dtype": _real_dtype,
    "nan": _nan,
    "inf": _inf,
    "slice_mismatch": _slice_mismatch,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reconstruct_skips_bad_file_and_finishes_the_rest(case, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    _good(inp, "a_good.h5")
    bad = inp / f"b_{case}.h5"
    reason = CASES[case](bad)
    _good(inp, "c_good.h5")
    code = main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a_good.h5", "c_good.h5"]
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and str(bad) in failed[0] and reason in failed[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("case", ["non_hdf5", "no_kspace", "real_dtype", "slice_mismatch"])
def test_index_skips_or_stops_on_bad_files(case, tmp_path):
    _good(tmp_path)
    bad = tmp_path / f"bad_{case}.h5"
    reason = CASES[case](bad)
    with pytest.warns(UserWarning, match=reason.replace("(", r"\(").replace(")", r"\)")):
        vols, skipped = scan_folder(tmp_path)
    assert [v.fname for v in vols] == ["good.h5"] and skipped[0][0] == bad
    with pytest.raises(DataError, match=bad.name):
        scan_folder(tmp_path, strict=True)
    with pytest.raises(DataError, match=bad.name):
        SliceDataset(tmp_path, strict=True)


def test_nan_slice_is_caught_when_read(tmp_path):
    bad = tmp_path / "nan.h5"
    _nan(bad)
    ds = SliceDataset(tmp_path)
    ds[0]
    with pytest.raises(DataError, match=r"nan.h5: 'kspace' contains NaN/Inf in slice 1"):
        ds[1]
    ds.close()


def test_data_check_lists_every_bad_file(tmp_path, capsys):
    _good(tmp_path)
    for case in ("non_hdf5", "nan", "no_kspace"):
        CASES[case](tmp_path / f"x_{case}.h5")
    code = main(["data", "check", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("UNUSABLE") == 3 and "good.h5" in out and "1 usable, 3 unusable" in out


def test_empty_and_missing_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert (
        main(["reconstruct", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o")])
        == 1
    )
    assert "no .h5 files found" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "nope")]) == 1
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(DataError, match="no .h5 files"):
        SliceDataset(tmp_path / "empty")


def test_unsatisfiable_mask_for_width(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    _good(tmp_path / "in")
    code = main(
        [
            "reconstruct",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "o"),
            "--accelerations",
            "8",
            "--center-fractions",
            "0.3",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "good.h5" in err and "exceeds" in err
    assert not (tmp_path / "o" / "good.h5").exists()


def test_unwritable_output_folder(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        target = Path("/proc/mrirecon-cannot-write-here")
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(0o500)
    (tmp_path / "in").mkdir()
    _good(tmp_path / "in")
    code = main(["reconstruct", "--input", str(tmp_path / "in"), "--output", str(target)])
    err = capsys.readouterr().err
    assert code == 1 and "not writable" in err and str(target) in err


def test_inspect_reports_header_and_recon_size(tmp_path):
    info = inspect_file(_good(tmp_path))
    assert info.multicoil and info.num_coils == 4 and info.num_slices == 2
    assert info.header is not None and info.header.recon_size[:2] == (128, 128)
    assert info.recon_size == (128, 128)
    # a test file: no target, recon size from the header
    k, _ = make_volume(False, slices=1)
    p = write_fastmri(
        tmp_path / "t.h5",
        k,
        None,
        multicoil=False,
        recon=(128, 128),
        mask=np.ones(k.shape[-1], bool),
    )
    info = inspect_file(p)
    assert info.target_key is None and info.has_mask and info.recon_size == (128, 128)
    k, _ = make_volume(False, slices=1)
    p = write_fastmri(tmp_path / "nohdr.h5", k, None, multicoil=False, header=False)
    with pytest.raises(DataError, match="recon size is unknown"):
        inspect_file(p)
