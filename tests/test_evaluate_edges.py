"""evaluate: crops, bad predictions and targets, skipped entries, the CSV and the summary."""

from __future__ import annotations

import csv
import statistics

import h5py
import numpy as np
import pytest

from mrirecon.cli import main
from mrirecon.evaluate import (
    VolumeScore,
    evaluate_folders,
    format_summary,
    read_scores_csv,
    summarize,
    write_scores_csv,
)
from mrirecon.io import write_reconstruction
from mrirecon.report.stats import group_stats
from tests.conftest import make_volume, write_fastmri

# A perfect prediction has PSNR inf; skimage warns about the division.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")


def _target(folder, name="v.h5", seed=40, attrs=None):
    folder.mkdir(exist_ok=True)
    k, t = make_volume(True, slices=2, seed=seed)
    write_fastmri(folder / name, k, t, multicoil=True, attrs=attrs)
    return t


@pytest.mark.parametrize("pad", [(0, 0), (3, 5), (4, 1)])
def test_prediction_larger_than_target_is_centre_cropped(tmp_path, pad):
    """A perfect prediction padded around (odd and even margins) scores as perfect."""
    t = _target(tmp_path / "t")
    rng = np.random.default_rng(0)
    ph, pw = pad
    big = rng.random((t.shape[0], t.shape[1] + ph, t.shape[2] + pw)).astype(np.float32) * t.max()
    top, left = ph // 2, pw // 2  # fastMRI's centre crop starts at (size - crop) // 2
    big[:, top : top + t.shape[1], left : left + t.shape[2]] = t
    (tmp_path / "p").mkdir()
    write_reconstruction(tmp_path / "p" / "v.h5", big)
    res = evaluate_folders(tmp_path / "t", tmp_path / "p")
    assert res.ok and len(res.scores) == 1
    s = res.scores[0]
    assert s.nmse == pytest.approx(0.0, abs=1e-12) and s.ssim == pytest.approx(1.0, abs=1e-6)


def test_complex_prediction_and_zero_target_fail_with_one_line_each(tmp_path, capsys):
    t = _target(tmp_path / "t", "a_complex.h5")
    _target(tmp_path / "t", "b_zero.h5", seed=41)
    with h5py.File(tmp_path / "t" / "b_zero.h5", "r+") as hf:
        hf["reconstruction_rss"][...] = 0
    _target(tmp_path / "t", "c_good.h5", seed=42)
    (tmp_path / "p").mkdir()
    with h5py.File(tmp_path / "p" / "a_complex.h5", "w") as hf:
        hf["reconstruction"] = t.astype(np.complex64) * (1 + 1j)
    write_reconstruction(tmp_path / "p" / "b_zero.h5", t)
    with h5py.File(tmp_path / "t" / "c_good.h5", "r") as hf:
        write_reconstruction(tmp_path / "p" / "c_good.h5", hf["reconstruction_rss"][()])
    code = main(
        ["evaluate", "--targets", str(tmp_path / "t"), "--predictions", str(tmp_path / "p")]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2
    assert "a_complex.h5" in failed[0] and "must be real" in failed[0]
    assert str(tmp_path / "t" / "b_zero.h5") in failed[1] and "all zeros" in failed[1]
    assert "NMSE and PSNR are undefined" in failed[1]


def test_evaluate_lists_skipped_entries_once(tmp_path, capsys):
    t = _target(tmp_path / "t")
    (tmp_path / "p").mkdir()
    write_reconstruction(tmp_path / "p" / "v.h5", t)
    (tmp_path / "t" / "folder.h5").mkdir()
    (tmp_path / "p" / "dangling.h5").symlink_to(tmp_path / "nowhere.h5")
    (tmp_path / "p" / "loop.h5").symlink_to(tmp_path / "p" / "loop.h5")
    code = main(
        ["evaluate", "--targets", str(tmp_path / "t"), "--predictions", str(tmp_path / "p")]
    )
    err = capsys.readouterr().err
    assert code == 0
    skipped = [line for line in err.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 3
    assert err.count("folder.h5") == 1 and "not a regular file" in err
    assert err.count("dangling.h5") == 1 and "broken symbolic link" in err
    assert err.count("loop.h5") == 1 and "symbolic link loop" in err


def test_csv_neutralises_formulas_in_text_but_keeps_numbers(tmp_path, capsys):
    formula = '=HYPERLINK("http://evil","x")'
    t = _target(tmp_path / "t", "-v.h5", attrs={"acquisition": formula})
    (tmp_path / "p").mkdir()
    write_reconstruction(tmp_path / "p" / "-v.h5", t * 0.5)
    out_csv = tmp_path / "m.csv"
    args = ["evaluate", "--targets", str(tmp_path / "t"), "--predictions", str(tmp_path / "p")]
    assert main([*args, "--csv", str(out_csv)]) == 0
    with open(out_csv, newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["acquisition"] == "'" + formula and row["file"] == "'-v.h5"
    assert read_scores_csv(out_csv)[0].acquisition == formula
    # numbers stay numbers, also negative ones
    score = VolumeScore("+a.h5", "@m", -4.0, 0.25, -0.5, -0.01, dataset="-d")
    path = write_scores_csv(tmp_path / "n.csv", [score], VolumeScore._fields)
    line = path.read_text().splitlines()[1]
    assert line == "'+a.h5,'@m,-4,0.25,-0.5,-0.01,'-d,"
    assert read_scores_csv(path) == [score]


def test_summary_std_is_the_sample_std():
    ssim = [0.91, 0.8, 0.85, 0.6]
    scores = [
        VolumeScore(f"f{i}.h5", "unet", 4.0, 0.01 * i, 30.0 + i, v) for i, v in enumerate(ssim)
    ]
    (stat_ssim,) = [s["ssim"] for s in group_stats(scores).values()]
    assert stat_ssim.n == 4 and stat_ssim.std == pytest.approx(statistics.stdev(ssim))
    assert stat_ssim.mean == pytest.approx(statistics.mean(ssim))
    ((label, stats),) = summarize(scores)
    assert label == "all" and stats["psnr"].std == pytest.approx(statistics.stdev([30, 31, 32, 33]))
    assert f"+- {statistics.stdev(ssim):<6.4f}" in format_summary(scores)
    (one,) = group_stats(scores[:1]).values()
    assert one["ssim"].std == 0.0
