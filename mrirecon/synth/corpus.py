"""The domain-randomised training corpus: fastMRI-format raw data as a pure function of a seed.

Each volume (or streamed slice) is drawn from its own random stream, keyed by the seed and
its index (and the epoch when streamed), so the same key gives bit-identical k-space in any
process, worker or order. A draw:

1. picks a recon matrix (h, w), each side log-uniform in ``matrix`` with a bounded aspect
   ratio, a k-space of H = 2h rows (fastMRI's 2x readout oversampling; for
   ``1 - oversample_prob`` of draws H = h, as in raw data exported with the oversampling
   removed) and W = w or w plus phase-oversampling columns;
2. draws a magnitude image from a source (:mod:`mrirecon.synth.sources`): MNI ICBM152 or
   Colin 27 anatomy with random contrast, with or without skull (skull-stripped: exactly
   zero outside the brain), or, for ``nonmri_fraction`` of draws, natural images or
   procedural shapes;
3. applies a smooth bias field and a smooth random phase, for ``wrap_prob`` of draws a
   strong B0-like phase that wraps several times;
4. multiplies by random loop-coil sensitivities (log-uniform ``coils``, ring / arcs /
   random layouts) or keeps one coil (``singlecoil_prob``, ESC target);
5. adds complex Gaussian k-space noise with a random inter-coil correlation, its std
   log-uniform in ``noise`` relative to the image peak (some skull-stripped draws are
   noiseless), and zero-pads phase-encode edges for ``pad_prob`` of draws; for
   ``magnitude_noise_prob`` of draws the noise is instead Rician or noncentral-chi noise in
   the magnitude image (before phase and coils), as in k-space simulated from noisy
   magnitude images;
6. computes the target from the stored k-space as fastMRI does (ESC or RSS at the recon
   size) and the ISMRMRD header that describes the sizes and padding.

:func:`write_corpus` stores volumes as fastMRI files; :class:`CorpusSliceDataset` streams
single slices as the same :class:`~mrirecon.data.dataset.RawSlice` that
:class:`~mrirecon.data.dataset.SliceDataset` yields, so the U-Net transform applies unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch.utils.data

from mrirecon.data.dataset import RawSlice, VolumeInfo
from mrirecon.data.fastmri_h5 import TARGET_KEYS
from mrirecon.data.header import parse_header
from mrirecon.errors import ConfigError
from mrirecon.synth import fields as sf
from mrirecon.synth.kspace import (
    SynthVolume,
    fastmri_target,
    fft2c_rows,
    ismrmrd_header,
    kspace_size_for,
    pad_phase_edges,
    write_volume,
)
from mrirecon.synth.scanner import scanner_support
from mrirecon.synth.sources import draw_source, preload, smooth_field

__all__ = ["CorpusConfig", "corpus_volume", "corpus_slice", "write_corpus", "CorpusSliceDataset"]

SOURCE = (
    "mrirecon corpus: MNI ICBM152 2009a (Fonov et al. 2009/2011, MNI licence), Colin 27 (Holmes "
    "et al. 1998, BSD-3-clause via Debian mricron-data), scikit-image CC0/public-domain images, "
    "procedural shapes; see mrirecon/data/assets/NOTICE.md"
)
# Stream tags keep file volumes and streamed slices on different random streams.
_FILE_STREAM, _SLICE_STREAM = 1, 2


@dataclass(frozen=True)
class CorpusConfig:
    """What the corpus draws. Ranges are (low, high), drawn per volume.

    Attributes:
        slices: slices per written volume (a streamed item is one slice). With the defaults
            a slice takes 4.5 MiB on average (median 2.2 MiB, 40 draws), so a 2-slice
            volume ~9 MiB and 250 volumes ~2.2 GB.
        matrix: recon side lengths in pixels; each side log-uniform, a multiple of 8.
        max_aspect: largest ratio of the longer to the shorter recon side.
        coils: coil counts of multi-coil volumes (log-uniform, inclusive).
        singlecoil_prob: fraction of single-coil volumes (``reconstruction_esc``).
        nonmri_fraction: fraction drawn from natural images and procedural shapes (half each).
        skull_prob: probability that a head has skull and scalp; else it is skull-stripped.
        noiseless_prob: probability that a skull-stripped head gets no noise at all.
        noise: k-space noise std relative to the image peak (log-uniform).
        pad_prob: probability of zero-padded phase-encode edges.
        wrap_prob: probability of a strong B0-like phase that wraps.
        oversample_prob: probability of fastMRI's 2x readout oversampling (H = 2h rows);
            otherwise H = h and the object may fill the whole field of view, as in raw
            data exported with the oversampling removed. At 1 (the default) no draw is
            spent on it, so the corpus is the same as before the option existed.
        magnitude_noise_prob: probability that the noise is Rician noise in the magnitude
            image, before phase and coils, with no k-space noise: k-space simulated from a
            noisy magnitude image, whose target keeps the noise and its background floor.
            At 0 (the default) no draw is spent on it.
        magnitude_noise: that noise's std per channel relative to the slice peak
            (log-uniform); magnitude images are often far noisier than raw k-space
            (diffusion, low field).
        magnitude_coils: receive channels N of that magnitude noise (log-uniform integer,
            inclusive). A root-sum-of-squares image of N channels has noncentral-chi noise
            (Constantinides et al. 1997): N = 1 is Rician; larger N raises the background
            floor to about sqrt(2N - 1/2) noise stds while its spread stays about one std. At
            (1, 1) (the default) no draw is spent on it.
        magnitude_support_prob: probability that a noisy magnitude image comes from a
            scanner's reduced k-space (:func:`~mrirecon.synth.scanner.scanner_support`).
            At 0 (the default) no draw is spent on it.
        prefix: file-name prefix.
    """

    slices: int = 2
    matrix: tuple[int, int] = (96, 256)
    max_aspect: float = 1.6
    coils: tuple[int, int] = (2, 32)
    singlecoil_prob: float = 0.15
    nonmri_fraction: float = 0.2
    skull_prob: float = 0.6
    noiseless_prob: float = 0.3
    noise: tuple[float, float] = (0.002, 0.05)
    pad_prob: float = 0.3
    wrap_prob: float = 0.3
    oversample_prob: float = 1.0
    magnitude_noise_prob: float = 0.0
    magnitude_noise: tuple[float, float] = (0.002, 0.05)
    magnitude_coils: tuple[int, int] = (1, 1)
    magnitude_support_prob: float = 0.0
    prefix: str = "corpus"

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.slices <= 256, "slices", "must be in 1..256"),
            (
                16 <= self.matrix[0] <= self.matrix[1] <= 1024,
                "matrix",
                "must be 16 <= low <= high <= 1024",
            ),
            (self.max_aspect >= 1.0, "max_aspect", "must be >= 1"),
            (2 <= self.coils[0] <= self.coils[1] <= 64, "coils", "must be 2 <= low <= high <= 64"),
            (0 < self.noise[0] <= self.noise[1] < 1, "noise", "must be 0 < low <= high < 1"),
            (
                0 < self.magnitude_noise[0] <= self.magnitude_noise[1] < 1,
                "magnitude_noise",
                "must be 0 < low <= high < 1",
            ),
            (
                1 <= self.magnitude_coils[0] <= self.magnitude_coils[1] <= 64,
                "magnitude_coils",
                "must be 1 <= low <= high <= 64",
            ),
            (self.prefix.isidentifier(), "prefix", "must be a plain name"),
        ]
        for name in (f.name for f in fields(self) if f.name.endswith(("_prob", "_fraction"))):
            checks.append((0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]"))
        for ok, name, why in checks:
            if not ok:
                raise ConfigError(f"corpus option '{name}' {why}, got {getattr(self, name)!r}")


def _rng(*key: int) -> np.random.RandomState:
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence([int(k) for k in key])))


def _loguniform(rng: np.random.RandomState, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _matrix(config: CorpusConfig, rng: np.random.RandomState) -> tuple[int, int]:
    lo, hi = config.matrix
    h = _loguniform(rng, lo, hi)
    ratio = _loguniform(rng, 1.0 / config.max_aspect, config.max_aspect)
    w = float(np.clip(h * ratio, lo, hi))
    return max(lo, 8 * round(h / 8)), max(lo, 8 * round(w / 8))


def _phase(shape, recon, slices: int, rng: np.random.RandomState, wrap: bool) -> np.ndarray:
    """Smooth phase (S, H, W): constant + low-order terms, slowly changing between slices."""
    f1, f2 = (smooth_field(shape, recon, rng, cycles=2) for _ in range(2))
    amp = rng.uniform(0.1, 0.8)
    base = rng.uniform(-np.pi, np.pi) + rng.uniform(0.3, 2.0) * smooth_field(shape, recon, rng, 1)
    if wrap:  # a B0-like off-resonance phase that winds through 2 pi a few times
        base = base + rng.uniform(2.0, 6.0) * np.pi * smooth_field(shape, recon, rng, 1)
    t = rng.uniform(0.0, 0.3) * (np.arange(slices) - (slices - 1) / 2.0)
    return base + amp * (np.cos(t)[:, None, None] * f1 + np.sin(t)[:, None, None] * f2)


def _upsample2(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Linear 2x upsampling of the last two axes: fine[2j] = coarse[j], odd pixels averaged."""
    out = np.empty((*coarse.shape[:-2], *shape), dtype=coarse.dtype)
    out[..., ::2, ::2] = coarse
    out[..., 1:-1:2, ::2] = 0.5 * (coarse[..., :-1, :] + coarse[..., 1:, :])
    out[..., -1, ::2] = coarse[..., -1, :]
    out[..., :, 1:-1:2] = 0.5 * (out[..., :, :-2:2] + out[..., :, 2::2])
    out[..., :, -1] = out[..., :, -2]
    return out


