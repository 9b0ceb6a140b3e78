"""Batch reconstruction of a folder: one output file per input, isolated per-file failures.

The loop streams volume by volume (memory bounded by one volume), writes each output
atomically (temporary file, then rename), and records what went wrong with each bad
file without stopping the others. Which method runs is a typed
:class:`~mrirecon.methods.MethodSpec`; how outputs are stored is an
:class:`~mrirecon.io.Writer`.

Rerun rules (resume is keyed on settings, not on file names):

- every output carries the settings that made it (method and its own settings, such as
  the checkpoint's SHA-256 or the resolved CS config; mask type, accelerations, centre
  fractions and seed) as the JSON attribute ``settings``;
- a finished output made with the same settings is kept (reported "already complete");
- a finished output made with other settings stops the run before anything is
  reconstructed, with one line naming the file and the settings that differ: pass
  ``--overwrite`` to redo such files, or choose another output folder;
- leftover temporary files of an earlier, killed run are removed.

Only the project's data errors (:class:`~mrirecon.errors.DataError`) and I/O errors
(``OSError``) fail a single file; anything else is a bug and stops the run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mrirecon import __version__
from mrirecon.data.dataset import VolumeInfo, inspect_file, list_h5, read_volume, skipped_h5
from mrirecon.data.header import recon_crop
from mrirecon.data.masks import Mask, MaskSpec, seeded_file_rng
from mrirecon.data.transforms import select_mask
from mrirecon.device import resolve_device
from mrirecon.errors import ConfigError, DataError
from mrirecon.io import Writer, check_writable, make_writer, remove_stale_temps
from mrirecon.methods import MethodSpec, ReconMethod, Volume, ZeroFilledSpec

__all__ = [
    "ReconJob",
    "ReconReport",
    "reconstruct_folder",
    "volume_mask",
    "load_volume",
    "shard",
    "job_settings",
    "check_output_folder",
]

SETTINGS_ATTR = "settings"


@dataclass(frozen=True)
class ReconJob:
    """What to reconstruct and how.

    Attributes:
        input_dir: folder of fastMRI .h5 files (or explicit ``files``).
        output_dir: where outputs go (created if missing); never the input folder or
            inside it.
        method: the method's spec.
        mask: masks for fully sampled inputs; files with their own ``mask`` use it.
        seed: None uses fastMRI's per-file validation seeding (reproducible,
            comparable with published numbers); an int draws masks from
            ``seeded_file_rng(seed, file name)`` instead.
        device: torch device string.
        overwrite: redo files whose output already exists (whatever its settings).
        files: explicit input files instead of every .h5 in ``input_dir``.
        rank/world_size: this process's share of the files (torchrun sharding).
        output_format: ``h5`` (fastMRI submission files) or ``nifti``.
        progress: draw a progress bar (on a terminal only).
    """

    input_dir: Path
    output_dir: Path
    method: MethodSpec = field(default_factory=ZeroFilledSpec)
    mask: MaskSpec | None = MaskSpec("random", (0.08,), (4.0,))
    seed: int | None = None
    device: str = "cpu"
    overwrite: bool = False
    files: tuple[Path, ...] = ()
    rank: int = 0
    world_size: int = 1
    output_format: str = "h5"
    progress: bool = True


@dataclass
class ReconReport:
    """Outcome of a run: files written, skipped as complete, failures with reasons, and
    ``*.h5`` entries of the input folder that are not readable files (folders, broken links)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # *.h5 entries not files
    slices: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def shard(files: Sequence[Path], rank: int, world_size: int) -> list[Path]:
    """This rank's disjoint share of the files (round robin over the sorted list)."""
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} outside world size {world_size}")
    return list(files)[rank::world_size]


def volume_mask(
    info: VolumeInfo,
    spec: MaskSpec | None,
    file_mask: np.ndarray | None,
    seed: int | None,
) -> Mask:
    """The mask for a whole volume: the file's own, or ``spec`` seeded per file name.

    Raises:
        DataError: ``spec`` cannot be met for this file's width.
    """
    if file_mask is None and spec is not None:
        try:
            spec.check_width(info.kspace_shape[-1])
        except ValueError as exc:
            raise DataError(f"{info.path}: {exc}") from None
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


def job_settings(job: ReconJob) -> dict[str, Any]:
    """The settings that make an output what it is (stored in it; compared on reruns)."""
    return {
        "method": job.method.name,
        **job.method.settings(),
        "mask": None if job.mask is None else asdict(job.mask),
        "seed": job.seed,
    }


