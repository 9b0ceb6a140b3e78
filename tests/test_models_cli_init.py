"""`mrirecon train --init CKPT`: fine-tuning starts from the given weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mrirecon.cli import main
from mrirecon.models.registry import ROOT_ENV
from mrirecon.train.checkpoint import load_checkpoint
from tests.recon_utils import data_folder, tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]
MODEL = {"chans": 4, "num_pool_layers": 2, "num_groups": 2}
# One epoch whose optimiser can barely move the weights (Adam steps are about lr in size).
STILL = ["model.chans=4", "model.num_pool_layers=2", "model.num_groups=2", "run.epochs=1",
         "run.batch_size=2", "optim.lr=1e-9", "sched.name=none", "run.progress=false",
         "run.tensorboard=false", "model.drop_prob=0.1"]  # fmt: skip


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("init_data")
    data_folder(root / "train", [("t0.h5", True, 2, 1), ("t1.h5", True, 2, 3)])
    data_folder(root / "val", [("v0.h5", True, 1, 2)])
    return root


def _train(data_root: Path, out: Path, *extra: str) -> int:
    args = ["train", "--config", str(REPO / "configs" / "demo.yaml"), "--data-root",
            str(data_root), "--out", str(out)]  # fmt: skip
    for item in STILL:
        args += ["--set", item]
    return main([*args, *extra])


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_init_starts_from_the_given_weights(data_root: Path, tmp_path: Path):
    init = tiny_checkpoint(tmp_path / "init" / "last.pt", seed=7, model=MODEL)
    given = load_checkpoint(init).model
    assert _train(data_root, tmp_path / "tuned", "--init", str(init.parent)) == 0
    assert _train(data_root, tmp_path / "fresh") == 0
    tuned = load_checkpoint(tmp_path / "tuned" / "last.pt")
    fresh = load_checkpoint(tmp_path / "fresh" / "last.pt")
    assert _max_diff(tuned.model, given) < 1e-6  # the run started from the given weights
    assert _max_diff(fresh.model, given) > 1e-2  # ... which the default start is not
    # a fresh optimiser and epoch counter: one epoch of 2 steps (4 slices, batch 2)
    assert (tuned.epoch, tuned.step) == (0, 2)
    assert {float(s["step"]) for s in tuned.optimizer["state"].values()} == {2.0}
    assert tuned.config.model.drop_prob == 0.1  # the config's own, not the checkpoint's


def test_init_from_pretrained_name(data_root, tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    ckpt = tiny_checkpoint(tmp_path / "run" / "last.pt", seed=8, model=MODEL)
    assert main(["models", "pack", str(ckpt), "--out", str(registry / "small.pt")]) == 0
    (registry / "small.md").write_text("---\nsummary: s\ntraining_data: t\n---\n")
    monkeypatch.setenv(ROOT_ENV, str(registry))
    assert _train(data_root, tmp_path / "tuned", "--init", "pretrained:small") == 0
    tuned = load_checkpoint(tmp_path / "tuned" / "last.pt").model
    assert _max_diff(tuned, load_checkpoint(ckpt).model) < 1e-3  # fp16-stored weights


@pytest.mark.parametrize(
    "model, needles",
    [
        ({**MODEL, "chans": 8, "num_groups": 4}, ("chans 8 (config 4)", "--set model.KEY=VALUE")),
        ({**MODEL, "norm": "instance"}, ("norm 'instance' (config 'group')",)),
        ({**MODEL, "residual": True}, ("residual True (config False)",)),
    ],
)
def test_init_architecture_mismatch_is_one_line(data_root, tmp_path, capsys, model, needles):
    init = tiny_checkpoint(tmp_path / "other.pt", model=model)
    capsys.readouterr()
    assert _train(data_root, tmp_path / "run", "--init", str(init)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"--init {init}" in err
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_init_bad_checkpoints_are_one_line(data_root, tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    for init, needle in (("pretrained:nope", "no such shipped model"),
                         (str(tmp_path / "junk.pt"), "not a readable checkpoint"),
                         (str(tmp_path / "none.pt"), "no such checkpoint file")):  # fmt: skip
        capsys.readouterr()
        assert _train(data_root, tmp_path / "run", "--init", init) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err


def test_init_with_resume_is_refused(data_root, tmp_path, capsys):
    init = tiny_checkpoint(tmp_path / "init.pt", model=MODEL)
    assert _train(data_root, tmp_path / "run") == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "run"), "--init", str(init)]) == 1
    assert "a resumed run continues its own weights" in capsys.readouterr().err


def test_init_with_trainable_prefixes_fine_tunes_only_those(data_root, tmp_path, capsys):
    init = tiny_checkpoint(tmp_path / "init.pt", seed=9, model=MODEL)
    given = load_checkpoint(init).model
    out = tmp_path / "heads"
    moving = ["--set", "optim.lr=1e-2", "--set", "optim.trainable=[up_conv]"]
    assert _train(data_root, out, "--init", str(init), *moving) == 0
    tuned = load_checkpoint(out / "last.pt")
    trained = {k for k in given if k.startswith("up_conv.")}
    assert trained and trained != set(given)
    for name, value in tuned.model.items():
        diff = (value.float() - given[name].float()).abs().max().item()
        if name in trained and name.endswith("weight"):
            assert diff > 1e-4, name  # trained
        elif name not in trained:
            assert diff == 0, name  # frozen, bit for bit
    # Adam holds state for the trained tensors only, and the prefixes are in the config
    assert len(tuned.optimizer["state"]) == len(trained)
    assert tuned.config.optim.trainable == ("up_conv",)
    capsys.readouterr()
    bad = ["--set", "optim.trainable=[up_conv, decoder]"]
    assert _train(data_root, tmp_path / "bad", "--init", str(init), *bad) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "optim.trainable: decoder names no parameter" in err