def _coil_maps(shape, recon, ncoil: int, offsets, rng, layout: str) -> np.ndarray:
    """Loop-coil maps (S, C, H, W), computed on a 2x coarser grid: they are smooth on the
    scale of the coils' size (at least a quarter of the field of view)."""
    (H, W), (h, w) = shape, recon
    coarse = sf.coil_maps(
        (H // 2, W // 2), (h // 2, w // 2), ncoil, offsets, rng, layout, smooth_phase=True
    )
    return _upsample2(coarse, shape)


def _draw(config: CorpusConfig, rng: np.random.RandomState, slices: int, name: str) -> SynthVolume:
    h, w = _matrix(config, rng)
    oversampled = config.oversample_prob >= 1.0 or rng.uniform() < config.oversample_prob
    H = 2 * h if oversampled else h
    W = kspace_size_for((h, w))[1] if rng.uniform() < 0.5 else w
    recon = (h, w)
    # The image is drawn on the central Hw rows only: the rest of the 2x oversampled
    # readout is empty (the object fits), which saves a third of the work. Without
    # oversampling the work grid is the whole field of view (Hw = H = h).
    Hw = min(H, 8 * int(np.ceil(1.3 * h / 8)))
    u = rng.uniform()
    if u < config.nonmri_fraction:
        source = "natural" if u < config.nonmri_fraction / 2 else "shapes"
    else:
        source = "mni152" if rng.uniform() < 0.5 else "colin27"
    mag, params = draw_source(source, rng, (slices, Hw, W), recon, config.skull_prob)
    yy = (np.arange(Hw, dtype=np.float32) - Hw // 2)[:, None] / (h / 2)
    xx = (np.arange(W, dtype=np.float32) - W // 2)[None, :] / (w / 2)
    # Fade out the rows near the work grid's edge (only a zoomed-in head reaches them),
    # which lies inside an oversampled field of view; without oversampling that edge is
    # the field of view's own, where a real image simply ends.
    edge = np.clip((Hw / h - np.abs(yy)) / 0.1, 0.0, 1.0) if Hw < H else np.float32(1.0)
    bias = sf.bias_field(yy, xx, rng).astype(np.float32) * edge
    magnitude_noise = 0.0
    if config.magnitude_noise_prob > 0 and rng.uniform() < config.magnitude_noise_prob:
        magnitude_noise = _loguniform(rng, *config.magnitude_noise)
        lo, hi = config.magnitude_coils
        channels = 1 if hi == 1 else int(round(_loguniform(rng, lo, hi + 0.49)))
        support = None  # a scanner's reduced k-space, drawn only when asked for
        if config.magnitude_support_prob > 0 and rng.uniform() < config.magnitude_support_prob:
            support, params["scanner_support"] = scanner_support(mag.shape[1:], rng)
        mag = sf.magnitude_noise(mag * bias, magnitude_noise, channels, rng, support)
        bias = np.float32(1.0)
    wrap = bool(rng.uniform() < config.wrap_prob)
    phase = _phase((Hw, W), recon, slices, rng, wrap)
    image = (mag * bias) * np.exp(1j * phase).astype(np.complex64)
    multicoil = bool(rng.uniform() >= config.singlecoil_prob)
    ncoil = 1
    if multicoil:
        ncoil = int(round(_loguniform(rng, config.coils[0], config.coils[1] + 0.49)))
        layout = str(rng.choice(list(sf.COIL_LAYOUTS)))
        fov_w = params.get("pixel_mm", [1.0, 1.0])[1] * w
        offsets = (np.arange(slices) - (slices - 1) / 2) * params.get("slice_spacing_mm", 2.0)
        image = image[:, None] * _coil_maps(
            (Hw, W), recon, ncoil, offsets / (fov_w / 2), rng, layout
        )
        params.update(coils=ncoil, coil_layout=layout)
    scale = _loguniform(rng, 1e-5, 1e-2)
    noiseless = not params["skull"] and source in ("mni152", "colin27")
    noiseless = noiseless and rng.uniform() < config.noiseless_prob
    rel_noise = 0.0 if noiseless or magnitude_noise else _loguniform(rng, *config.noise)
    kspace = fft2c_rows(image, H)
    kspace *= np.float32(scale)
    if rel_noise > 0:
        kspace += sf.coil_noise(kspace.shape, rel_noise * scale, rng, quantised=True)
    pad = pad_phase_edges(kspace, rng, config.pad_prob)
    kspace = np.ascontiguousarray(kspace, dtype=np.complex64)
    target = fastmri_target(kspace, recon, multicoil)
    pixel = params.pop("pixel_mm", [220.0 / w, 220.0 / w])
    slice_mm = params.pop("slice_spacing_mm", 3.0)
    params.update(
        recon=[h, w], kspace=[H, W], scale=scale, noise_rel=rel_noise, padding=list(pad),
        phase_wrap=wrap, pixel_mm=pixel, slice_spacing_mm=slice_mm,
    )  # fmt: skip
    if magnitude_noise:
        params.update(magnitude_noise_rel=magnitude_noise, magnitude_noise_channels=channels)
    header = ismrmrd_header((H, W), recon, slices, ncoil, pad, pixel, slice_mm)
    attrs = {
        "acquisition": f"CORPUS_{params['source'].upper()}",
        "max": float(target.max()),
        "norm": float(np.linalg.norm(target)),
        "patient_id": name,
        "source": SOURCE,
        "synth_params": json.dumps(params, sort_keys=True),
    }
    return SynthVolume(kspace, target, header, attrs, params)


def corpus_volume(config: CorpusConfig, seed: int, index: int) -> SynthVolume:
    """Volume ``index`` of the corpus with ``seed``: ``config.slices`` neighbouring slices.

    Args:
        config: what to draw.
        seed: corpus seed (>= 0).
        index: volume number (>= 0).

    Returns:
        the volume; the same (config, seed, index) gives bit-identical arrays.
    """
    name = f"{config.prefix}_s{seed}_{index:05d}"
    return _draw(config, _rng(_FILE_STREAM, seed, index), config.slices, name)


def corpus_slice(config: CorpusConfig, seed: int, epoch: int, index: int) -> RawSlice:
    """One streamed training slice, a pure function of (config, seed, epoch, index).

    Returns:
        a :class:`RawSlice` (k-space (C, H, W), target (h, w), no file mask) whose
        :class:`VolumeInfo` describes a one-slice volume named after the key.
    """
    name = f"{config.prefix}_s{seed}_e{epoch}_{index:07d}"
    vol = _draw(config, _rng(_SLICE_STREAM, seed, epoch, index), 1, name)
    multicoil = vol.kspace.ndim == 4
    kspace = vol.kspace[0] if multicoil else vol.kspace
    info = VolumeInfo(
        path=Path(f"{name}.h5"),
        fname=f"{name}.h5",
        multicoil=multicoil,
        num_slices=1,
        num_coils=kspace.shape[0],
        kspace_shape=vol.kspace.shape,
        target_key=TARGET_KEYS[multicoil],
        has_mask=False,
        header=parse_header(vol.header),
        recon_size=(int(vol.target.shape[1]), int(vol.target.shape[2])),
        attrs=vol.attrs,
    )
    return RawSlice(kspace, vol.target[0], None, info, 0)


def write_corpus(
    out_dir: str | os.PathLike[str], config: CorpusConfig, count: int, seed: int = 0
) -> list[Path]:
    """Write volumes 0..count-1 of the corpus as fastMRI files (atomically, one by one).

    Returns:
        the files written, ``{prefix}_s{seed}_{index:05d}.h5``.
    """
    out = Path(out_dir)
    if count < 1:
        raise ConfigError(f"--corpus must be at least 1, got {count}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        vol = corpus_volume(config, seed, index)
        paths.append(write_volume(out / f"{vol.attrs['patient_id']}.h5", vol))
    return paths


class CorpusSliceDataset(torch.utils.data.Dataset):
    """``num_slices`` freshly drawn corpus slices per epoch, generated on the fly (no disk).

    Item ``i`` in epoch ``e`` is :func:`corpus_slice` ``(config, seed, e, i)``: a pure
    function of the key, so a resumed run and any number of DataLoader workers see the
    same data. The interface matches :class:`~mrirecon.data.dataset.SliceDataset`.

    Args:
        config: what to draw.
        num_slices: items per epoch.
        seed: corpus seed.
        transform: ``transform(raw, epoch, index)``; None returns the :class:`RawSlice`.
    """

    def __init__(
        self,
        config: CorpusConfig,
        num_slices: int,
        seed: int = 0,
        transform: Callable[[RawSlice, int, int], Any] | None = None,
    ) -> None:
        if num_slices < 1:
            raise ConfigError(f"corpus slices must be at least 1, got {num_slices}")
        self.config = config
        self.num_slices = int(num_slices)
        self.seed = int(seed)
        self.transform = transform
        self.epoch = 0
        preload()  # before any worker forks: workers then share the decoded anatomy

    def __len__(self) -> int:
        return self.num_slices

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: it keys both the drawn slices and the training masks."""
        self.epoch = int(epoch)

    def raw_slice(self, i: int) -> RawSlice:
        """Item ``i`` of the current epoch, untransformed."""
        if not 0 <= i < self.num_slices:
            raise IndexError(f"corpus item {i} out of range 0..{self.num_slices - 1}")
        return corpus_slice(self.config, self.seed, self.epoch, i)

    def __getitem__(self, i: int) -> Any:
        raw = self.raw_slice(i)
        return raw if self.transform is None else self.transform(raw, self.epoch, i)
