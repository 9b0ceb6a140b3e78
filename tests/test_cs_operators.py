"""Adjoint tests of the CS operators: M F S, its normal operator, the full A W^H, TV differences."""

from __future__ import annotations

import torch

from mrirecon.cs.operators import (
    NormalOp,
    grad2d,
    grad2d_adjoint,
    power_iteration,
    sense_adjoint,
    sense_forward,
)
from mrirecon.cs.wavelet import Wavelet2D


def _rand(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.complex64)


def _dot(a, b):
    return (a.conj() * b).sum()


def _mask(width, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(width, generator=g) < 0.4
    m[width // 2 - 2 : width // 2 + 2] = True
    return m


def test_sense_adjoint_multicoil_and_single_coil():
    b, c, h, w = 2, 3, 16, 12
    maps, mask = _rand((b, c, h, w), 0), _mask(w, 1)
    x, y = _rand((b, h, w), 2), _rand((b, c, h, w), 3)
    torch.testing.assert_close(
        _dot(sense_forward(x, maps, mask), y),
        _dot(x, sense_adjoint(y, maps, mask)),
        rtol=1e-5,
        atol=1e-3,
    )
    y1 = _rand((b, 1, h, w), 4)
    torch.testing.assert_close(
        _dot(sense_forward(x, None, mask), y1),
        _dot(x, sense_adjoint(y1, None, mask)),
        rtol=1e-5,
        atol=1e-3,
    )


def test_single_coil_full_sampling_is_unitary():
    x = _rand((2, 16, 12), 5)
    full = torch.ones(12, dtype=torch.bool)
    torch.testing.assert_close(
        sense_adjoint(sense_forward(x, None, full), None, full), x, atol=1e-5, rtol=0
    )


def test_normal_operator_equals_ah_a_including_padding():
    b, c, h, w = 2, 4, 14, 10
    maps, mask = _rand((b, c, h, w), 6), torch.stack([_mask(w, 7), _mask(w, 8)])
    x = _rand((b, h, w), 9)
    direct = sense_adjoint(sense_forward(x, maps, mask), maps, mask)
    torch.testing.assert_close(
        NormalOp(maps, mask, b, (h, w), (h, w))(x), direct, atol=1e-4, rtol=1e-5
    )
    # on a padded grid the operator is P A^H A P^T
    op = NormalOp(maps, mask, b, (h, w), (16, 16))
    xp = _rand((b, 16, 16), 10)
    out = op(xp)
    torch.testing.assert_close(
        out[..., :h, :w],
        sense_adjoint(sense_forward(xp[..., :h, :w], maps, mask), maps, mask),
        atol=1e-4,
        rtol=1e-5,
    )
    assert out[..., h:, :].abs().max() == 0 and out[..., :, w:].abs().max() == 0
    # self-adjoint
    yp = _rand((b, 16, 16), 11)
    torch.testing.assert_close(_dot(op(xp), yp), _dot(xp, op(yp)), rtol=1e-5, atol=1e-3)


def test_full_forward_operator_adjoint():
    """A W^H (wavelet coefficients -> k-space) against W A^H."""
    b, c, h, w = 1, 2, 32, 32
    maps, mask = _rand((b, c, h, w), 12), _mask(w, 13)
    wav = Wavelet2D((h, w), "db4", 2)
    coeffs = _rand((b, h * w), 14)
    y = _rand((b, c, h, w), 15)
    fwd = sense_forward(wav.adjoint(wav.unflatten(coeffs)), maps, mask)
    adj = Wavelet2D.flatten(wav.forward(sense_adjoint(y, maps, mask)))
    torch.testing.assert_close(_dot(fwd, y), _dot(coeffs, adj), rtol=1e-5, atol=1e-3)


def test_tv_differences_adjoint():
    x, p = _rand((2, 9, 7), 16), _rand((2, 2, 9, 7), 17)
    torch.testing.assert_close(_dot(grad2d(x), p), _dot(x, grad2d_adjoint(p)), rtol=1e-5, atol=1e-4)


def test_power_iteration_finds_largest_eigenvalue():
    diag = torch.tensor([[0.5, 2.0, 1.0], [3.0, 0.1, 0.2]]).to(torch.complex64)[:, :, None]
    est = power_iteration(
        lambda v: v * diag, (2, 3, 1), 50, torch.Generator().manual_seed(0), torch.device("cpu")
    )
    torch.testing.assert_close(est, torch.tensor([2.0, 3.0]), rtol=1e-3, atol=0)
    # single coil with a column mask: A^H A is a projection, L = 1
    op = NormalOp(None, _mask(12, 18), 1, (16, 12), (16, 12))
    est = power_iteration(
        op, (1, 16, 12), 10, torch.Generator().manual_seed(1), torch.device("cpu")
    )
    torch.testing.assert_close(est, torch.ones(1), rtol=1e-3, atol=0)
