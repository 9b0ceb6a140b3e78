"""reconstruct --method zero-filled and evaluate, against fastMRI's own code."""

import h5py
import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
from tests.conftest import make_volume, write_fastmri


def _fastmri_zero_filled(path, multicoil, cfs, accs):
    fm = pytest.importorskip("fastmri")
    from fastmri.data import transforms as T
    from fastmri.data.subsample import RandomMaskFunc

    mask_func = RandomMaskFunc(list(cfs), list(accs))
    with h5py.File(path) as hf:
        kspace = hf["kspace"][()]
        key = "reconstruction_rss" if multicoil else "reconstruction_esc"
        crop = hf[key].shape[-2:]
    out = []
    for sl in kspace:
        masked, _, _ = T.apply_mask(T.to_tensor(sl), mask_func, seed=tuple(map(ord, path.name)))
        img = fm.complex_abs(T.complex_center_crop(fm.ifft2c(masked), crop))
        out.append(fm.rss(img) if multicoil else img)
    return torch.stack(out).numpy()


@pytest.mark.parametrize("multicoil", [True, False])
@pytest.mark.parametrize("acc,cf", [(4, 0.08), (8, 0.04)])
def test_zero_filled_equals_fastmri(tmp_path, multicoil, acc, cf):
    inp = tmp_path / "in"
    inp.mkdir()
    k, t = make_volume(multicoil, slices=2, seed=3)
    path = write_fastmri(inp / "file1000123.h5", k, t, multicoil=multicoil)
    code = main(
        [
            "reconstruct",
            "--input",
            str(inp),
            "--output",
            str(tmp_path / "out"),
            "--accelerations",
            str(acc),
            "--center-fractions",
            str(cf),
            "--no-progress",
        ]
    )
    assert code == 0
    ours = read_reconstruction(tmp_path / "out" / path.name)
    ref = _fastmri_zero_filled(path, multicoil, [cf], [acc])
    assert ours.shape == ref.shape == (2, 128, 128) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())
    attrs = read_attrs(tmp_path / "out" / path.name)
    assert attrs["method"] == "zero-filled" and attrs["acceleration"] == acc
    assert attrs["center_fraction"] == cf and attrs["mask_type"] == "random"
    with h5py.File(tmp_path / "out" / path.name) as hf:
        assert hf["mask"].shape == (k.shape[-1],) and hf["mask"][()].sum() > 0


def test_evaluate_equals_fastmri_and_resume_skips(tmp_path, capsys):
    ev = pytest.importorskip("fastmri.evaluate")
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(3):
        k, t = make_volume(True, slices=2, seed=10 + i)
        write_fastmri(inp / f"vol{i}.h5", k, t, multicoil=True)
    out = tmp_path / "out"
    assert main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
    assert "0 written, 3 already complete" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes

    csv_path = tmp_path / "m.csv"
    assert (
        main(["evaluate", "--targets", str(inp), "--predictions", str(out), "--csv", str(csv_path)])
        == 0
    )
    rows = [line.split(",") for line in csv_path.read_text().splitlines()[1:]]
    for row in rows:
        with h5py.File(inp / row[0]) as ht, h5py.File(out / row[0]) as hp:
            gt, pred = ht["reconstruction_rss"][()], hp["reconstruction"][()]
        assert float(row[3]) == pytest.approx(float(ev.nmse(gt, pred)), abs=1e-6)
        assert float(row[4]) == pytest.approx(float(ev.psnr(gt, pred)), abs=1e-6)
        assert float(row[5]) == pytest.approx(np.asarray(ev.ssim(gt, pred)).item(), abs=1e-6)


def test_evaluate_reports_missing_extra_and_mismatch(tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    for i in range(3):
        k, t = make_volume(True, slices=1, seed=20 + i)
        write_fastmri(inp / f"v{i}.h5", k, t, multicoil=True)
    assert main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
    (out / "v0.h5").unlink()
    with h5py.File(out / "v1.h5", "r+") as hf:
        del hf["reconstruction"]
        hf["reconstruction"] = np.zeros((1, 64, 64), np.float32)
    with h5py.File(out / "stray.h5", "w") as hf:
        hf["reconstruction"] = np.zeros((1, 128, 128), np.float32)
    code = main(["evaluate", "--targets", str(inp), "--predictions", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "MISSING prediction" in err and "v0.h5" in err
    assert "EXTRA" in err and "stray.h5" in err
    assert "FAILED v1.h5" in err and "does not cover" in err


def test_progress_bar_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    """Without --no-progress: a bar on a terminal, none in a log file (pytest's captured
    stderr is not a terminal), where every redraw would land as text."""
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(2):
        k, t = make_volume(False, slices=1, seed=i)
        write_fastmri(inp / f"v{i}.h5", k, t, multicoil=False)
    argv = ["reconstruct", "--input", str(inp), "--accelerations", "4"]
    assert main([*argv, "--output", str(tmp_path / "a")]) == 0
    assert "vol/s" not in capsys.readouterr().err
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert main([*argv, "--output", str(tmp_path / "b")]) == 0
    assert "vol/s" in capsys.readouterr().err
