"""scripts/bench_generalisation.py: its numbers are the package's, its scans are fixed."""

from __future__ import annotations

import gzip
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_layout
from mrirecon.evaluate import read_scores_csv
from mrirecon.methods import UnetSpec, ZeroFilledSpec
from mrirecon.synth.from_magnitude import scan_from_magnitude
from mrirecon.train.checkpoint import Checkpoint, save_checkpoint
from mrirecon.train.config import train_config_from_dict

REPO = Path(__file__).resolve().parents[1]
# Zero-filled SSIM / PSNR of the TU Graz scan at 4x (fastMRI-seeded mask), as the benchmark
# table in docs/benchmarks.md and the model cards record them.
TUGRAZ_ZF_4X = (0.6910, 25.44)


def _load_bench():
    spec = importlib.util.spec_from_file_location(
        "bench_generalisation", REPO / "scripts" / "bench_generalisation.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def test_zero_filled_tugraz_4x_equals_reconstruct_and_evaluate(tmp_path: Path):
    scans = tmp_path / "scans"
    bench.build_scans(scans, ["tugraz_t2"], None)
    zf = bench.Method("zf", "ZF", ZeroFilledSpec())
    got = bench.score(scans, tmp_path / "recon", [zf], [4.0], "cpu")[("zf", 4.0, "tugraz_t2")]

    # the same number through the command line, as a user would get it
    assert main(["reconstruct", "--method", "zero-filled", "--input", str(scans), "--output",
                 str(tmp_path / "cli"), "--accelerations", "4", "--no-progress"]) == 0  # fmt: skip
    assert main(["evaluate", "--targets", str(scans), "--predictions", str(tmp_path / "cli"),
                 "--csv", str(tmp_path / "s.csv")]) == 0  # fmt: skip
    (cli,) = read_scores_csv(tmp_path / "s.csv")
    assert got.ssim == pytest.approx(cli.ssim, abs=1e-6)
    assert got.psnr == pytest.approx(cli.psnr, abs=1e-4)
    assert (round(got.ssim, 4), round(got.psnr, 2)) == TUGRAZ_ZF_4X


def test_simulated_scan_is_deterministic_fastmri_file(tmp_path: Path):
    a = bench.build_scans(tmp_path / "a", ["mpl_s1045"], None)[0]
    b = bench.build_scans(tmp_path / "b", ["mpl_s1045"], None)[0]
    layout = read_layout(a)
    assert layout.kspace.shape == (1, 8, 512, 288) and layout.target_key == "reconstruction_rss"
    assert np.array_equal(
        scan_from_magnitude(bench.matplotlib_s1045(), bench.SIMULATED["mpl_s1045"][1], "x").kspace,
        scan_from_magnitude(bench.matplotlib_s1045(), bench.SIMULATED["mpl_s1045"][1], "x").kspace,
    )
    assert a.read_bytes() == b.read_bytes()


def _fake_dipy_wheel(path: Path) -> Path:
    """A wheel-shaped zip with two of the files the benchmark reads from dipy's wheel."""
    rng = np.random.default_rng(0)
    t1 = np.zeros((64, 64))
    t1[16:48, 20:44] = rng.uniform(0.5, 1.0, (32, 24))
    b0 = (rng.uniform(0, 100, (40, 40, 10, 1))).astype(np.uint16)
    buf = io.BytesIO()
    np.save(buf, t1)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(bench.DIPY_FILES + "t1_coronal_slice.npy", buf.getvalue())
        nii = nibabel.Nifti1Image(b0, np.eye(4)).to_bytes()
        zf.writestr(bench.DIPY_FILES + "S0_10slices.nii.gz", gzip.compress(nii))
    return path


def test_dipy_scans_come_from_the_wheel_file(tmp_path: Path):
    wheel = _fake_dipy_wheel(tmp_path / "dipy-0-py3-none-any.whl")
    assert bench.dipy_wheel(tmp_path) == wheel  # a cached wheel is used, nothing downloaded
    t1, b0 = bench.build_scans(tmp_path / "s", ["dipy_t1_skullstripped", "dipy_b0"], wheel)
    t1_layout, b0_layout = read_layout(t1), read_layout(b0)
    assert t1_layout.kspace.shape == (1, 128, 80) and t1_layout.target_key == "reconstruction_esc"
    assert b0_layout.kspace.shape == (3, 4, 80, 56)
    with pytest.raises(FileNotFoundError, match="dipy wheel"):
        bench.build_scans(tmp_path / "t", ["dipy_b0"], None)


def test_untrained_residual_model_does_no_harm_in_the_table(tmp_path: Path):
    """A U-Net column: an untrained residual net scores as zero-filled (gain 0)."""
    cfg = train_config_from_dict(
        {"model": {"chans": 4, "num_pool_layers": 2, "num_groups": 2, "residual": True}}
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "r.pt", Checkpoint(config=cfg, model=cfg.model.build().state_dict()))
    scans = tmp_path / "scans"
    names = ["tugraz_t2", "twix_phantom"]
    bench.build_scans(scans, names, None)
    methods = [
        bench.Method("zf", "ZF", ZeroFilledSpec()),
        bench.Method("model", "U-Net", UnetSpec(tmp_path / "r.pt")),
    ]
    results = bench.score(scans, tmp_path / "recon", methods, [4.0, 8.0], "cpu")
    text = bench.table(results, methods, [4.0, 8.0], names)
    for acc in (4.0, 8.0):
        for name in names:
            zf, net = results[("zf", acc, name)], results[("model", acc, name)]
            assert net.ssim == pytest.approx(zf.ssim, abs=1e-5)
    assert "| tugraz_t2 | 4x | 0.6910 | 0.6910 | 25.44 | 25.44 |" in text
    assert "| **mean** | 8x |" in text
    assert "do no harm, U-Net 4x: min SSIM - ZF = " in text and "below -0.01" not in text


def test_default_columns_are_every_shipped_model_generalist_first(tmp_path, monkeypatch):
    """Without --checkpoint the table scores every shipped model, each by its own kind."""
    from argparse import Namespace

    from mrirecon.models.registry import ROOT_ENV
    from tests.recon_utils import tiny_checkpoint
    from tests.test_models_cli import CARD

    root = tmp_path / "registry"
    tiny_varnet = {"kind": "varnet", "num_cascades": 1, "chans": 4, "pools": 1,
                   "sens_chans": 4, "sens_pools": 1, "num_groups": 2, "sens_num_groups": 2}  # fmt: skip
    for name, model in (("a-varnet", tiny_varnet), (bench.GENERALIST, None)):
        tiny_checkpoint(root / f"{name}.pt", model=model)
        (root / f"{name}.md").write_text(CARD.format(name=name))
    monkeypatch.setenv(ROOT_ENV, str(root))
    args = Namespace(checkpoint=[], no_cs=True, demo=None, noise_floor=False)
    methods = bench.methods_from(args)
    assert [(m.key, m.label) for m in methods] == [
        ("zf", "ZF"), ("model", "U-Net"), ("model2", "E2E-VarNet")
    ]  # fmt: skip
    assert [(m.spec.kind, str(m.spec.checkpoint)) for m in methods[1:]] == [
        ("unet", f"pretrained:{bench.GENERALIST}"),
        ("varnet", "pretrained:a-varnet"),
    ]
    # like for like: the floor for every column but ZF, or for none
    for floor in (True, False):
        cols = bench.methods_from(Namespace(**{**vars(args), "no_cs": False, "noise_floor": floor}))
        assert [m.key for m in cols] == ["zf", "cs", "model", "model2"]
        assert cols[1].spec.config.noise_floor is floor
        assert [m.spec.noise_floor for m in cols[2:]] == [floor, floor]
