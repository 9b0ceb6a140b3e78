"""The shipped generalist models: listed, loadable by name, their cards' numbers reproducible."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
from mrirecon.methods import CheckpointSpec, UnetSpec, VarNetSpec, ZeroFilledSpec, with_noise_floor
from mrirecon.models.registry import shipped_models
from mrirecon.synth.volumes import DemoLayout
from tests.recon_utils import data_folder, tiny_checkpoint
from tests.test_generalisation import bench

REPO = Path(__file__).resolve().parents[1]


class Shipped(NamedTuple):
    """A shipped model and how its card's per-scan table was made."""

    name: str
    spec: type[CheckpointSpec]
    column: str  # the card table's SSIM column of the model
    floor: bool  # the table is like for like (every column but ZF with the noise floor)


SHIPPED = (
    Shipped("unet-generalist", UnetSpec, "U-Net SSIM", False),
    Shipped("varnet-generalist", VarNetSpec, "E2E-VarNet SSIM", True),
)
IDS = [s.name for s in SHIPPED]


def _card(name: str) -> Path:
    return REPO / "docs" / "model_cards" / f"{name}.md"


def _card_row(model: Shipped, scan: str, accel: str) -> tuple[float, float]:
    """(ZF SSIM, model SSIM) of one row of the card's first per-scan table."""
    header: list[str] = []
    for line in _card(model.name).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["scan", "accel"] and not header:
            header = cells
        elif header and cells[:2] == [scan, accel]:
            return float(cells[header.index("ZF SSIM")]), float(cells[header.index(model.column)])
    raise AssertionError(f"{_card(model.name)}: no row for {scan} {accel}")


@pytest.mark.parametrize("model", SHIPPED, ids=IDS)
def test_generalist_ships_with_its_card(model, capsys):
    (shipped,) = [m for m in shipped_models() if m.name == model.name]
    assert shipped.weights.is_file() and shipped.weights.stat().st_size <= 25 * 2**20
    assert main(["models"]) == 0 and model.name in capsys.readouterr().out
    card = _card(model.name).read_text()
    assert card == (shipped.weights.parent / f"{model.name}.md").read_text()
    assert re.search(r"do no harm", card, re.IGNORECASE) and "FILL" not in card


@pytest.mark.parametrize("model", SHIPPED, ids=IDS)
def test_card_numbers_are_reproduced_by_the_benchmark_code(model, tmp_path):
    scans = tmp_path / "scans"
    bench.build_scans(scans, ["tugraz_t2"], None)
    specs = with_noise_floor(
        [ZeroFilledSpec(), model.spec(Path(f"pretrained:{model.name}"))], model.floor
    )
    methods = [bench.Method("zf", "ZF", specs[0]), bench.Method("gen", "gen", specs[1])]
    got = bench.score(scans, tmp_path / "recon", methods, [4.0], "cpu")
    zf, gen = _card_row(model, "tugraz_t2", "4x")
    assert round(got[("zf", 4.0, "tugraz_t2")].ssim, 4) == zf
    assert round(got[("gen", 4.0, "tugraz_t2")].ssim, 4) == gen


@pytest.mark.parametrize("model", SHIPPED, ids=IDS)
def test_reconstruct_by_name_through_the_cli(model, tmp_path):
    data_folder(tmp_path / "in", [("a.h5", True, 1, 3)])
    out = tmp_path / "out"
    assert main(["reconstruct", "--checkpoint", f"pretrained:{model.name}", "--input",
                 str(tmp_path / "in"), "--output", str(out), "--no-progress"]) == 0  # fmt: skip
    assert np.isfinite(read_reconstruction(out / "a.h5")).all()
    assert read_attrs(out / "a.h5")["method"] == model.spec.kind


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
