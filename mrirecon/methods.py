"""The U-Net and compressed-sensing methods of ``mrirecon reconstruct``, as ReconMethod adapters.

Importing this module registers ``unet`` and ``cs`` in :data:`mrirecon.reconstruct.METHODS`
(``zero-filled`` is built in). Each adapter maps one masked volume
(:class:`mrirecon.reconstruct.Volume`) to an (S, h, w) float32 magnitude volume and
reports the provenance attributes stored in every output file.

- ``unet``: the zero-filled magnitude of each slice is normalised exactly as in
  training (:func:`mrirecon.data.transforms.zero_filled` and
  :func:`~mrirecon.data.transforms.normalize`, instance mean/std, clamp to +-6), run
  through the network in batches (bf16 autocast on CUDA only) and de-normalised with
  ``output * std + mean`` (Zbontar et al., arXiv:1811.08839).
- ``cs``: l1-wavelet compressed sensing (Lustig, Donoho & Pauly, MRM 2007) from
  :mod:`mrirecon.cs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from mrirecon.data.transforms import normalize, zero_filled
from mrirecon.io import NIFTI_SUFFIX, voxel_size_from_header, write_nifti, write_reconstruction
from mrirecon.reconstruct import Volume, file_hash, register_method

__all__ = ["UnetMethod", "CSMethod", "unet_inference", "NiftiWriter", "output_writer", "FORMATS"]

DEFAULT_BATCH = 8


@torch.inference_mode()
def unet_inference(
    model: torch.nn.Module,
    image: torch.Tensor,
    device: torch.device,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """Run a magnitude-image U-Net on a stack of zero-filled slices, as in training.

    Each slice is normalised with its own mean and (unbiased) std, clamped to +-6,
    passed through ``model`` in batches of ``batch_size`` (bf16 autocast on CUDA) and
    de-normalised with ``output * std + mean``.

    Args:
        model: (N, 1, h, w) -> (N, 1, h, w) network, already on ``device``.
        image: real (S, h, w) zero-filled magnitudes.
        device: where to run.
        batch_size: slices per forward pass.

    Returns:
        float32 (S, h, w) on the CPU.
    """
    if image.dim() != 3:
        raise ValueError(f"expected (S, h, w) images, got shape {tuple(image.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    out = torch.empty(image.shape, dtype=torch.float32)
    use_amp = device.type == "cuda"
    for start in range(0, image.shape[0], batch_size):
        chunk = image[start : start + batch_size].to(device, torch.float32)
        mean = chunk.mean(dim=(-2, -1), keepdim=True)
        std = chunk.std(dim=(-2, -1), keepdim=True)
        x = normalize(chunk, mean, std).unsqueeze(1)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            y = model(x)
        out[start : start + chunk.shape[0]] = (y.float()[:, 0] * std + mean).cpu()
    return out


class UnetMethod:
    """``reconstruct --method unet --checkpoint CKPT``.

    Args:
        checkpoint: a training checkpoint (``best.pt``/``last.pt``) or a run folder.
        batch_size: slices per forward pass.

    Raises:
        ValueError: missing, corrupt or mismatched checkpoint (one line naming it).
    """

    name = "unet"

    def __init__(self, checkpoint: str | os.PathLike[str], batch_size: int = DEFAULT_BATCH) -> None:
        from mrirecon.train.checkpoint import checkpoint_hash, load_model, resolve_checkpoint

        self.path = resolve_checkpoint(checkpoint)
        self.model, self.config = load_model(self.path, "cpu")
        self.batch_size = int(batch_size)
        self._device = torch.device("cpu")
        self._prov = {
            "checkpoint": str(Path(self.path).resolve()),
            "checkpoint_sha256": file_hash(self.path),
            "model_hash": checkpoint_hash(self.path),
            "model_chans": self.config.model.chans,
            "model_num_pool_layers": self.config.model.num_pool_layers,
            "model_norm": self.config.model.norm,
            "train_accelerations": list(self.config.mask.accelerations),
        }

    def _on(self, device: torch.device) -> torch.nn.Module:
        if device != self._device:
            self.model = self.model.to(device)
            self._device = device
        return self.model

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        model = self._on(device)
        with torch.inference_mode():
            image = zero_filled(
                volume.kspace.to(device), volume.mask.to(device), volume.crop, volume.info.multicoil
            )
        out = unet_inference(model, image, device, self.batch_size)
        return out.numpy().astype(np.float32, copy=False)

    def provenance(self) -> dict[str, Any]:
        return {**self._prov, "autocast": "bf16" if self._device.type == "cuda" else "none"}


class CSMethod:
    """``reconstruct --method cs [--cs-config FILE]``: l1-wavelet CS from :mod:`mrirecon.cs`.

    Args:
        config_path: CS YAML config (:func:`mrirecon.cs.config.load_config`); None: defaults.
        **overrides: :class:`mrirecon.cs.config.CSConfig` fields that replace the file's
            values (e.g. ``iterations=30``).

    Raises:
        ValueError: unreadable config or unknown/invalid options.
    """

    name = "cs"

    def __init__(self, config_path: str | os.PathLike[str] | None = None, **overrides: Any) -> None:
        from mrirecon.cs.config import CSConfig, config_from_dict, config_to_dict, load_config

        config = load_config(config_path) if config_path is not None else CSConfig()
        if overrides:
            where = "CS options" if config_path is None else f"{config_path} + overrides"
            config = config_from_dict({**config_to_dict(config), **overrides}, where=where)
        self.config = config
        self._lam: float | None = None

    def __call__(self, volume: Volume, device: torch.device) -> np.ndarray:
        from mrirecon.cs.recon import cs_reconstruct

        # A file's own mask has no nominal acceleration (0): CS then uses W / sampled columns.
        acc = volume.mask_info.acceleration or None
        mask = volume.mask
        self._lam = self.config.lam_for(acc if acc else mask.numel() / float(mask.sum()))
        out = cs_reconstruct(
            volume.kspace,
            mask,
            volume.crop,
            self.config,
            acceleration=acc,
            device=device,
            multicoil=volume.info.multicoil,
        )
        return out.numpy().astype(np.float32, copy=False)

    def provenance(self) -> dict[str, Any]:
        c = self.config
        prov: dict[str, Any] = {
            "cs_lambda": self._lam if self._lam is not None else "",
            "cs_lambda_rule": "fixed" if c.lam is not None else f"per-acceleration {list(c.lams)}",
            "cs_iterations": c.iterations,
            "cs_tol": c.tol,
            "cs_wavelet": c.wavelet,
            "cs_levels": c.levels,
            "cs_solver": c.solver,
            "cs_tv": c.tv,
            "cs_espirit": str(c.espirit),
        }
        return prov


class NiftiWriter:
    """Writer for :func:`mrirecon.reconstruct.reconstruct_folder` that saves ``.nii.gz``.

    ``writer(path, recon, attrs, mask)`` with ``path`` the submission path
    (``OUT/name.h5``) writes ``OUT/name.nii.gz`` instead (:func:`mrirecon.io.write_nifti`).
    The voxel size comes from the input file's ISMRMRD header (reconSpace field of view
    over matrix size), else 1 mm. Provenance attributes and the acquired mask columns are
    stored as a JSON comment extension.

    Args:
        input_dir: folder of the input files (their headers give the voxel size).

    Raises:
        ValueError: nibabel is not installed.
    """

    suffix = NIFTI_SUFFIX

    def __init__(self, input_dir: str | os.PathLike[str]) -> None:
        try:
            import nibabel  # noqa: F401
        except ImportError:
            raise ValueError(
                "--format nifti needs nibabel: pip install 'mrirecon[nifti]' (or pip install nibabel)"
            ) from None
        self.input_dir = Path(input_dir)

    def output_name(self, path: Path) -> str:
        """Output file name for an input file: ``name.h5`` -> ``name.nii.gz``."""
        stem = path.name[: -len(".h5")] if path.name.endswith(".h5") else path.name
        return stem + NIFTI_SUFFIX

    def is_complete(self, path: Path) -> bool:
        """A finished output (written atomically, so existing means complete)."""
        return Path(path).is_file()

    def voxel_size(self, source_file: str) -> tuple[float, float, float]:
        try:
            with h5py.File(self.input_dir / source_file, "r") as hf:
                if "ismrmrd_header" in hf:
                    raw = hf["ismrmrd_header"][()]
                    vs = voxel_size_from_header(raw if isinstance(raw, bytes | str) else bytes(raw))
                    if vs is not None:
                        return vs
        except OSError:
            pass
        return (1.0, 1.0, 1.0)

    def __call__(
        self,
        path: str | os.PathLike[str],
        recon: np.ndarray,
        attrs: dict[str, Any] | None = None,
        mask: np.ndarray | None = None,
    ) -> Path:
        path = Path(path)
        out = path if path.name.endswith(NIFTI_SUFFIX) else path.with_name(self.output_name(path))
        attrs = dict(attrs or {})
        source = str(attrs.get("source_file", path.name))
        vs = self.voxel_size(source)
        attrs["voxel_size_mm"] = list(vs)
        if mask is not None:
            attrs["mask_columns"] = np.flatnonzero(mask).tolist()
            attrs["mask_width"] = int(np.asarray(mask).size)
        return write_nifti(out, recon, vs, attrs)


FORMATS = ("h5", "nifti")


def output_writer(fmt: str, input_dir: str | os.PathLike[str]):
    """The reconstruct writer for an output format (``h5``: fastMRI submission files)."""
    if fmt == "h5":
        return write_reconstruction
    if fmt == "nifti":
        return NiftiWriter(input_dir)
    raise ValueError(f"unknown output format {fmt!r}; choose from {FORMATS}")


register_method("unet", UnetMethod)
register_method("cs", CSMethod)
