"""reconstruct killed with SIGKILL mid-run, then rerun: nothing lost, nothing redone, no partials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrirecon.cli import main
from mrirecon.data.fastmri_h5 import is_complete
from tests.recon_utils import data_folder, tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _outputs(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.h5")}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_then_resume(tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    names = [f"vol{i:02d}.h5" for i in range(4)]
    data_folder(inp, [(n, True, 3, 40 + i) for i, n in enumerate(names)])
    # A U-Net big enough that each volume takes a noticeable time on a CPU.
    model = {"chans": 16, "num_pool_layers": 4, "num_groups": 8}
    ckpt = tiny_checkpoint(tmp_path / "ckpt.pt", model=model)
    cmd = [sys.executable, "-m", "mrirecon", "reconstruct", "--method", "unet", "--checkpoint",
           str(ckpt), "--input", str(inp), "--output", str(out), "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not (out.is_dir() and _outputs(out)):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no output appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    first = _outputs(out)
    assert 1 <= len(first) < len(names), "the run finished before it could be killed"
    # Whatever a kill leaves behind is never taken for an output.
    assert all(is_complete(out / n) for n in first)
    leftovers = [p.name for p in out.iterdir() if p.name not in first]
    assert all(n.startswith(".") and n.endswith(".tmp") for n in leftovers), leftovers

    assert main(cmd[3:]) == 0
    stdout = capsys.readouterr().out
    assert f"{len(names) - len(first)} written, {len(first)} already complete, 0 failed" in stdout
    final = _outputs(out)
    assert sorted(final) == names
    assert {n: final[n] for n in first} == first  # completed files were not redone
    assert all(is_complete(out / n) for n in names)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp") and p.name not in leftovers]
