"""The typed checkpoint record: plain on disk, validated field by field on load."""

from __future__ import annotations

import pytest
import torch

from mrirecon.errors import CheckpointError
from mrirecon.train.checkpoint import (
    FORMAT,
    Checkpoint,
    RngState,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from mrirecon.train.config import load_train_config, train_config_to_dict

TINY = ["model.chans=4", "model.num_pool_layers=2", "model.num_groups=2"]


def _record(**changes) -> Checkpoint:
    cfg = load_train_config(None, TINY)
    torch.manual_seed(0)
    net = cfg.model.build()
    gen = torch.Generator().manual_seed(5)
    fields = dict(
        config=cfg,
        model=net.state_dict(),
        epoch=2,
        step=12,
        optimizer={"state": {}, "param_groups": []},
        rng=(RngState.capture(gen),),
        best_ssim=0.5,
        world_size=1,
        data_root="/data",
        val_root=None,
        val={"val_ssim": 0.5},
    )
    fields.update(changes)
    return Checkpoint(**fields)


def test_record_round_trips_through_a_plain_weights_only_file(tmp_path):
    rec = _record()
    path = tmp_path / "last.pt"
    save_checkpoint(path, rec)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and isinstance(raw["config"], dict)
    assert raw["config"] == train_config_to_dict(rec.config)
    back = load_checkpoint(path)
    assert (back.epoch, back.step, back.best_ssim, back.world_size) == (2, 12, 0.5, 1)
    assert back.config == rec.config and back.data_root == "/data" and back.val_root is None
    assert back.val == {"val_ssim": 0.5} and back.versions["torch"] == torch.__version__
    assert all(torch.equal(back.model[k], v) for k, v in rec.model.items())
    # the RNG record restores the global stream and the loader's generator
    gen = torch.Generator()
    back.rng[0].restore(gen)
    assert torch.equal(torch.get_rng_state(), rec.rng[0].torch)
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(5).get_state())


def _write_raw(path, **changes):
    raw = _record().to_dict()
    raw.update(changes)
    torch.save(raw, path)
    return path


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"model": [1, 2]}, r"entry 'model' must be a mapping with string keys, got list"),
        ({"model": {"w": 1}}, r"entry 'model' must be a mapping of tensors"),
        ({"config": "x"}, r"entry 'config' must be a mapping with string keys, got str"),
        ({"config": {"optim": {"lr": -1}}}, r"stored config is invalid \(.*optim\.lr must be > 0"),
        ({"epoch": "2"}, r"entry 'epoch' must be an integer >= 0, got str"),
        ({"step": -1}, r"entry 'step' must be an integer >= 0"),
        ({"optimizer": 3}, r"entry 'optimizer' must be a mapping"),
        ({"rng": {"torch": 1}}, r"entry 'rng' must be a list of per-rank RNG states"),
        ({"rng": [{"torch": 1}]}, r"entry 'rng' must be a list of per-rank RNG states"),
        ({"best_ssim": "high"}, r"entry 'best_ssim' must be a number or None"),
        ({"world_size": 0}, r"entry 'world_size' must be an integer >= 1"),
        ({"data_root": 5}, r"entry 'data_root' must be a string or None"),
        ({"val": {"val_ssim": "x"}}, r"entry 'val' must be a mapping of metric numbers"),
    ],
)
def test_wrong_field_types_give_one_line_naming_the_file(tmp_path, changes, match):
    path = _write_raw(tmp_path / "bad.pt", **changes)
    with pytest.raises(CheckpointError, match=r"bad\.pt: .*" + match) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_entries_are_named(tmp_path):
    raw = _record().to_dict()
    del raw["step"]
    torch.save(raw, tmp_path / "nostep.pt")
    with pytest.raises(CheckpointError, match=r"nostep\.pt: checkpoint lacks 'step'"):
        load_checkpoint(tmp_path / "nostep.pt")
    with pytest.raises(CheckpointError, match=r"nostep\.pt: checkpoint lacks 'step'"):
        load_model(tmp_path / "nostep.pt")


def test_bare_model_record_defaults(tmp_path):
    """A record of only config and weights (what reconstruct tests and benches write)."""
    rec = _record()
    save_checkpoint(tmp_path / "m.pt", Checkpoint(config=rec.config, model=rec.model))
    back = load_checkpoint(tmp_path / "m.pt")
    assert (back.epoch, back.step, back.rng, back.best_ssim) == (0, 0, (), None)
    model, cfg = load_model(tmp_path / "m.pt")
    assert cfg == rec.config and not model.training
