"""Training on the streamed corpus: config knob, data split, and a 1-epoch run through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrirecon.errors import ConfigError
from mrirecon.synth.corpus import CorpusConfig, CorpusSliceDataset, write_corpus
from mrirecon.train.config import load_train_config
from mrirecon.train.data import build_datasets, split_data

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = ["data.corpus_slices=3", "data.corpus.matrix=[32, 48]", "data.corpus.coils=[2, 4]"]


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory) -> Path:
    """A held-out corpus split on disk (its own seed), the run's validation folder."""
    out = tmp_path_factory.mktemp("corpus_val")
    write_corpus(out, CorpusConfig(slices=2, matrix=(32, 48), coils=(2, 4)), 2, seed=1000)
    return out


def test_corpus_knob_streams_training_and_data_root_only_validates(val_dir):
    cfg = load_train_config(None, TINY)
    train_vols, val_vols = split_data(cfg, val_dir, None)
    assert train_vols == [] and len(val_vols) == 2
    assert split_data(cfg, None, None) == ([], [])
    train_ds, val_ds = build_datasets(cfg, train_vols, val_vols)
    assert isinstance(train_ds, CorpusSliceDataset) and len(train_ds) == 3
    assert train_ds.seed == cfg.run.seed and val_ds is not None and len(val_ds) == 4
    with pytest.raises(ConfigError, match="--data-root is required"):
        split_data(load_train_config(None), None, None)
    with pytest.raises(ConfigError, match="give the validation folder once"):
        split_data(cfg, val_dir, val_dir.parent)


def test_generalist_config_loads():
    cfg = load_train_config(CONFIGS / "generalist.yaml")
    assert cfg.data.corpus_slices > 0 and cfg.run.batch_size == 1
    assert cfg.model.norm == "group" and cfg.optim.name == "adam"
    assert set(cfg.mask.accelerations) == {4.0, 8.0}
    assert cfg.mask.center_fractions == (0.08, 0.04)


def test_batches_of_varied_sizes_are_refused(val_dir, tmp_path, capsys):
    from mrirecon.cli import main

    args = ["train", "--data-root", str(val_dir), "--out", str(tmp_path / "r")]
    assert main([*args, *_sets(*TINY, "run.batch_size=2", "run.device=cpu")]) == 1
    assert "vary in size" in capsys.readouterr().err


def test_one_epoch_through_the_cli(val_dir, tmp_path, capsys):
    from mrirecon.cli import main

    out = tmp_path / "run"
    tiny_model = ["model.chans=4", "model.num_groups=2", "model.num_pool_layers=2"]
    quick = ["run.epochs=1", "run.device=cpu", "run.progress=false", "run.tensorboard=false"]
    args = ["train", "--config", str(CONFIGS / "generalist.yaml"), "--data-root", str(val_dir)]
    args += ["--out", str(out), *_sets(*TINY, *tiny_model, *quick, "data.num_workers=0")]
    assert main(args) == 0
    text = capsys.readouterr()
    assert "3 training slices, 2 validation volumes" in text.err
    assert (out / "last.pt").is_file() and "val SSIM" in text.out


def test_resume_continues_the_stream_exactly(val_dir, tmp_path):
    import torch

    from mrirecon.cli import main
    from mrirecon.train.checkpoint import load_checkpoint

    tiny = [*TINY, "model.chans=4", "model.num_groups=2", "model.num_pool_layers=2"]
    quick = ["run.device=cpu", "run.progress=false", "run.tensorboard=false", "run.val_every=5"]
    base = ["train", "--data-root", str(val_dir)]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main([*base, "--out", str(straight), *_sets(*tiny, *quick, "run.epochs=2")]) == 0
    assert main([*base, "--out", str(split), *_sets(*tiny, *quick, "run.epochs=1")]) == 0
    assert main(["train", "--resume", str(split), *_sets("run.epochs=2")]) == 0
    a, b = (load_checkpoint(p / "last.pt").model for p in (straight, split))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
