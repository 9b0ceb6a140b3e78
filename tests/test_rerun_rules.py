"""Reruns, output folders and options through the real CLI (issue 12 items 1, 2, 5, 6, 7, 12)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import read_attrs
from tests.recon_utils import data_folder, tiny_checkpoint


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture()
def inp(tmp_path: Path) -> Path:
    data_folder(tmp_path / "in", [("a.h5", True, 1, 1), ("b.h5", False, 1, 2)])
    return tmp_path / "in"


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_in_input_folder_is_refused(inp, where, capsys):
    before = _digest(inp)
    out = inp if where == "same" else inp / "recon"
    code = main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and "inside the input folder" in line and str(out) in line
    assert _digest(inp) == before  # no k-space file was touched


def test_compare_out_inside_data_folder_is_refused(inp, capsys):
    code = main(["compare", "--data", str(inp), "--out", str(inp / "report"),
                 "--methods", "zero-filled", "--accelerations", "4", "--no-progress"])  # fmt: skip
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and "inside the input folder" in line
    assert not (inp / "report").exists()


def test_rerun_with_other_settings_is_refused_then_overwrite_redoes(inp, tmp_path, capsys):
    out = tmp_path / "out"
    zf = ["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]
    assert main([*zf, "--accelerations", "4"]) == 0
    assert main([*zf, "--accelerations", "4"]) == 0
    assert "0 written, 2 already complete" in capsys.readouterr().out
    before = _digest(out)
    cs = ["reconstruct", "--method", "cs", "--cs-set", "iterations=2", "--input", str(inp),
          "--output", str(out), "--accelerations", "8", "--center-fractions", "0.04",
          "--no-progress"]  # fmt: skip
    assert main(cs) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "made with different" in line and "method" in line and "mask" in line
    assert "--overwrite" in line
    assert _digest(out) == before  # the zero-filled outputs are kept, not reported as done
    assert main([*cs, "--overwrite"]) == 0
    assert "2 written, 0 already complete" in capsys.readouterr().out
    for name in ("a.h5", "b.h5"):
        attrs = read_attrs(out / name)
        assert attrs["method"] == "cs" and attrs["acceleration"] == 8.0
        settings = json.loads(attrs["settings"])
        assert settings["method"] == "cs" and settings["cs"]["iterations"] == 2
        assert settings["mask"]["accelerations"] == [8.0]
    # Only a CS setting changes: still refused, and the message names it.
    assert main([*cs[:4], "iterations=3", *cs[5:]]) == 1
    assert "cs" in _one_error_line(capsys.readouterr().err)


def test_rerun_with_another_checkpoint_is_refused(inp, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["reconstruct", "--method", "unet", "--input", str(inp), "--output", str(out),
            "--no-progress", "--checkpoint"]  # fmt: skip
    assert main([*base, str(tiny_checkpoint(tmp_path / "c1.pt", seed=0))]) == 0
    assert main([*base, str(tiny_checkpoint(tmp_path / "c2.pt", seed=1))]) == 1
    assert "checkpoint_sha256" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "option",
    [
        ["--accelerations", "nan"],
        ["--accelerations", "0"],
        ["--accelerations", "-4"],
        ["--accelerations", "inf"],
        ["--accelerations", "4", "--center-fractions", "nan"],
        ["--accelerations", "4", "--center-fractions", "0"],
    ],
)
def test_invalid_mask_numbers_are_one_line(inp, tmp_path, option, capsys):
    out = tmp_path / "out"
    code = main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress",
                 *option])  # fmt: skip
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and ("acceleration" in line or "center fraction" in line)
    assert not out.exists() or not list(out.glob("*.h5"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only torch")
@pytest.mark.parametrize("command", ["reconstruct", "compare"])
def test_cuda_device_without_cuda_is_one_line(inp, tmp_path, command, capsys):
    io = ["--input", str(inp), "--output"] if command == "reconstruct" else ["--data", str(inp),
          "--methods", "zero-filled", "--out"]  # fmt: skip
    code = main([command, *io, str(tmp_path / "o"), "--device", "cuda", "--no-progress"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 1 and "--device cuda" in line and "CUDA" in line


def test_compare_survives_hostile_names(tmp_path, capsys):
    folder = tmp_path / "<svg onload=alert(3)>"
    data_folder(folder, [("$\\notacmd{$.h5", True, 1, 3), ("b.h5", False, 1, 4)])
    out = tmp_path / "report"
    code = main(["compare", "--data", str(folder), "--out", str(out), "--methods", "zero-filled",
                 "--accelerations", "4", "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    md = (out / "summary.md").read_text()
    assert "<svg" not in md and "&lt;svg" in md
    assert "<svg" not in (out / "report.html").read_text()
    assert (out / "figures" / "panel_4x.png").is_file()


def test_rerun_removes_leftover_temp_files_of_a_killed_run(inp, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
    leftover = out / ".a.h5.x1y2z3.tmp"  # what a kill between write and rename leaves
    leftover.write_bytes(b"partial")
    (out / "notes.tmp").write_text("not ours: no leading dot")
    assert main(["reconstruct", "--input", str(inp), "--output", str(out), "--no-progress"]) == 0
    assert not leftover.exists() and (out / "notes.tmp").exists()
    assert "0 written, 2 already complete" in capsys.readouterr().out


def test_reconstruct_lists_skipped_entries_once(inp, tmp_path, capsys):
    (inp / "folder.h5").mkdir()
    (inp / "dangling.h5").symlink_to(tmp_path / "missing.h5")
    (inp / "loop.h5").symlink_to(inp / "loop.h5")
    code = main(["reconstruct", "--input", str(inp), "--output", str(tmp_path / "o"),
                 "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and sorted(p.name for p in (tmp_path / "o").glob("*.h5")) == ["a.h5", "b.h5"]
    skipped = [ln for ln in err.splitlines() if ln.startswith("SKIPPED")]
    assert len(skipped) == 3
    for name in ("folder.h5", "dangling.h5", "loop.h5"):
        assert sum(name in ln for ln in skipped) == 1
