"""The orthonormal wavelet W of the CS baseline: W^H W = W W^H = I, adjoint, PyWavelets parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrirecon.cs.wavelet import WAVELETS, Wavelet2D, filters, soft_threshold


def _rand(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.complex64)


@pytest.mark.parametrize("name", sorted(WAVELETS))
def test_filters_are_orthonormal_daubechies_banks(name):
    lo, hi = filters(name)
    assert torch.isclose(lo.sum(), torch.tensor(2.0, dtype=torch.float64).sqrt())
    for m in range(len(lo) // 2):  # shifts by 2 are orthonormal (sum h[k] h[k + 2m] = delta)
        dot = (lo[2 * m :] * lo[: len(lo) - 2 * m]).sum()
        assert abs(float(dot) - (1.0 if m == 0 else 0.0)) < 1e-10
    assert abs(float(hi.sum())) < 1e-10  # the high-pass kills constants


@pytest.mark.parametrize(
    "name,levels,shape", [("db4", 4, (64, 48)), ("haar", 2, (8, 12)), ("sym4", 3, (32, 32))]
)
def test_w_is_orthonormal(name, levels, shape):
    w = Wavelet2D(shape, name, levels)
    x = _rand((3, *shape))
    coeffs = w.forward(x)
    flat = Wavelet2D.flatten(coeffs)
    assert flat.shape == (3, shape[0] * shape[1])
    # W^H W = I and norm preservation
    torch.testing.assert_close(w.adjoint(coeffs), x, atol=2e-5, rtol=0)
    torch.testing.assert_close(
        torch.linalg.vector_norm(flat, dim=-1),
        torch.linalg.vector_norm(x.reshape(3, -1), dim=-1),
        rtol=1e-5,
        atol=0,
    )
    # W W^H = I on the coefficient side
    c = _rand(flat.shape, seed=1)
    back = Wavelet2D.flatten(w.forward(w.adjoint(w.unflatten(c))))
    torch.testing.assert_close(back, c, atol=2e-5, rtol=0)


def test_w_adjoint_inner_products():
    w = Wavelet2D((32, 64), "db4", 3)
    x, c = _rand((2, 32, 64)), _rand((2, 32 * 64), seed=2)
    lhs = (Wavelet2D.flatten(w.forward(x)).conj() * c).sum()
    rhs = (x.conj() * w.adjoint(w.unflatten(c))).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-5, atol=1e-3)


def test_matches_pywavelets_periodization():
    pywt = pytest.importorskip("pywt")
    x = np.random.RandomState(0).randn(2, 64, 96)
    w = Wavelet2D((64, 96), "db4", 3, shift=len(WAVELETS["db4"]) // 2)
    ours = w.forward(torch.from_numpy(x))
    ref = pywt.wavedec2(x, "db4", mode="periodization", level=3)
    np.testing.assert_allclose(ours[0].real.numpy(), ref[0], atol=1e-5)
    for lev in range(1, 4):
        np.testing.assert_allclose(ours[lev].real.numpy(), np.stack(ref[lev], axis=-3), atol=1e-5)


def test_default_phase_matches_sigpy_zero_mode_away_from_border():
    """sigpy's wavelet is pywt db4 with zero padding; interior coefficients coincide."""
    pywt = pytest.importorskip("pywt")
    x = np.zeros((64, 64))
    x[20:44, 20:44] = np.random.RandomState(1).randn(24, 24)  # support far from the border
    ours = Wavelet2D((64, 64), "db4", 2).forward(torch.from_numpy(x))
    ref = pywt.wavedec2(x, "db4", mode="zero", level=2)
    h, w = ours[0].shape[-2:]
    np.testing.assert_allclose(ours[0].real.numpy(), ref[0][:h, :w], atol=1e-5)
    for lev in (1, 2):
        h, w = ours[lev].shape[-2:]
        ref_bands = np.stack([b[:h, :w] for b in ref[lev]], axis=-3)
        np.testing.assert_allclose(ours[lev].real.numpy(), ref_bands, atol=1e-5)


def test_soft_threshold_on_complex_magnitude():
    z = torch.tensor([3 + 4j, 0.3 + 0.4j, -2.0 + 0j, 0j], dtype=torch.complex64)
    out = soft_threshold(z, 1.0)
    expected = torch.tensor([(3 + 4j) * 0.8, 0, -1.0, 0], dtype=torch.complex64)
    torch.testing.assert_close(out, expected)


def test_rejects_bad_shapes_and_names():
    with pytest.raises(ValueError, match="divisible"):
        Wavelet2D((100, 64), "db4", 4)
    with pytest.raises(ValueError, match="unknown wavelet"):
        Wavelet2D((64, 64), "db99", 2)
    with pytest.raises(ValueError, match="levels"):
        Wavelet2D((64, 64), "db4", 0)
