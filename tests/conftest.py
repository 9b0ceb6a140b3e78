"""Shared fixtures: small fastMRI-format files built from the real scans shipped in the package."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

HEADER_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <encoding>
    <encodedSpace><matrixSize><x>{ex}</x><y>{ey}</y><z>1</z></matrixSize></encodedSpace>
    <reconSpace><matrixSize><x>{rx}</x><y>{ry}</y><z>1</z></matrixSize></reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{kmax}</maximum><center>{kcenter}</center></kspace_encoding_step_1>
    </encodingLimits>
  </encoding>
</ismrmrdHeader>"""


def ismrmrd_header(
    enc: tuple[int, int], recon: tuple[int, int], acquired: int | None = None
) -> bytes:
    """A real ISMRMRD header for k-space (H, W) = enc and recon (h, w)."""
    width = enc[1]
    acquired = width if acquired is None else acquired
    return HEADER_TEMPLATE.format(
        ex=enc[0], ey=enc[1], rx=recon[0], ry=recon[1], kmax=acquired - 1, kcenter=acquired // 2
    ).encode()


def write_fastmri(
    path: Path,
    kspace: np.ndarray,
    target: np.ndarray | None = None,
    *,
    multicoil: bool,
    recon: tuple[int, int] | None = None,
    header: bool = True,
    mask: np.ndarray | None = None,
    attrs: dict | None = None,
) -> Path:
    """Write a fastMRI-format file (targets computed by the caller)."""
    with h5py.File(path, "w") as hf:
        hf.create_dataset("kspace", data=kspace)
        if target is not None:
            key = "reconstruction_rss" if multicoil else "reconstruction_esc"
            hf.create_dataset(key, data=target.astype(np.float32))
            hf.attrs["max"] = float(target.max())
            hf.attrs["norm"] = float(np.linalg.norm(target))
        if mask is not None:
            hf.create_dataset("mask", data=mask)
        if header:
            recon = recon or (target.shape[-2:] if target is not None else kspace.shape[-2:])
            hf.create_dataset("ismrmrd_header", data=ismrmrd_header(kspace.shape[-2:], recon))
        hf.attrs["acquisition"] = "TEST"
        for k, v in (attrs or {}).items():
            hf.attrs[k] = v
    return path


def real_scan_path() -> Path:
    from mrirecon.data.assets import asset_path

    return asset_path("tugraz_brain_t2_4ch.h5")


def real_kspace() -> np.ndarray:
    """The real TU Graz 4-coil k-space, (1, 4, 256, 256) complex64."""
    with h5py.File(real_scan_path(), "r") as hf:
        return np.asarray(hf["kspace"][()], dtype=np.complex64)


def make_volume(
    multicoil: bool, slices: int = 3, seed: int = 0, pad_w: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """A fastMRI-like volume from the real scan: 2x readout oversampling, phase padding.

    Slices differ by a random phase ramp and noise so they are not copies.
    Returns kspace ((S, C, H, W) or (S, H, W)) and its target (S, h, w), h = w = 128.
    """
    from mrirecon.fft import fft2c_np, ifft2c_np

    rng = np.random.default_rng(seed)
    coil_imgs = ifft2c_np(real_kspace()[0])  # (4, 256, 256)
    coil_imgs = coil_imgs[:, ::2, ::2]  # 128 x 128 field of view, real anatomy
    h = w = 128
    H, W = 2 * h, w + pad_w
    out_k, out_t = [], []
    for _ in range(slices):
        img = np.zeros((4, H, W), dtype=np.complex128)
        img[:, (H - h) // 2 : (H - h) // 2 + h, (W - w) // 2 : (W - w) // 2 + w] = coil_imgs
        img *= np.exp(1j * rng.uniform(-np.pi, np.pi))
        if not multicoil:
            img = img[:1] * 0 + np.sqrt((np.abs(img) ** 2).sum(0, keepdims=True)) * np.exp(
                1j * np.angle(img[:1])
            )
        k = fft2c_np(img)
        k = k + (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape)) * 1e-7
        full = ifft2c_np(k)[:, (H - h) // 2 : (H - h) // 2 + h, (W - w) // 2 : (W - w) // 2 + w]
        tgt = np.sqrt((np.abs(full) ** 2).sum(0))
        out_k.append(k if multicoil else k[0])
        out_t.append(tgt)
    return np.stack(out_k).astype(np.complex64), np.stack(out_t).astype(np.float32)


@pytest.fixture
def mc_file(tmp_path: Path) -> Path:
    k, t = make_volume(True, slices=2, seed=1)
    return write_fastmri(tmp_path / "file_mc_001.h5", k, t, multicoil=True)


@pytest.fixture
def sc_file(tmp_path: Path) -> Path:
    k, t = make_volume(False, slices=2, seed=2)
    return write_fastmri(tmp_path / "file_sc_001.h5", k, t, multicoil=False)


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread for every test.

    The tests' tensors are small, so extra threads buy nothing, and on a shared 2-core
    machine two OpenMP threads spin on a busy core and make tiny ops 10-20x slower.
    One thread also keeps results bitwise comparable with subprocess runs.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
