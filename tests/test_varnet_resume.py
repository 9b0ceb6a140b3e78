"""The pretrained VarNet's recipe (streamed corpus, gated cascades, both output heads, mix
loss, cosine schedule), killed with SIGKILL mid-run and resumed: equal to the run that was
never stopped, step for step and in its final weights (issue 9: "resume after a kill
continues exactly"; the real run spans several sessions this way)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import torch

from mrirecon.cli import main
from mrirecon.synth.corpus import CorpusConfig, write_corpus
from mrirecon.train.checkpoint import load_checkpoint
from mrirecon.train.config import load_train_config
from mrirecon.train.fit import fit
from tests.train_utils import sigkill_fit, step_losses

EPOCHS, SLICES = 3, 3  # one step per slice (batch 1)
RECIPE = [
    "data.corpus_slices=3", "data.corpus.matrix=[32, 48]", "data.corpus.coils=[2, 4]",
    "data.corpus.singlecoil_prob=0.5", "data.corpus.magnitude_noise_prob=0.5",
    "model.kind=varnet", "model.num_cascades=2", "model.chans=4", "model.pools=2",
    "model.sens_chans=4", "model.sens_pools=2", "model.num_groups=2", "model.sens_num_groups=2",
    "model.gated=true", "model.output_gate=true", "model.output_mix=true", "loss.name=mix",
    "optim.lr=3e-3", "sched.name=cosine", "sched.warmup_steps=1", "run.batch_size=1",
    "run.val_every=1", "run.log_every=1", "run.device=cpu", "run.progress=false",
    "run.tensorboard=false", f"run.epochs={EPOCHS}",
]  # fmt: skip


def _fit_in_child(val_dir: Path, out: Path) -> None:
    torch.set_num_threads(1)
    fit(load_train_config(None, RECIPE), val_dir, out)


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("varnet_corpus_val")
    write_corpus(out, CorpusConfig(slices=2, matrix=(32, 48), coils=(2, 4)), 2, seed=1000)
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork")
def test_varnet_recipe_resumes_exactly_after_sigkill(val_dir, tmp_path):
    ref = tmp_path / "ref"
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(load_train_config(None, RECIPE), val_dir, ref)
    finally:
        torch.set_num_threads(old)
    want = step_losses(ref)
    assert sorted(want) == list(range(1, EPOCHS * SLICES + 1))

    killed = tmp_path / "killed"  # killed in epoch 1: after epoch 0's checkpoint
    code = sigkill_fit(_fit_in_child, (val_dir, killed), killed, at_step=SLICES + 1)
    assert code == -signal.SIGKILL, "the run ended before it could be killed"
    saved = load_checkpoint(killed / "last.pt").epoch
    assert saved < EPOCHS - 1

    assert main(["train", "--resume", str(killed)]) == 0  # the validation root from the run
    got = step_losses(killed)
    later = [s for s in want if s > SLICES * (saved + 1)]
    assert later and all(got[s] == pytest.approx(want[s], rel=1e-5, abs=1e-7) for s in later)
    a, b = load_checkpoint(ref / "last.pt").model, load_checkpoint(killed / "last.pt").model
    assert a.keys() == b.keys() and any(k.endswith("gate") for k in a)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)
