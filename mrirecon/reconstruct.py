"""Batch reconstruction of a folder: one output file per input, isolated per-file failures.

The loop streams volume by volume (memory bounded by one volume), skips outputs that
are already complete (resume), writes each output atomically, and records what went
wrong with each bad file without stopping the others. Methods plug in through
:data:`METHODS`: a method maps one volume's k-space and mask to a magnitude volume.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from tqdm import tqdm

from mrirecon import __version__
from mrirecon.data.dataset import (
    DataError,
    VolumeInfo,
    inspect_file,
    list_h5,
    read_volume,
    recon_crop,
)
from mrirecon.data.masks import Mask, MaskSpec, seeded_file_rng
from mrirecon.data.transforms import select_mask, zero_filled
from mrirecon.io import check_writable, is_complete, write_reconstruction

__all__ = [
    "Volume",
    "ReconMethod",
    "METHODS",
    "register_method",
    "ReconJob",
    "ReconReport",
    "reconstruct_folder",
    "volume_mask",
    "shard",
]


class Volume(NamedTuple):
    """One volume ready to reconstruct.

    Attributes:
        info: the file's description.
        kspace: complex64 tensor (S, C, H, W), already masked.
        mask: bool tensor (W,), the columns used.
        crop: (h, w) output size.
        mask_info: how the mask was made.
    """

    info: VolumeInfo
    kspace: torch.Tensor
    mask: torch.Tensor
    crop: tuple[int, int]
    mask_info: Mask


class ReconMethod(Protocol):
    """A reconstruction method: one masked volume in, (S, h, w) float32 magnitude out."""

    name: str

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray: ...

    def provenance(self) -> dict[str, Any]: ...


class ZeroFilled:
    """Inverse FFT of the zero-filled k-space, cropped; magnitude (RSS for multi-coil)."""

    name = "zero-filled"

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        k = volume.kspace.to(device)
        out = zero_filled(k, volume.mask.to(device), volume.crop, volume.info.multicoil)
        return out.cpu().numpy().astype(np.float32)

    def provenance(self) -> dict[str, Any]:
        return {}


# Factories: name -> callable(options) returning a ReconMethod. unet and cs register here.
METHODS: dict[str, Callable[..., ReconMethod]] = {"zero-filled": lambda **_: ZeroFilled()}


def register_method(name: str, factory: Callable[..., ReconMethod]) -> None:
    """Make ``factory(**options)`` available as ``reconstruct --method name``."""
    METHODS[name] = factory


@dataclass(frozen=True)
class ReconJob:
    """What to reconstruct and how.

    Attributes:
        input_dir: folder of fastMRI .h5 files (or explicit ``files``).
        output_dir: where submission files go (created if missing).
        method: key of :data:`METHODS`.
        mask: masks for fully sampled inputs; files with their own ``mask`` use it.
        seed: None uses fastMRI's per-file validation seeding (reproducible,
            comparable with published numbers); an int draws masks from
            ``seeded_file_rng(seed, file name)`` instead.
        device: torch device string.
        overwrite: redo files whose output is already complete.
        files: explicit input files instead of every .h5 in ``input_dir``.
        rank/world_size: this process's share of the files (torchrun sharding).
        method_options: keyword options for the method factory.
    """

    input_dir: Path
    output_dir: Path
    method: str = "zero-filled"
    mask: MaskSpec | None = MaskSpec("random", (0.08,), (4.0,))
    seed: int | None = None
    device: str = "cpu"
    overwrite: bool = False
    files: tuple[Path, ...] = ()
    rank: int = 0
    world_size: int = 1
    method_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass
class ReconReport:
    """Outcome of a run: files written, skipped as complete, and failures with reasons."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    slices: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def shard(files: Sequence[Path], rank: int, world_size: int) -> list[Path]:
    """This rank's disjoint share of the files (round robin over the sorted list)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    return list(files)[rank::world_size]


def volume_mask(
    info: VolumeInfo,
    spec: MaskSpec | None,
    file_mask: np.ndarray | None,
    seed: int | None,
) -> Mask:
    """The mask for a whole volume: the file's own, or ``spec`` seeded per file name."""
    rng = None if seed is None else seeded_file_rng(seed, info.fname)
    return select_mask(spec, info.kspace_shape[-1], info.fname, file_mask, rng)


