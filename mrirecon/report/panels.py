"""Pick and load the slices shown in the report's image panels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mrirecon.data.fastmri_h5 import read_output_mask, read_reconstruction, read_target
from mrirecon.errors import ConfigError
from mrirecon.evaluate import VolumeScore, eval_crop
from mrirecon.report.figures import PanelSlice

__all__ = ["choose_slices", "load_panel"]

MAX_AUTO_PANELS = 3


def _parse(spec: str) -> tuple[str, int | None]:
    name, sep, sl = spec.rpartition(":")
    if not sep:
        return spec, None
    try:
        return name, int(sl)
    except ValueError:
        raise ConfigError(f"--panels: expected FILE or FILE:SLICE, got {spec!r}") from None


def choose_slices(
    rows: Sequence[VolumeScore],
    datasets: Sequence[tuple[str, Path]],
    requested: Sequence[str] = (),
) -> list[tuple[str, Path, int | None]]:
    """The (dataset, file path, slice or None = middle) to draw.

    Requested ``FILE`` / ``FILE:SLICE`` entries are looked up in the data folders;
    otherwise the first scored file of each data folder (at most three) is used.
    """
    folders = dict(datasets)
    scored = {(r.dataset, r.file) for r in rows}
    out = []
    if requested:
        for spec in requested:
            name, sl = _parse(spec)
            hits = [(d, folders[d] / name) for d in folders if (d, name) in scored]
            if not hits:
                raise ConfigError(f"--panels: {name} was not scored (not in the data folders?)")
            out.append((hits[0][0], hits[0][1], sl))
        return out
    for d, folder in datasets:
        names = sorted(f for ds, f in scored if ds == d)
        if names:
            out.append((d, folder / names[0], None))
    return out[:MAX_AUTO_PANELS]


def load_panel(
    dataset: str,
    path: Path,
    slice_idx: int | None,
    recon_dirs: dict[str, Path],
) -> PanelSlice:
    """Target, every method's reconstruction and the mask of one slice, cropped as scored.

    Args:
        dataset: label shown in the title.
        path: the input file (holding the target).
        slice_idx: slice to show; None = the middle slice.
        recon_dirs: method -> folder of its reconstructions at this acceleration.
    """
    target, _ = read_target(path)
    s = target.shape[0] // 2 if slice_idx is None else slice_idx
    if not 0 <= s < target.shape[0]:
        raise ConfigError(f"{path}: slice {s} out of range (volume has {target.shape[0]})")
    recons, mask = {}, None
    for method, folder in recon_dirs.items():
        rpath = folder / path.name
        recon = read_reconstruction(rpath)
        recons[method] = eval_crop(recon[s], target.shape)
        if mask is None:
            mask = read_output_mask(rpath)
    title = f"{dataset}/{path.name}, slice {s}"
    return PanelSlice(title, eval_crop(target[s], target.shape), recons, mask)
