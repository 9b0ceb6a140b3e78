"""Shipped models (pretrained:NAME), `mrirecon models`, packing, and fastMRI weight import."""

from __future__ import annotations

from pathlib import Path

import fastmri.models as fastmri_models
import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_reconstruction
from mrirecon.data.transforms import normalize
from mrirecon.models.registry import (
    MAX_BYTES,
    PACKAGE_ROOT,
    ROOT_ENV,
    pretrained_path,
    read_card,
    shipped_models,
)
from mrirecon.train.checkpoint import load_checkpoint, load_model
from tests.recon_utils import data_folder, tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]
CARD = """---
summary: A tiny test U-Net.
training_data: Nothing, it is untrained.
---
# {name}

Body of the card.
"""


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scans")
    data_folder(root, [("mc.h5", True, 2, 1), ("sc.h5", False, 1, 2)])
    return root


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry folder with one packed tiny model, ``pretrained:tiny``."""
    root = tmp_path / "registry"
    root.mkdir()
    ckpt = tiny_checkpoint(tmp_path / "run" / "last.pt")
    assert main(["models", "pack", str(ckpt), "--out", str(root / "tiny.pt")]) == 0
    (root / "tiny.md").write_text(CARD.format(name="tiny"))
    monkeypatch.setenv(ROOT_ENV, str(root))
    return root


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_models_lists_what_ships(registry: Path, capsys):
    capsys.readouterr()
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "pretrained:tiny" in out and "MB)" in out
    assert "A tiny test U-Net." in out and "training data: Nothing, it is untrained." in out
    assert main(["models", "list"]) == 0 and capsys.readouterr().out == out


def test_pack_stores_fp16_without_optimiser(registry: Path, tmp_path: Path):
    packed = load_checkpoint(registry / "tiny.pt")
    assert all(v.dtype == torch.float16 for v in packed.model.values() if v.is_floating_point())
    assert packed.optimizer == {} and packed.rng == ()
    full, _ = load_model(tmp_path / "run" / "last.pt")
    small, _ = load_model("pretrained:tiny")
    for (name, a), b in zip(full.state_dict().items(), small.state_dict().values(), strict=True):
        assert b.dtype == torch.float32, name  # cast back on load
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_pretrained_name_reconstructs_like_its_file(registry: Path, scans: Path, tmp_path: Path):
    common = ["--input", str(scans), "--accelerations", "4", "--no-progress"]
    assert main(["reconstruct", "--method", "unet", "--checkpoint", "pretrained:tiny",
                 "--output", str(tmp_path / "a"), *common]) == 0  # fmt: skip
    assert main(["reconstruct", "--method", "unet", "--checkpoint", str(registry / "tiny.pt"),
                 "--output", str(tmp_path / "b"), *common]) == 0  # fmt: skip
    for name in ("mc.h5", "sc.h5"):
        a = read_reconstruction(tmp_path / "a" / name)
        np.testing.assert_array_equal(a, read_reconstruction(tmp_path / "b" / name))
    assert pretrained_path("pretrained:tiny") == registry / "tiny.pt"


def test_compare_accepts_pretrained(registry: Path, scans: Path, tmp_path: Path, capsys):
    args = ["compare", "--data", str(scans), "--out", str(tmp_path / "cmp"), "--methods",
            "zero-filled", "unet", "--checkpoint", "pretrained:tiny", "--accelerations", "4",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "cmp" / "metrics.csv").is_file()


@pytest.mark.parametrize(
    "damage, needles",
    [
        ("unknown", ("pretrained:nope", "no such shipped model", "pretrained:tiny")),
        ("missing", ("pretrained:tiny", "missing from this installation")),
        ("corrupt", ("tiny.pt", "not a readable checkpoint")),
        ("card", ("tiny.md", "front matter")),
    ],
)
def test_bad_shipped_models_are_one_line(registry, scans, tmp_path, capsys, damage, needles):
    name = "pretrained:nope" if damage == "unknown" else "pretrained:tiny"
    if damage == "missing":
        (registry / "tiny.pt").unlink()
    elif damage == "corrupt":
        (registry / "tiny.pt").write_bytes((registry / "tiny.pt").read_bytes()[:300])
    elif damage == "card":
        (registry / "tiny.md").write_text("# no front matter\n")
    capsys.readouterr()
    args = ["reconstruct", "--method", "unet", "--checkpoint", name, "--input", str(scans),
            "--output", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(args) == 1
    _one_line_error(capsys, *needles)


def test_unknown_name_with_nothing_shipped(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "empty"))
    assert main(["models"]) == 0
    assert "no models ship" in capsys.readouterr().out
    out = tmp_path / "o"
    assert main(["models", "pack", "pretrained:x", "--out", str(out)]) == 1
    _one_line_error(capsys, "pretrained:x", "shipped: none")
    assert main(["models", "pack", "pretrained:../x", "--out", str(out)]) == 1
    _one_line_error(capsys, "pretrained:../x", "no such shipped model")


def test_every_shipped_model_has_card_weights_and_fits():
    """What ships in the package: weights <= 25 MB that load, and the docs card copy."""
    for model in shipped_models(PACKAGE_ROOT):
        assert model.size_bytes is not None and model.size_bytes <= MAX_BYTES, model.name
        load_model(model.weights)
        doc = REPO / "docs" / "model_cards" / f"{model.name}.md"
        assert doc.read_text() == model.card.path.read_text(), (
            f"{doc} differs from the shipped copy"
        )
    assert read_card(REPO / "docs" / "model_cards" / "TEMPLATE.md").summary


def fastmri_state_dict(path: Path, chans: int = 8, pools: int = 3, in_out: int = 1) -> Path:
    torch.manual_seed(5)
    net = fastmri_models.Unet(in_chans=in_out, out_chans=in_out, chans=chans,
                              num_pool_layers=pools, drop_prob=0.0)  # fmt: skip
    for p in net.parameters():  # a non-trivial net (fastMRI initialises biases at zero)
        p.data.add_(0.05 * torch.randn_like(p))
    torch.save(net.state_dict(), path)
    return path


def test_import_fastmri_reconstructs_like_fastmri(scans: Path, tmp_path: Path, capsys):
    sd = fastmri_state_dict(tmp_path / "fastmri_unet.pt")
    ckpt = tmp_path / "imported" / "fastmri.pt"
    assert main(["models", "import-fastmri", str(sd), "--out", str(ckpt)]) == 0
    assert "chans 8, 3 pools, 1->1 channels, norm instance" in capsys.readouterr().out
    cfg = load_checkpoint(ckpt).config.model
    assert (cfg.chans, cfg.num_pool_layers, cfg.norm, cfg.residual) == (8, 3, "instance", False)

    common = ["--input", str(scans), "--accelerations", "4", "--no-progress"]
    assert (
        main(["reconstruct", "--method", "zero-filled", "--output", str(tmp_path / "zf"), *common])
        == 0
    )
    assert main(["reconstruct", "--method", "unet", "--checkpoint", str(ckpt),
                 "--output", str(tmp_path / "unet"), *common]) == 0  # fmt: skip
    ref = fastmri_models.Unet(in_chans=1, out_chans=1, chans=8, num_pool_layers=3).eval()
    ref.load_state_dict(torch.load(sd, weights_only=True))
    for name in ("mc.h5", "sc.h5"):
        zf = torch.from_numpy(read_reconstruction(tmp_path / "zf" / name))
        mean = zf.mean(dim=(-2, -1), keepdim=True)
        std = zf.std(dim=(-2, -1), keepdim=True)
        with torch.no_grad():
            expected = ref(normalize(zf, mean, std).unsqueeze(1))[:, 0]
        ours = (torch.from_numpy(read_reconstruction(tmp_path / "unet" / name)) - mean) / std
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "make, needles",
    [
        (lambda p: p.write_bytes(b"not a zip"), ("sd.pt", "not a readable state_dict")),
        (lambda p: torch.save({"a": torch.zeros(2)}, p), ("sd.pt", "not a fastmri.models.Unet")),
        (lambda p: torch.save([1, 2], p), ("sd.pt", "expected a fastmri.models.Unet state_dict")),
        (lambda p: fastmri_state_dict(p, in_out=2), ("sd.pt", "1 channel in and out")),
    ],
)
def test_import_fastmri_bad_input(tmp_path: Path, capsys, make, needles):
    make(tmp_path / "sd.pt")
    capsys.readouterr()
    assert (
        main(["models", "import-fastmri", str(tmp_path / "sd.pt"), "--out", str(tmp_path / "c.pt")])
        == 1
    )
    _one_line_error(capsys, *needles)
    assert not (tmp_path / "c.pt").exists()


def test_import_fastmri_accepts_lightning_prefix(tmp_path: Path):
    sd = torch.load(fastmri_state_dict(tmp_path / "plain.pt"), weights_only=True)
    torch.save({"state_dict": {f"unet.{k}": v for k, v in sd.items()}}, tmp_path / "pl.pt")
    assert (
        main(["models", "import-fastmri", str(tmp_path / "pl.pt"), "--out", str(tmp_path / "c.pt")])
        == 0
    )
    model, _ = load_model(tmp_path / "c.pt")
    for name, value in sd.items():
        torch.testing.assert_close(model.state_dict()[name], value)
