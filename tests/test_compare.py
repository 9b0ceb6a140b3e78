"""mrirecon compare end to end through the CLI: every artefact, paired masks, resume."""

from __future__ import annotations

import base64
import csv
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from mrirecon.cli import main
from mrirecon.evaluate import evaluate_folders
from tests.recon_utils import data_folder, tiny_checkpoint

METHODS = ("zero-filled", "cs", "unet")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    data_folder(root / "synth", [("s_mc.h5", True, 1, 11), ("s_sc.h5", False, 1, 12)])
    data_folder(root / "real", [("r_mc.h5", True, 1, 13)])
    ckpt = tiny_checkpoint(root / "run" / "last.pt")
    args = ["compare", "--data", str(root / "synth"), str(root / "real"), "--checkpoint",
            str(ckpt), "--accelerations", "4", "8", "--out", str(root / "report"),
            "--cs-set", "iterations=3", "--cs-set", "power_iters=4", "--no-progress"]  # fmt: skip
    code = main(args)
    return root, args, code


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_compare_writes_every_artefact(run, capsys):
    root, _, code = run
    assert code == 0
    rep = root / "report"
    for name in ("metrics.csv", "summary.md", "report.html", "compare.json",
                 "figures/panel_4x.png", "figures/panel_8x.png", "figures/box_ssim.png",
                 "figures/box_psnr.png"):  # fmt: skip
        assert (rep / name).is_file() and (rep / name).stat().st_size > 0, name
    for png in (rep / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (rep / "summary.md").read_text()
    assert "U-Net − CS (l1-wavelet)" in md and "CS (l1-wavelet) − Zero-filled" in md
    assert "Mean ± std" in md and "Wilcoxon" in md
    assert not list(rep.rglob("*.tmp"))


def test_html_references_only_existing_files(run):
    rep = run[0] / "report"
    html = (rep / "report.html").read_text()
    links = _links(html)
    local = [x for x in links if not x.startswith("data:")]
    assert local and not [x for x in links if x.startswith(("http:", "https:", "//"))]
    for ref in local:
        assert (rep / ref).is_file(), ref
    images = [x for x in links if x.startswith("data:image/png;base64,")]
    assert len(images) == 4
    for uri in images:
        assert base64.b64decode(uri.split(",", 1)[1])[:4] == b"\x89PNG"


def test_metrics_table_matches_evaluate_and_masks_are_paired(run):
    root, _, _ = run
    rep = root / "report"
    with open(rep / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["file", "method", "acceleration", "nmse", "psnr", "ssim"]
    assert len(rows) == 3 * len(METHODS) * 2
    keys = {(r["file"], r["method"], float(r["acceleration"])) for r in rows}
    assert len(keys) == len(rows)
    for method in METHODS:
        for acc in (4, 8):
            pred = rep / "recon" / method / f"{acc}x"
            for ds in ("synth", "real"):
                res = evaluate_folders(
                    root / ds, pred, files=[p.name for p in (root / ds).iterdir()]
                )
                for s in res.scores:
                    (row,) = [r for r in rows if r["file"] == s.file and r["method"] == method
                              and float(r["acceleration"]) == acc]  # fmt: skip
                    assert float(row["ssim"]) == pytest.approx(s.ssim, rel=1e-6)
                    assert float(row["psnr"]) == pytest.approx(s.psnr, rel=1e-6)
                    assert row["dataset"] == ds
    for name in ("s_mc.h5", "s_sc.h5", "r_mc.h5"):
        masks = {}
        for acc in (4, 8):
            per_method = []
            for method in METHODS:
                with h5py.File(rep / "recon" / method / f"{acc}x" / name) as hf:
                    per_method.append(hf["mask"][()])
                    assert hf.attrs["acceleration"] == acc
            assert all(np.array_equal(per_method[0], m) for m in per_method[1:])
            masks[acc] = per_method[0]
        assert masks[4].sum() > masks[8].sum()


def test_rerun_reuses_outputs_and_refuses_other_settings(run, capsys):
    root, args, _ = run
    recon = sorted((root / "report" / "recon").rglob("*.h5"))
    before = {p: p.stat().st_mtime_ns for p in recon}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in recon} == before
    capsys.readouterr()
    assert main([*args, "--seed", "3"]) == 1
    err = capsys.readouterr().err
    assert "different" in err and "seed" in err and "--overwrite" in err


def test_compare_options_are_checked(tmp_path, capsys):
    data_folder(tmp_path / "d", [("a.h5", True, 1, 1)])
    base = ["compare", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r")]
    assert main(base) == 1
    assert "needs --checkpoint" in capsys.readouterr().err
    assert main([*base, "--methods", "zero-filled", "magic"]) == 1
    assert "unknown method 'magic'" in capsys.readouterr().err
    assert main([*base, "--methods", "zero-filled", "--accelerations", "4", "8", "12",
                 "--center-fractions", "0.08", "0.04"]) == 1  # fmt: skip
    assert "centre fractions" in capsys.readouterr().err


def test_compare_single_volume_states_na(tmp_path, capsys):
    data_folder(tmp_path / "d", [("only.h5", True, 1, 5)])
    code = main(["compare", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
                 "--methods", "zero-filled", "unet", "--checkpoint",
                 str(tiny_checkpoint(tmp_path / "c.pt")), "--accelerations", "4",
                 "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    md = (tmp_path / "r" / "summary.md").read_text()
    assert "U-Net − Zero-filled" in md and "n/a (n=1 < 2)" in md
    assert "n/a (n=1 < 2)" in out and str(tmp_path / "r" / "report.html") in out
    html = (tmp_path / "r" / "report.html").read_text()
    for ref in _links(html):
        assert ref.startswith("data:") or (tmp_path / "r" / ref).is_file()
    assert Path(tmp_path / "r" / "figures" / "panel_4x.png").is_file()


def test_adding_a_method_to_a_finished_comparison(tmp_path):
    data_folder(tmp_path / "d", [("a.h5", True, 1, 6), ("b.h5", False, 1, 7)])
    base = ["compare", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
            "--accelerations", "4", "--no-progress"]  # fmt: skip
    assert main([*base, "--methods", "zero-filled"]) == 0
    zf = tmp_path / "r" / "recon" / "zero-filled" / "4x" / "a.h5"
    before = zf.stat().st_mtime_ns
    ckpt = str(tiny_checkpoint(tmp_path / "c.pt"))
    assert main([*base, "--methods", "zero-filled", "unet", "--checkpoint", ckpt]) == 0
    assert zf.stat().st_mtime_ns == before
    with open(tmp_path / "r" / "metrics.csv", newline="") as fh:
        assert {r["method"] for r in csv.DictReader(fh)} == {"zero-filled", "unet"}
    other = str(tiny_checkpoint(tmp_path / "c2.pt", seed=1))
    assert main([*base, "--methods", "zero-filled", "unet", "--checkpoint", other]) == 1
