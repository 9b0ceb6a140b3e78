"""The shipped generalist U-Net: listed, loadable by name, its card's numbers reproducible."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
from mrirecon.methods import UnetSpec, ZeroFilledSpec
from mrirecon.models.registry import shipped_models
from mrirecon.synth.volumes import DemoLayout
from tests.recon_utils import data_folder, tiny_checkpoint
from tests.test_generalisation import bench

REPO = Path(__file__).resolve().parents[1]
NAME = "unet-generalist"
CARD = REPO / "docs" / "model_cards" / f"{NAME}.md"


def _card_row(scan: str, accel: str) -> tuple[float, float]:
    """(ZF SSIM, generalist SSIM) of one row of the card's per-scan table."""
    for line in CARD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == scan and cells[1] == accel:
            return float(cells[2]), float(cells[4])
    raise AssertionError(f"{CARD}: no row for {scan} {accel}")


def test_generalist_ships_with_its_card(capsys):
    (model,) = [m for m in shipped_models() if m.name == NAME]
    assert model.weights.is_file() and model.weights.stat().st_size <= 25 * 2**20
    assert main(["models"]) == 0 and NAME in capsys.readouterr().out
    assert CARD.read_text() == (model.weights.parent / f"{NAME}.md").read_text()
    assert re.search(r"do no harm", CARD.read_text(), re.IGNORECASE)


def test_card_numbers_are_reproduced_by_the_benchmark_code(tmp_path):
    scans = tmp_path / "scans"
    bench.build_scans(scans, ["tugraz_t2"], None)
    methods = [bench.Method("zf", "ZF", ZeroFilledSpec()),
               bench.Method("gen", "gen", UnetSpec(Path(f"pretrained:{NAME}")))]  # fmt: skip
    got = bench.score(scans, tmp_path / "recon", methods, [4.0], "cpu")
    zf, gen = _card_row("tugraz_t2", "4x")
    assert round(got[("zf", 4.0, "tugraz_t2")].ssim, 4) == zf
    assert round(got[("gen", 4.0, "tugraz_t2")].ssim, 4) == gen


def test_reconstruct_by_name_through_the_cli(tmp_path):
    data_folder(tmp_path / "in", [("a.h5", True, 1, 3)])
    out = tmp_path / "out"
    assert main(["reconstruct", "--checkpoint", f"pretrained:{NAME}", "--input",
                 str(tmp_path / "in"), "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    assert np.isfinite(read_reconstruction(out / "a.h5")).all()
    assert read_attrs(out / "a.h5")["method"] == "unet"


def test_demo_compares_the_pretrained_and_the_demo_model(tmp_path, capsys):
    from mrirecon import demo

    layout = DemoLayout(tmp_path / "train", tmp_path / "val", tmp_path / "real")
    data_folder(layout.val_dir, [("v.h5", True, 1, 4)])
    data_folder(layout.real_dir, [("r.h5", False, 1, 5)])
    tiny_varnet = {"kind": "varnet", "num_cascades": 1, "chans": 4, "pools": 1, "gated": True,
                   "sens_chans": 4, "sens_pools": 1, "num_groups": 2, "sens_num_groups": 2}  # fmt: skip
    varnet = tiny_checkpoint(tmp_path / "v.pt", model=tiny_varnet)
    result = demo.compare_demo(tmp_path / "out", layout, tiny_checkpoint(tmp_path / "c.pt"),
                               [4.0], "cpu", varnet=varnet)  # fmt: skip
    assert result.ok
    expected = {"zero-filled", "cs", "unet@pretrained", "unet@demo", "varnet@demo"}
    if any(m.name == "varnet-generalist" for m in shipped_models()):
        expected.add("varnet@pretrained")
    assert {r.method for r in result.rows} == expected
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "U-Net (pretrained)" in md and "U-Net (demo)" in md and "E2E-VarNet (demo)" in md
