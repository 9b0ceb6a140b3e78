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
