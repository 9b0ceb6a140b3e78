"""The unet and cs reconstruct methods through the real CLI, and their building blocks."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.dataset import SliceDataset
from mrirecon.data.fastmri_h5 import read_attrs, read_reconstruction
from mrirecon.data.masks import MaskSpec
from mrirecon.data.transforms import UnetTransform
from mrirecon.methods.unet import unet_inference
from mrirecon.metrics import volume_metrics
from mrirecon.reconstruct import ReconJob, reconstruct_folder
from tests.recon_utils import data_folder, tiny_checkpoint


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    data_folder(root / "in", [("mc_a.h5", True, 3, 1), ("sc_b.h5", False, 2, 2)])
    tiny_checkpoint(root / "ckpt" / "last.pt")
    return root


def test_unet_equals_training_transform_and_records_provenance(folder, tmp_path):
    ckpt = folder / "ckpt" / "last.pt"
    out = tmp_path / "out"
    args = ["reconstruct", "--method", "unet", "--checkpoint", str(ckpt), "--input",
            str(folder / "in"), "--output", str(out), "--accelerations", "4",
            "--center-fractions", "0.08", "--no-progress"]  # fmt: skip
    assert main(args) == 0

    from mrirecon.train.checkpoint import checkpoint_hash, load_model

    model, _ = load_model(ckpt)
    ds = SliceDataset(folder / "in", UnetTransform(MaskSpec("random", (0.08,), (4.0,)), "eval"))
    expected: dict[str, dict[int, np.ndarray]] = {}
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            y = model(s.image[None])[0, 0] * s.std + s.mean
            expected.setdefault(s.fname, {})[s.slice_idx] = y.numpy()
    ds.close()
    for name, slices in expected.items():
        ours = read_reconstruction(out / name)
        ref = np.stack([slices[k] for k in sorted(slices)])
        assert ours.shape == ref.shape == (len(slices), 128, 128)
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
        attrs = read_attrs(out / name)
        assert attrs["method"] == "unet" and attrs["acceleration"] == 4.0
        assert attrs["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
        assert attrs["model_hash"] == checkpoint_hash(ckpt)
        assert attrs["autocast"] == "none"


def test_unet_batching_does_not_change_output(folder):
    from mrirecon.train.checkpoint import load_model

    model, _ = load_model(folder / "ckpt" / "last.pt")
    rng = np.random.RandomState(0)
    image = torch.from_numpy(rng.rand(5, 40, 36).astype(np.float32)) * 3e-4
    one = unet_inference(model, image, torch.device("cpu"), batch_size=1)
    many = unet_inference(model, image, torch.device("cpu"), batch_size=3)
    torch.testing.assert_close(one, many, rtol=1e-5, atol=1e-9)
    assert one.shape == image.shape and one.dtype == torch.float32
    with pytest.raises(ValueError, match="batch size"):
        unet_inference(model, image, torch.device("cpu"), batch_size=0)


def test_unet_skips_corrupt_file_and_names_it(folder, tmp_path, capsys):
    inp = tmp_path / "in"
    data_folder(inp, [("a.h5", True, 1, 3), ("c.h5", False, 1, 4)])
    (inp / "b_corrupt.h5").write_bytes((folder / "in" / "mc_a.h5").read_bytes()[:5000])
    code = main(["reconstruct", "--method", "unet", "--checkpoint", str(folder / "ckpt"),
                 "--input", str(inp), "--output", str(tmp_path / "out"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.h5", "c.h5"]
    failed = [ln for ln in err.splitlines() if ln.startswith("FAILED")]
    assert len(failed) == 1 and "b_corrupt.h5" in failed[0] and "not a readable HDF5" in failed[0]


def test_unet_bad_checkpoint_is_one_clear_line(folder, tmp_path, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes((folder / "ckpt" / "last.pt").read_bytes()[:3000])
    base = ["reconstruct", "--method", "unet", "--input", str(folder / "in"),
            "--output", str(tmp_path / "o")]  # fmt: skip
    assert main([*base, "--checkpoint", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken.pt" in err and "Traceback" not in err
    assert main(base) == 1
    assert "--method unet needs --checkpoint" in capsys.readouterr().err


def test_unet_unwritable_output_folder(folder, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["reconstruct", "--method", "unet", "--checkpoint", str(folder / "ckpt"),
                 "--input", str(folder / "in"), "--output", str(blocker / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "not writable" in err and str(blocker / "out") in err


def test_cs_beats_zero_filled_and_records_settings(tmp_path):
    from mrirecon.cs.config import CSConfig

    inp = tmp_path / "in"
    data_folder(inp, [("mc_a.h5", True, 1, 1), ("sc_b.h5", False, 1, 2)])
    zf_out, cs_out = tmp_path / "zf", tmp_path / "cs"
    common = ["--input", str(inp), "--accelerations", "4", "--no-progress"]
    assert main(["reconstruct", "--output", str(zf_out), *common]) == 0
    cfg = tmp_path / "cs.yaml"
    cfg.write_text("cs:\n  iterations: 10\n  lam: null\n")  # the per-acceleration table
    assert main(["reconstruct", "--method", "cs", "--cs-config", str(cfg),
                 "--output", str(cs_out), *common]) == 0  # fmt: skip
    for name in ("mc_a.h5", "sc_b.h5"):
        key = "reconstruction_rss" if name.startswith("mc") else "reconstruction_esc"
        with h5py.File(inp / name) as hf:
            gt = hf[key][()]
        cs, zf = read_reconstruction(cs_out / name), read_reconstruction(zf_out / name)
        assert cs.shape == zf.shape == gt.shape and np.isfinite(cs).all()
        m_cs, m_zf = volume_metrics(gt, cs), volume_metrics(gt, zf)
        assert m_cs.ssim > m_zf.ssim and m_cs.nmse < m_zf.nmse, (name, m_cs, m_zf)
        attrs = read_attrs(cs_out / name)
        assert attrs["method"] == "cs" and attrs["cs_iterations"] == 10
        assert attrs["cs_lambda"] == pytest.approx(CSConfig(lam=None).lam_for(4.0))
        with h5py.File(cs_out / name) as hc, h5py.File(zf_out / name) as hz:
            np.testing.assert_array_equal(hc["mask"][()], hz["mask"][()])


def test_cs_bad_option_is_one_clear_line(tmp_path, capsys):
    cfg = tmp_path / "cs.yaml"
    cfg.write_text("iterashuns: 3\n")
    inp = tmp_path / "in"
    data_folder(inp, [("a.h5", True, 1, 1)])
    code = main(["reconstruct", "--method", "cs", "--cs-config", str(cfg), "--input", str(inp),
                 "--output", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "iterashuns" in err and "cs.yaml" in err


def test_two_ranks_shard_disjoint_and_complete(tmp_path, monkeypatch, capsys):
    inp = tmp_path / "in"
    names = [f"v{i}.h5" for i in range(5)]
    data_folder(inp, [(n, True, 1, 30 + i) for i, n in enumerate(names)])
    written = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        out = tmp_path / f"rank{rank}"
        assert (
            main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
        )
        written[rank] = {p.name for p in out.iterdir()}
    assert written[0] and written[1] and not written[0] & written[1]
    assert written[0] | written[1] == set(names)
    # Both ranks writing into one folder: every file exactly once, all complete.
    shared = tmp_path / "shared"
    reports = [
        reconstruct_folder(ReconJob(inp, shared, rank=r, world_size=2, progress=False))
        for r in (0, 1)
    ]
    done = [p.name for r in reports for p in r.written]
    assert sorted(done) == names and not any(r.skipped for r in reports)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_unet_on_cuda_with_bf16_matches_cpu(folder, tmp_path):
    ckpt = folder / "ckpt" / "last.pt"
    base = ["reconstruct", "--method", "unet", "--checkpoint", str(ckpt), "--input",
            str(folder / "in"), "--no-progress"]  # fmt: skip
    assert main([*base, "--output", str(tmp_path / "cpu")]) == 0
    assert main([*base, "--output", str(tmp_path / "gpu"), "--device", "cuda"]) == 0
    for name in ("mc_a.h5", "sc_b.h5"):
        cpu, gpu = (
            read_reconstruction(tmp_path / "cpu" / name),
            read_reconstruction(tmp_path / "gpu" / name),
        )
        assert np.abs(gpu - cpu).max() <= 0.05 * np.abs(cpu).max()  # bf16 autocast
        assert read_attrs(tmp_path / "gpu" / name)["autocast"] == "bf16"
