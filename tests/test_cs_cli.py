"""``mrirecon cs tune`` end to end on a small fastMRI-format folder."""

from __future__ import annotations

import pytest
import yaml

from mrirecon.cli import main
from mrirecon.cs.config import load_cs_config
from tests.conftest import make_volume, write_fastmri


def test_cs_tune_writes_config(tmp_path, capsys):
    data = tmp_path / "val"
    data.mkdir()
    k, t = make_volume(True, slices=2, seed=3)
    write_fastmri(data / "vol_a.h5", k, t, multicoil=True)
    out = tmp_path / "cs_tuned.yaml"
    argv = ["cs", "tune", "--data", str(data), "--out", str(out), "--accelerations", "4"]
    argv += ["--center-fractions", "0.08", "--lams", "1e-3", "1e-2", "--refine", "1"]
    argv += ["--iterations", "10", "--slices", "1", "--quiet"]
    assert main(argv) == 0
    cfg = load_cs_config(out)
    record = yaml.safe_load(out.read_text())["tuning"]
    scores = record["ssim"][4.0]
    assert len(scores) == 3  # the grid plus one refinement midpoint
    best = max(scores, key=scores.get)
    assert cfg.lam_for(4.0) == pytest.approx(best, rel=1e-3)
    assert cfg.iterations == 10
    assert record["volumes"] == ["vol_a.h5"]
    assert "4x: lambda" in capsys.readouterr().out


def test_cs_tune_needs_targets(tmp_path, capsys):
    data = tmp_path / "test"
    data.mkdir()
    k, _ = make_volume(True, slices=1, seed=4)
    write_fastmri(data / "vol_t.h5", k, None, multicoil=True, recon=(128, 128))
    assert main(["cs", "tune", "--data", str(data), "--out", str(tmp_path / "x.yaml")]) == 1
    assert "no files with targets" in capsys.readouterr().err


def test_shipped_default_config_matches_code_defaults():
    from pathlib import Path

    from mrirecon.cs.config import CSConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "cs_default.yaml"
    if not path.exists():
        pytest.skip("configs/ not present (installed package)")
    assert load_cs_config(path) == CSConfig()
