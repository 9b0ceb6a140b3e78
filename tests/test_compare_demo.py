"""mrirecon demo's building blocks: the shipped config, and reuse of data and checkpoints."""

from __future__ import annotations

import json

import pytest

from mrirecon import demo
from mrirecon.train.config import load_train_config
from tests.recon_utils import tiny_checkpoint


def test_demo_config_is_found_and_valid(monkeypatch, tmp_path):
    path = demo.find_demo_config()
    assert path.name == "demo.yaml"
    cfg = load_train_config(path)
    assert cfg.model.in_chans == 1 and cfg.run.epochs >= 1
    varnet = load_train_config(demo.find_demo_config(demo.DEMO_VARNET_CONFIG))
    assert varnet.model.kind == "varnet" and varnet.model.gated and varnet.run.epochs >= 1
    (tmp_path / "demo.yaml").write_text("run:\n  epochs: 1\n")
    monkeypatch.setenv("MRIRECON_CONFIG_DIR", str(tmp_path))
    assert demo.find_demo_config() == tmp_path / "demo.yaml"


def test_demo_reuses_a_finished_checkpoint(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("run:\n  epochs: 1\n")
    last = tiny_checkpoint(tmp_path / "run" / "last.pt")  # epoch 0 of 1: finished
    before = last.stat().st_mtime_ns
    assert demo.train_demo(cfg, "cpu", None, tmp_path / "run", label="VarNet") == last
    assert last.stat().st_mtime_ns == before
    assert "VarNet: reusing finished checkpoint" in capsys.readouterr().out


def test_demo_data_is_reused_only_when_complete(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    for sub in ("train", "val", "real"):
        (root / sub).mkdir(parents=True)
        (root / sub / f"{sub}.h5").write_bytes(b"x")
    marker = root / demo.DATA_MARKER
    import mrirecon

    files = ["real/real.h5", "train/train.h5", "val/val.h5"]
    marker.write_text(json.dumps({"version": mrirecon.__version__, "files": files}))
    layout = demo.demo_data(root)
    assert layout.val_dir == root / "val" and "reusing" in capsys.readouterr().out
    (root / "val" / "val.h5").unlink()  # incomplete: rebuilt
    calls = []
    monkeypatch.setattr("mrirecon.synth.volumes.demo_dataset", lambda r: calls.append(r) or layout)
    demo.demo_data(root)
    assert calls == [root]


def test_demo_refuses_cuda_without_a_gpu(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from mrirecon.cli import main

    assert main(["demo", "--out", str(tmp_path / "d"), "--device", "cuda"]) == 1
    assert "no CUDA device" in capsys.readouterr().err