def load_volume(info: VolumeInfo, spec: MaskSpec | None, seed: int | None) -> Volume:
    """Read a file, choose its mask and apply it."""
    kspace, target, file_mask = read_volume(info)
    m = volume_mask(info, spec, file_mask, seed)
    mask_t = torch.from_numpy(m.mask)
    k = torch.from_numpy(kspace) * mask_t + 0.0  # + 0.0 clears -0 as fastMRI does
    crop = recon_crop(
        kspace.shape[-1], target.shape[-2:] if target is not None else info.recon_size
    )
    return Volume(info, k, mask_t, tuple(crop), m)


def file_hash(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, hex (used to record which checkpoint produced an output)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _attrs(job: ReconJob, vol: Volume, method: ReconMethod) -> dict[str, Any]:
    m = vol.mask_info
    from_file = vol.info.has_mask
    attrs: dict[str, Any] = {
        "method": method.name,
        "mask_type": "file" if from_file else (job.mask.kind if job.mask else "none"),
        "acceleration": float(vol.info.attrs.get("acceleration", 0.0))
        if from_file
        else m.acceleration,
        "center_fraction": m.center_fraction,
        "num_low_frequency": int(vol.info.attrs.get("num_low_frequency", m.num_low)),
        "seed": "fastmri-fname" if job.seed is None else str(job.seed),
        "mrirecon_version": __version__,
        "source_file": vol.info.fname,
    }
    for key in ("acquisition", "patient_id"):
        if key in vol.info.attrs:
            attrs[key] = vol.info.attrs[key]
    attrs.update(method.provenance())
    return attrs


def reconstruct_folder(job: ReconJob, writer: Callable[..., Path] | None = None) -> ReconReport:
    """Reconstruct every input file of ``job``; never stops on a bad file.

    Args:
        job: the job description.
        writer: ``writer(path, recon, attrs, mask)``; defaults to
            :func:`mrirecon.io.write_reconstruction`.

    Returns:
        the :class:`ReconReport` (check ``.ok``).
    """
    if job.method not in METHODS:
        raise ValueError(f"unknown method {job.method!r}; choose from {sorted(METHODS)}")
    files = list(job.files) if job.files else list_h5(job.input_dir)
    if not files:
        raise DataError(f"{job.input_dir}: no .h5 files found")
    out_dir = check_writable(job.output_dir)
    method = METHODS[job.method](**job.method_options)
    device = torch.device(job.device)
    writer = writer or write_reconstruction
    report = ReconReport()
    start = time.perf_counter()
    mine = shard(sorted(files), job.rank, job.world_size)
    bar = tqdm(mine, desc=f"{job.method}", unit="vol", disable=not job.progress)
    for path in bar:
        # A writer may name its own outputs (NIfTI) and say when one is finished.
        out = out_dir / getattr(writer, "output_name", lambda p: p.name)(path)
        if not job.overwrite and getattr(writer, "is_complete", is_complete)(out):
            report.skipped.append(path)
            continue
        try:
            info = inspect_file(path)
            vol = load_volume(info, job.mask, job.seed)
            recon = method(vol, device)
            writer(out, recon, _attrs(job, vol, method), vol.mask.numpy())
        except (ValueError, OSError, RuntimeError) as exc:
            msg = str(exc)
            reason = msg.removeprefix(f"{path}: ")
            report.failed.append((path, reason))
            bar.write(f"FAILED {path}: {reason}")
            continue
        report.written.append(out)
        report.slices += info.num_slices
        bar.set_postfix(slices=report.slices)
    report.seconds = time.perf_counter() - start
    return report
