"""scripts/val_analogs.py: fixed analog volumes, scored with compare, worst volume found."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mrirecon.train.checkpoint import Checkpoint, save_checkpoint
from mrirecon.train.config import train_config_from_dict

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location(
        "val_analogs", REPO / "scripts" / "val_analogs.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


analogs = _load()


def test_analogs_are_fixed_noisy_and_written_once(tmp_path):
    folders = analogs.write_analogs(tmp_path, list(analogs.ANALOGS), 1)
    seeds = [seed for _, seed in analogs.ANALOGS.values()]
    assert len(set(seeds)) == len(seeds)  # each analog its own stream
    for name, folder in folders.items():
        (path,) = folder.glob("*.h5")
        with h5py.File(path) as f:
            target = f["reconstruction_esc" if f["kspace"].ndim == 3 else "reconstruction_rss"][()]
            if name in analogs.CONVERTED:  # no corpus parameters: the benchmark's protocol
                assert f.attrs["acquisition"] == "SIM_FROM_MAGNITUDE"
                assert f["kspace"].shape[-2] == 2 * target.shape[-2]  # oversampled readout
                continue
            params = json.loads(f.attrs["synth_params"])
        assert params["magnitude_noise_rel"] > 0 and (target > 0).all()  # a noise floor
        config = analogs.ANALOGS[name][0]
        if config.magnitude_support_prob in (0.0, 1.0):
            assert ("scanner_support" in params) == (config.magnitude_support_prob == 1.0)
        lo, hi = config.matrix  # the recon matrix: EPI-sized for the small analogs
        assert all(lo <= side <= hi for side in target.shape[-2:]) and params["recon"] == [
            *target.shape[-2:]
        ]
    assert max(analogs.ANALOGS["small"][0].matrix) < 96 <= min(analogs.ANALOGS["lowsnr"][0].matrix)
    stamp = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.h5")}
    again = analogs.write_analogs(tmp_path, list(analogs.ANALOGS), 1)
    assert again == folders and stamp == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.h5")}


def test_scores_each_model_and_names_its_worst_volume(tmp_path, capsys):
    # An untrained residual U-Net: a real checkpoint whose output is near zero-filled.
    cfg = train_config_from_dict(
        {"model": {"chans": 4, "num_pool_layers": 2, "num_groups": 2, "residual": True}}
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "r.pt", Checkpoint(config=cfg, model=cfg.model.build().state_dict()))
    argv = ["--out", str(tmp_path / "a"), "--analogs", "lowsnr", "--count", "2"]
    assert analogs.main([*argv, "--checkpoint", str(tmp_path / "r.pt")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if re.match(r"^\d+x  zero-filled", line)]
    assert "## lowsnr" in out and len(lines) == 2
    with open(tmp_path / "a" / "reports" / "lowsnr" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for line, acc in zip(lines, ("4", "8"), strict=True):
        ssim = {
            (r["method"], r["file"]): float(r["ssim"]) for r in rows if r["acceleration"] == acc
        }
        files = sorted({f for _, f in ssim})
        gains = [ssim[("unet", f)] - ssim[("zero-filled", f)] for f in files]
        worst = files[int(np.argmin(gains))]
        mean = np.mean([ssim[("unet", f)] for f in files])
        zf = ssim[("zero-filled", worst)]
        assert f"unet {mean:.4f} (worst - ZF {min(gains):+.4f} {worst}, ZF {zf:.3f}" in line
    with pytest.raises(SystemExit):
        analogs.main([*argv, "--count", "0"])


def test_converted_analog_is_the_corpus_image_in_the_benchmarks_protocol(tmp_path):
    from mrirecon.data.fastmri_h5 import read_target
    from mrirecon.synth.corpus import write_corpus

    (folder,) = analogs.write_analogs(tmp_path / "a", ["converted"], 2).values()
    config, seed = analogs.ANALOGS["converted"]
    sources = sorted(write_corpus(tmp_path / "src", config, 2, seed=seed))
    settings = analogs.CONVERTED["converted"]
    assert settings[1][1] == 0.0  # the second volume gets no added k-space noise
    for i, source in enumerate(sources):
        want, _ = read_target(source)
        got, attrs = read_target(folder / source.name)
        assert attrs["source"] == source.name and got.shape == want.shape
        coils, noise = settings[i]
        if noise == 0.0:  # the same noisy magnitude image, peak-normalised (the phase drops out)
            np.testing.assert_allclose(got, want / want.max(), atol=2e-5)
        else:  # coil shading and added noise, over the same image
            assert coils > 1 and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.8


def test_fresh_seeds_draw_other_volumes_into_their_own_folder(tmp_path):
    fixed = analogs.write_analogs(tmp_path, ["lowsnr", "small_converted"], 1)
    fresh = analogs.write_analogs(
        tmp_path, ["lowsnr", "small_converted"], 1, {"small_converted": 700101}
    )
    assert fresh["lowsnr"] == fixed["lowsnr"]  # not named: the fixed draw
    folder = fresh["small_converted"]
    assert folder.name == "small_converted_s700101" and folder != fixed["small_converted"]
    (new,) = folder.glob("*.h5")
    (old,) = fixed["small_converted"].glob("*.h5")
    assert "s700101" in new.name and "s700001" in old.name
    with h5py.File(new) as a, h5py.File(old) as b:
        assert a["kspace"].shape != b["kspace"].shape or not np.array_equal(
            a["kspace"], b["kspace"]
        )
    for bad in ("bogus=1", "scanner=x", "scanner"):
        with pytest.raises(SystemExit):
            analogs.main(["--out", str(tmp_path), "--seed", bad])


def test_the_rule_judges_a_candidate_against_a_reference(tmp_path, capsys):
    from mrirecon.evaluate import read_scores_csv, write_scores_csv

    cfg = train_config_from_dict(
        {"model": {"chans": 4, "num_pool_layers": 2, "num_groups": 2, "residual": True}}
    )
    torch.manual_seed(1)
    weights = cfg.model.build().state_dict()
    save_checkpoint(tmp_path / "ref.pt", Checkpoint(config=cfg, model=weights))
    save_checkpoint(
        tmp_path / "cand.pt", Checkpoint(config=cfg, model=weights, val={"val_ssim": 0.6})
    )
    argv = ["--out", str(tmp_path / "a"), "--analogs", "lowsnr", "--count", "2"]
    ref = tmp_path / "ref"
    assert (
        analogs.main([*argv, "--reports", str(ref), "--checkpoint", str(tmp_path / "ref.pt")]) == 0
    )
    rows = read_scores_csv(ref / "lowsnr" / "metrics.csv")
    zf = {(r.acceleration, r.file): r.ssim for r in rows if r.method == "zero-filled"}
    gains = [r.ssim - zf[(r.acceleration, r.file)] for r in rows if r.method != "zero-filled"]
    capsys.readouterr()

    # The same weights against their own reports: only the worst volume can fail them.
    cand = [*argv, "--reports", str(tmp_path / "c"), "--checkpoint", str(tmp_path / "cand.pt")]
    code = analogs.main([*cand, "--against", str(ref)])
    out = capsys.readouterr().out
    passes = min(gains) >= analogs.RULE_WORST
    assert code == (0 if passes else 1) and ("RULE PASS" in out) == passes
    verdict = [line for line in out.splitlines() if line.startswith("RULE")]
    assert "validation SSIM 0.6000" in verdict[-1] and not any(" mean " in v for v in verdict)
    # No recorded validation SSIM fails the rule whatever the analogs say.
    assert (
        analogs.main([*argv, "--checkpoint", str(tmp_path / "ref.pt"), "--against", str(ref)]) == 1
    )
    assert "no validation SSIM recorded" in capsys.readouterr().out

    # judge() on the real report, with the learned method moved: a mean drop, one bad volume.
    metrics = ref / "lowsnr" / "metrics.csv"
    same = analogs.judge(metrics, metrics)
    assert (not same) == passes and all(" worst - ZF " in f for f in same)
    worst = min(
        (r for r in rows if r.method != "zero-filled"),
        key=lambda r: r.ssim - zf[(r.acceleration, r.file)],
    )
    moved = [
        r._replace(ssim=r.ssim - 0.006) if r.method != "zero-filled" and r.acceleration == 8 else r
        for r in rows
    ]
    write_scores_csv(tmp_path / "drop.csv", moved, list(rows[0]._fields))
    fails = analogs.judge(tmp_path / "drop.csv", metrics)
    assert any(f.startswith("8x mean") for f in fails) and not any("4x mean" in f for f in fails)
    bad = [r._replace(ssim=zf[(r.acceleration, r.file)] - 0.02) if r is worst else r for r in rows]
    write_scores_csv(tmp_path / "bad.csv", bad, list(rows[0]._fields))
    fails = analogs.judge(tmp_path / "bad.csv", metrics)
    assert f"{worst.acceleration:g}x worst - ZF -0.0200 ({worst.file})" in fails
    # Reports of other volumes cannot be compared.
    other = [r._replace(file="x" + r.file) for r in rows]
    write_scores_csv(tmp_path / "other.csv", other, list(rows[0]._fields))
    with pytest.raises(analogs.DataError, match="not scored on the volumes"):
        analogs.judge(tmp_path / "other.csv", metrics)
    # A report with no learned method, or two, judges nothing: an error, never a pass.
    zf_only = [r for r in rows if r.method == "zero-filled"]
    two = rows + [r._replace(method="varnet") for r in rows if r.method != "zero-filled"]
    for name, table in (("zf.csv", zf_only), ("two.csv", two)):
        write_scores_csv(tmp_path / name, table, list(rows[0]._fields))
        with pytest.raises(analogs.DataError, match="the rule judges exactly one"):
            analogs.judge(tmp_path / name, tmp_path / name)
    with pytest.raises(SystemExit):  # the rule judges one model at a time
        analogs.main([*argv, "--checkpoint", "a.pt", "b.pt", "--against", str(ref)])
