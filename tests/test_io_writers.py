"""Output writers: the Writer protocol, temp-then-rename, stale temp files and a full disk."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mrirecon.errors import ConfigError
from mrirecon.io import (
    TMP_SUFFIX,
    H5Writer,
    NiftiWriter,
    Writer,
    atomic_write,
    make_writer,
    remove_stale_temps,
)
from tests.conftest import make_volume, write_fastmri

RECON = np.random.default_rng(1).random((2, 6, 5)).astype(np.float32)
MASK = np.arange(9) % 2 == 0


def _writers(tmp_path: Path) -> list[Writer]:
    writers: list[Writer] = [make_writer("h5", tmp_path)]
    try:
        writers.append(make_writer("nifti", tmp_path))
    except ConfigError:  # nibabel is an optional extra
        pass
    return writers


def test_writers_name_write_and_read_back_their_settings(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for writer in _writers(tmp_path):
        name = writer.output_name(Path("in/file_1.h5"))
        assert name == {"h5": "file_1.h5", "nifti": "file_1.nii.gz"}[writer.format]
        path = out / name
        assert writer.finished_attrs(path) is None
        attrs = {"method": "zero-filled", "settings": '{"a": 1}', "source_file": "file_1.h5"}
        assert writer.write(path, RECON, attrs, MASK) == path
        got = writer.finished_attrs(path)
        assert got is not None and got["method"] == "zero-filled" and got["settings"] == '{"a": 1}'
        broken = out / writer.output_name(Path("broken.h5"))
        broken.write_bytes(path.read_bytes()[:100])  # truncated: not finished
        assert writer.finished_attrs(broken) is None
        broken.unlink()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        w.output_name(Path("file_1.h5")) for w in _writers(tmp_path)
    )
    with pytest.raises(ConfigError, match="--format: unknown output format 'tiff'"):
        make_writer("tiff", tmp_path)
    assert isinstance(make_writer("h5", tmp_path), H5Writer)


def _half_then_disk_full(self: Path, data: bytes) -> int:
    with open(self, "wb") as fh:
        fh.write(data[: len(data) // 2])
    raise OSError(errno.ENOSPC, "No space left on device")


def test_writer_failing_partway_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    """Temp-then-rename: a write that dies halfway never touches the destination."""
    for writer in _writers(tmp_path):
        path = tmp_path / writer.output_name(Path("vol.h5"))
        fresh = tmp_path / ("new_" + path.name)
        writer.write(path, RECON, {"method": "old"}, MASK)
        before = path.read_bytes()
        with monkeypatch.context() as m:
            m.setattr(Path, "write_bytes", _half_then_disk_full)
            with pytest.raises(OSError, match="No space left"):
                writer.write(path, RECON * 2, {"method": "new"}, MASK)
            with pytest.raises(OSError, match="No space left"):
                writer.write(fresh, RECON, {"method": "new"}, MASK)
        assert path.read_bytes() == before
        assert not fresh.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(TMP_SUFFIX)]


def test_remove_stale_temps_removes_only_unlocked_temp_files_of_ours(tmp_path):
    stale = tmp_path / f".vol.h5.k2j3h4{TMP_SUFFIX}"
    stale.write_bytes(b"half a file")
    keep = [tmp_path / "vol.h5", tmp_path / ".hidden", tmp_path / f"x{TMP_SUFFIX}"]
    for p in keep:
        p.write_bytes(b"x")
    (tmp_path / f".folder{TMP_SUFFIX}").mkdir()
    with atomic_write(tmp_path / "busy.h5") as busy:
        busy.write_bytes(b"in progress")
        # another run's file in progress is locked and kept
        assert remove_stale_temps(tmp_path) == [stale]
        assert busy.exists()
    assert (tmp_path / "busy.h5").read_bytes() == b"in progress"
    assert not stale.exists() and all(p.exists() for p in keep)
    assert (tmp_path / f".folder{TMP_SUFFIX}").is_dir()
    assert remove_stale_temps(tmp_path / "missing") == []


def test_full_disk_is_one_line_per_file_and_a_clean_exit(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for i in range(3):
        k, t = make_volume(True, slices=2, seed=30 + i)
        write_fastmri(inp / f"v{i}.h5", k, t, multicoil=True)

    def small_files() -> None:  # ulimit -f 64 (KiB): every output is larger
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    cmd = [sys.executable, "-m", "mrirecon", "reconstruct", "--input", str(inp), "--output",
           str(out), "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, preexec_fn=small_files, env=env, timeout=300
    )
    assert proc.returncode == 1, proc.stderr
    failed = [line for line in proc.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 3 and all("File too large" in line for line in failed), proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert not [p for p in out.iterdir() if p.suffix == ".h5" or p.name.endswith(TMP_SUFFIX)]


def test_nifti_writer_reports_missing_nibabel_as_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    with pytest.raises(ConfigError, match="needs nibabel"):
        NiftiWriter(tmp_path)
