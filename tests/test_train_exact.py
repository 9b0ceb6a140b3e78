"""Training behaviours no loss curve shows: clipping is applied, and resume restores every
random stream (dropout, augmentation, validation, loader workers). Both tests fail
deterministically when the behaviour is removed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mrirecon.train.checkpoint import load_checkpoint
from mrirecon.train.config import load_train_config
from mrirecon.train.fit import fit
from mrirecon.train.logs import read_metrics
from tests.test_train_loop import TINY, write_tiny_data


def _initial_weights(cfg) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.run.seed)  # as fit builds the model
        return {k: v.clone() for k, v in cfg.model.build().state_dict().items()}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("exact_data"))


def test_grad_clip_bounds_the_update_actually_applied(data_root, tmp_path):
    """One plain SGD step (lr 1): the weights move by exactly the clipped gradient norm.

    The logged grad_norm is the pre-clip norm, so this checks the update itself.
    """
    clip = 1e-3
    sets = [*TINY, "run.epochs=1", "data.max_train_slices=4", "sched.name=none"]
    sets += ["sched.warmup_steps=0"]  # the first step at the full lr
    sets += ["optim.name=sgd", "optim.lr=1.0", "optim.momentum=0", f"optim.grad_clip={clip}"]
    cfg = load_train_config(None, sets)
    fit(cfg, data_root, tmp_path / "run")
    steps = read_metrics(tmp_path / "run" / "metrics.jsonl", "step")
    assert len(steps) == 1 and steps[0]["grad_norm"] > 10 * clip  # clipping has work to do
    before = _initial_weights(cfg)
    after = load_checkpoint(tmp_path / "run" / "last.pt").model
    moved = torch.sqrt(sum(((after[k] - before[k]).double() ** 2).sum() for k in before))
    assert moved.item() == pytest.approx(clip, rel=1e-3)


STOCHASTIC = [
    *TINY,
    "sched.name=none",  # constant lr: a 1-epoch run is a prefix of the 2-epoch run
    "model.drop_prob=0.2",
    "augment.enabled=true",
    "augment.vflip_p=0.5",
    "augment.scale_p=0.5",
    "augment.phase_p=0.5",
    "run.val_every=1",
    "data.num_workers=2",
]


def test_resume_restores_every_random_stream(data_root, tmp_path):
    """Stop after epoch 1, resume to epoch 2: equal to the 2-epoch run, loss and weights."""
    full = tmp_path / "full"
    fit(load_train_config(None, [*STOCHASTIC, "run.epochs=2"]), data_root, full)
    split = tmp_path / "split"
    fit(load_train_config(None, [*STOCHASTIC, "run.epochs=1"]), data_root, split)
    stale = split / ".last.pt.k1ll3d.tmp"  # a save killed between write and rename
    stale.write_bytes(b"partial")
    resumed = load_train_config(None, [*STOCHASTIC, "run.epochs=2", "run.snapshot_every=1"])
    fit(resumed, data_root, split, resume=True)

    def losses(run: Path) -> dict[int, float]:
        return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl", "step")}

    want, got = losses(full), losses(split)
    assert not stale.exists()
    assert sorted(want) == sorted(got) == list(range(1, 9))
    assert [got[s] for s in range(5, 9)] == pytest.approx([want[s] for s in range(5, 9)], rel=1e-6)
    a, b = load_checkpoint(full / "last.pt").model, load_checkpoint(split / "last.pt").model
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)
    # Snapshots, switched on at the resume: epoch 1's weights and record, no optimiser.
    assert sorted(p.name for p in split.glob("epoch-*.pt")) == ["epoch-001.pt"]
    assert not list(full.glob("epoch-*.pt"))
    snap, last = load_checkpoint(split / "epoch-001.pt"), load_checkpoint(split / "last.pt")
    assert (snap.epoch, snap.step, snap.val) == (1, 8, last.val) and snap.val
    assert not snap.optimizer and last.optimizer
    for name in last.model:
        assert torch.equal(snap.model[name], last.model[name]), name