def _settings_json(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def _differences(stored: Any, current: dict[str, Any]) -> list[str]:
    """Names of the settings that differ between an existing output and this run."""
    try:
        old = json.loads(stored) if isinstance(stored, str) else None
    except ValueError:
        old = None
    if not isinstance(old, dict):
        return ["settings (none recorded)"]
    new = json.loads(_settings_json(current))
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _attrs(job: ReconJob, vol: Volume, method: ReconMethod, settings: str) -> dict[str, Any]:
    m = vol.mask_info
    from_file = vol.info.has_mask
    attrs: dict[str, Any] = {
        "method": job.method.name,
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
    attrs[SETTINGS_ATTR] = settings
    return attrs


def check_output_folder(output_dir: Path, input_dirs: Sequence[Path]) -> None:
    """Refuse an output folder that is, or lies inside, an input folder (it would mix
    outputs with inputs, and an output named like its input would replace it).

    Raises:
        ConfigError: one line naming both folders.
    """
    out = Path(output_dir).resolve()
    for folder in input_dirs:
        src = Path(folder).resolve()
        if out == src or src in out.parents:
            raise ConfigError(
                f"{output_dir}: the output folder is or lies inside the input folder {folder}; "
                "choose an output folder outside it"
            )


def _plan(
    job: ReconJob, files: Sequence[Path], out_dir: Path, writer: Writer, settings: str
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input, output) pairs to do and inputs already done; refuses stale outputs."""
    todo, done, stale = [], [], []
    current = json.loads(settings)
    for path in files:
        out = out_dir / writer.output_name(path)
        attrs = None if job.overwrite else writer.finished_attrs(out)
        if attrs is None:
            todo.append((path, out))
        elif attrs.get(SETTINGS_ATTR) == settings:
            done.append(path)
        else:
            stale.append((out, _differences(attrs.get(SETTINGS_ATTR), current)))
    if stale:
        out, diff = stale[0]
        more = f" (and {len(stale) - 1} more file(s))" if len(stale) > 1 else ""
        raise ConfigError(
            f"{out}: made with different {', '.join(diff)}{more}; "
            "use --overwrite to redo it or choose another output folder"
        )
    return todo, done


def reconstruct_folder(job: ReconJob, method: ReconMethod | None = None) -> ReconReport:
    """Reconstruct every input file of ``job``; never stops on a bad file.

    Args:
        job: the job description.
        method: the already built method of ``job.method`` (built here when None).

    Returns:
        the :class:`ReconReport` (check ``.ok``).

    Raises:
        ConfigError: unusable folders, or outputs made with other settings.
        DataError: no input files.
    """
    device = resolve_device(job.device)
    files = list(job.files) if job.files else list_h5(job.input_dir)
    if not files:
        raise DataError(f"{job.input_dir}: no .h5 files found")
    check_output_folder(job.output_dir, [job.input_dir, *{Path(f).parent for f in files}])
    out_dir = check_writable(job.output_dir)
    remove_stale_temps(out_dir)
    writer = make_writer(job.output_format, job.input_dir)
    settings = _settings_json(job_settings(job))
    todo, done = _plan(
        job, shard(sorted(files), job.rank, job.world_size), out_dir, writer, settings
    )
    ignored = [] if job.files else skipped_h5(job.input_dir)
    report = ReconReport(skipped=done, ignored=ignored)
    start = time.perf_counter()
    if todo and method is None:
        method = job.method.build()
    # As training's bars: only on a terminal (a log file would get every redraw as text).
    shown = job.progress and sys.stderr.isatty()
    bar = tqdm(todo, desc=job.method.name, unit="vol", disable=not shown, file=sys.stderr)
    for path, out in bar:
        try:
            info = inspect_file(path)
            vol = load_volume(info, job.mask, job.seed)
            recon = method(vol, device)  # type: ignore[misc]
            writer.write(out, recon, _attrs(job, vol, method, settings), vol.mask.numpy())  # type: ignore[arg-type]
        except (DataError, OSError) as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            report.failed.append((path, reason))
            bar.write(f"FAILED {path}: {reason}")
            continue
        report.written.append(out)
        report.slices += info.num_slices
        bar.set_postfix(slices=report.slices)
    report.seconds = time.perf_counter() - start
    return report
