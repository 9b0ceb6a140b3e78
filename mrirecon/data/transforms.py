"""k-space -> masked k-space -> zero-filled image -> normalised, typed training samples.

:class:`UnetTransform` yields the U-Net's :class:`UnetSample`; :class:`KspaceTransform`
adds the masked multi-coil k-space that the E2E-VarNet reads (:class:`KspaceSample`).

Follows fastMRI's ``UnetDataTransform`` exactly (same mask draws, crop, magnitude/RSS,
instance normalisation with eps 1e-11 and clamp to +-6), so a model trained here sees
the inputs a fastMRI-trained model saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from mrirecon.data.dataset import RawSlice
from mrirecon.data.header import recon_crop
from mrirecon.data.masks import Mask, MaskSpec, eval_rng, train_rng
from mrirecon.fft import abs2, center_crop, crop_slices, ifft2c, ifft_readout, rss, shift_index

__all__ = [
    "UnetSample",
    "UnetTransform",
    "KspaceSample",
    "KspaceTransform",
    "zero_filled",
    "fully_sampled_image",
    "normalize",
    "select_mask",
    "MODES",
]

EPS = 1e-11
CLAMP = 6.0
MODES = ("train", "eval")

Augment = Callable[[torch.Tensor, np.random.RandomState], torch.Tensor]


class UnetSample(NamedTuple):
    """One normalised training/inference sample.

    Attributes:
        image: (1, h, w) zero-filled magnitude, normalised and clamped.
        target: (1, h, w) target normalised with the image's mean/std and clamped;
            zeros when the file has no target.
        target_raw: (h, w) cropped, un-normalised target (zeros when absent), for metrics.
        mean: 0-d, the zero-filled image's mean.
        std: 0-d, the zero-filled image's (unbiased) std.
        max_value: 0-d, the file's ``max`` attribute (0 when absent).
        fname: file name.
        slice_idx: slice index in the volume.
        mask: (W,) bool, the columns used.
        acceleration: nominal acceleration of the mask (0 when the file's own mask is used).
        center_fraction: centre fraction of the mask (0 when the file's own mask is used).
    """

    image: torch.Tensor
    target: torch.Tensor
    target_raw: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    max_value: torch.Tensor
    fname: str
    slice_idx: int
    mask: torch.Tensor
    acceleration: float
    center_fraction: float


def zero_filled(
    kspace: torch.Tensor, mask: torch.Tensor, crop: tuple[int, int], multicoil: bool = True
) -> torch.Tensor:
    """Zero-filled magnitude image: ifft2c of masked k-space, complex crop, |.|, RSS.

    Equal to ``abs(center_crop(ifft2c(kspace * mask)))`` (RSS over coils), computed
    column-sparsely: the readout-direction inverse FFT runs only on the acquired
    columns (unacquired columns stay zero under a 1-D transform along the readout),
    only the cropped rows go through the phase-encode FFT, and the centring shifts
    are folded into the gathers and scatters instead of copying full arrays.

    Args:
        kspace: complex (..., C, H, W).
        mask: bool (W,), True where a column is acquired.
        crop: (h, w) centre crop applied to the complex image.
        multicoil: RSS over C; otherwise C must be 1 and the magnitude is returned.

    Returns:
        real (..., h, w) magnitude image.
    """
    if mask.dtype != torch.bool or mask.shape != kspace.shape[-1:]:
        raise ValueError(
            f"mask must be bool of shape ({kspace.shape[-1]},), got {mask.dtype} {tuple(mask.shape)}"
        )
    W = kspace.shape[-1]
    rows, cols = crop_slices(kspace.shape, crop)
    dev = kspace.device
    sampled_cols = torch.nonzero(mask, as_tuple=True)[0].to(dev)
    # readout direction: the cropped rows, on the acquired columns only
    x = ifft_readout(kspace.index_select(-1, sampled_cols), rows)
    # phase-encode direction: scatter into ifftshifted column positions, 1-D ifft, gather crop
    full = x.new_zeros((*x.shape[:-1], W))
    full.index_copy_(-1, shift_index(W, sampled_cols, inverse=False), x)
    image = torch.fft.ifft(full, dim=-1, norm="ortho")
    image = image.index_select(
        -1, shift_index(W, torch.arange(cols.start, cols.stop, device=dev), False)
    )
    if multicoil:
        return rss(image, dim=-3)
    if image.shape[-3] != 1:
        raise ValueError(f"single-coil data must have one coil, got {image.shape[-3]}")
    return torch.sqrt(abs2(image[..., 0, :, :]))


def fully_sampled_image(
    kspace: torch.Tensor, crop: tuple[int, int], multicoil: bool = True
) -> torch.Tensor:
    """Magnitude (RSS for multi-coil) of the fully sampled image, centre-cropped: (..., h, w)."""
    image = center_crop(ifft2c(kspace), crop)
    if multicoil:
        return rss(image, dim=-3)
    return image.abs()[..., 0, :, :]


def normalize(
    image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, clamp: bool = True
) -> torch.Tensor:
    """(image - mean) / (std + 1e-11), clamped to [-6, 6] (fastMRI's U-Net convention)."""
    out = (image - mean) / (std + EPS)
    return out.clamp(-CLAMP, CLAMP) if clamp else out


def select_mask(
    spec: MaskSpec | None,
    width: int,
    fname: str,
    file_mask: np.ndarray | None,
    rng: np.random.RandomState | None,
) -> Mask:
    """Pick the mask for a slice.

    A file's own mask (test files) wins; otherwise ``spec`` is drawn from ``rng`` or,
    when ``rng`` is None, from fastMRI's per-file validation seed. With neither a spec
    nor a file mask, every column is kept.
    """
    if file_mask is not None:
        return Mask(file_mask.astype(bool), 0.0, 0.0, 0)
    if spec is None:
        return Mask(np.ones(width, dtype=bool), 0.0, 1.0, width)
    spec.check_width(width)
    return spec.sample(width, eval_rng(fname) if rng is None else rng)


class UnetTransform:
    """RawSlice -> :class:`UnetSample`.

    Args:
        mask: which masks to draw; None keeps the file's own mask or all columns.
        mode: ``"eval"`` seeds each file's mask from its name (fastMRI validation
            seeding, same mask for every slice); ``"train"`` draws a fresh mask per
            sample from ``train_rng(seed, epoch, index)``.
        seed: base seed of training masks and augmentation.
        augment: optional ``augment(kspace (C, H, W) complex, rng) -> kspace`` applied
            to the fully sampled k-space in train mode; the target is then recomputed
            from the augmented k-space so it stays consistent.
    """

    def __init__(
        self,
        mask: MaskSpec | None,
        mode: str = "eval",
        seed: int = 0,
        augment: Augment | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown transform mode {mode!r}; choose from {MODES}")
        self.mask = mask
        self.mode = mode
        self.seed = int(seed)
        self.augment = augment
        # Evaluation masks depend only on (file, width): drawn once per file, not per slice.
        self._eval_masks: dict[tuple[str, int], Mask] = {}

    def _mask(self, raw: RawSlice, width: int, rng: np.random.RandomState | None) -> Mask:
        if rng is not None or raw.file_mask is not None:
            return select_mask(self.mask, width, raw.info.fname, raw.file_mask, rng)
        key = (raw.info.fname, width)
        if key not in self._eval_masks:
            if len(self._eval_masks) > 4096:
                self._eval_masks.clear()
            self._eval_masks[key] = select_mask(self.mask, width, raw.info.fname, None, None)
        return self._eval_masks[key]

    def _sample(
        self, raw: RawSlice, epoch: int, index: int
    ) -> tuple[UnetSample, torch.Tensor, Mask, tuple[int, int]]:
        """The U-Net sample plus the (augmented) fully sampled k-space, mask and crop."""
        info = raw.info
        kspace = torch.from_numpy(np.ascontiguousarray(raw.kspace))
        width = kspace.shape[-1]
        crop = recon_crop(width, raw.target.shape if raw.target is not None else info.recon_size)
        rng = train_rng(self.seed, epoch, index) if self.mode == "train" else None

        target_raw = None
        if self.mode == "train" and self.augment is not None:
            kspace = self.augment(kspace, rng)
            target_raw = fully_sampled_image(kspace, crop, info.multicoil)
        elif raw.target is not None:
            target_raw = center_crop(torch.from_numpy(raw.target), crop)

        m = self._mask(raw, width, rng)
        mask_t = torch.from_numpy(m.mask)
        image = zero_filled(kspace, mask_t, crop, info.multicoil)
        mean, std = image.mean(), image.std()
        image_n = normalize(image, mean, std)
        if target_raw is None:
            target_n = torch.zeros_like(image_n)
            target_raw = torch.zeros_like(image)
        else:
            target_n = normalize(target_raw, mean, std)
        sample = UnetSample(
            image=image_n.unsqueeze(0).float(),
            target=target_n.unsqueeze(0).float(),
            target_raw=target_raw.float().contiguous(),
            mean=mean.float(),
            std=std.float(),
            max_value=torch.tensor(float(info.attrs.get("max", 0.0)), dtype=torch.float32),
            fname=info.fname,
            slice_idx=raw.slice_idx,
            mask=mask_t,
            acceleration=float(m.acceleration),
            center_fraction=float(m.center_fraction),
        )
        return sample, kspace, m, crop

    def __call__(self, raw: RawSlice, epoch: int = 0, index: int = 0) -> UnetSample:
        return self._sample(raw, epoch, index)[0]


class KspaceSample(NamedTuple):
    """A :class:`UnetSample` plus what a k-space network (E2E-VarNet) reads.

    Attributes:
        sample: the U-Net sample (its ``mean``/``std`` normalise the network's output, so
            the U-Net losses and validation apply unchanged).
        kspace: complex64 (C, H, W) masked k-space (``+ 0.0`` clears -0 as fastMRI does).
        num_low: fully sampled centre columns of the mask (0 for a file's own mask: the
            network then finds them from the mask).
        crop: (2,) int64 output size (h, w).
    """

    sample: UnetSample
    kspace: torch.Tensor
    num_low: int
    crop: torch.Tensor


class KspaceTransform(UnetTransform):
    """RawSlice -> :class:`KspaceSample` (same masks, crops and normalisation as
    :class:`UnetTransform`, plus the masked multi-coil k-space)."""

    def __call__(self, raw: RawSlice, epoch: int = 0, index: int = 0) -> KspaceSample:  # type: ignore[override]
        sample, kspace, m, crop = self._sample(raw, epoch, index)
        masked = kspace * torch.from_numpy(m.mask) + 0.0
        return KspaceSample(sample, masked.to(torch.complex64), int(m.num_low), torch.tensor(crop))
