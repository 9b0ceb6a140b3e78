"""FISTA / Condat-Vu: known minimisers, objective decrease, stopping, batching, padding."""

from __future__ import annotations

import pytest
import torch

from mrirecon.cs.config import CSConfig
from mrirecon.cs.recon import cs_objective, padded_shape, solve_batch
from mrirecon.cs.solvers import Problem, fista
from mrirecon.cs.volume import cs_reconstruct
from mrirecon.cs.wavelet import Wavelet2D, soft_threshold
from mrirecon.fft import fft2c, ifft2c


def _rand(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.complex64)


class _Identity:
    """W = I, to test FISTA on a problem with a pixelwise closed-form minimiser."""

    def forward(self, x):
        return [x]

    def adjoint(self, coeffs):
        return coeffs[0]


def _phantom_kspace(batch=1, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.zeros(batch, size, size, dtype=torch.complex64)
    img[:, 8:24, 10:22] = 1.0
    img[:, 12:16, 12:16] = 2.0 + 1j
    img = img + 0.05 * torch.randn(img.shape, generator=g, dtype=torch.complex64)
    return fft2c(img)[:, None]


def test_fista_reaches_closed_form_minimiser_with_identity_w():
    # min 1/2 ||D x - y||^2 + lam ||x||_1 with D diagonal >0 is separable:
    # x_i = soft(d_i y_i, lam) / d_i^2.
    d = torch.linspace(0.3, 1.0, 64).reshape(1, 8, 8)
    y = _rand((1, 8, 8), 1)
    lam = torch.tensor([0.4])
    problem = Problem(lambda u: d * d * u, d * y, _Identity())  # type: ignore[arg-type]
    x, info = fista(problem, lam, torch.tensor([1.0]), iterations=400)
    expected = soft_threshold(d * y, 0.4) / (d * d)
    torch.testing.assert_close(x, expected.to(torch.complex64), atol=1e-4, rtol=0)
    assert info.iterations == 400


def test_fully_sampled_single_coil_is_wavelet_soft_threshold():
    """A = F (unitary): the minimiser is W^H soft(W F^H y, lam s), s the scale used."""
    k = _phantom_kspace()
    full = torch.ones(32, dtype=torch.bool)
    cfg = CSConfig(levels=2, iterations=20)
    out = solve_batch(k, full, 0.05, cfg).image
    x0 = ifft2c(k[:, 0])
    s = x0.abs().max()
    w = Wavelet2D((32, 32), "db4", 2)
    expected = w.adjoint([soft_threshold(c, 0.05 * s) for c in w.forward(x0)])
    torch.testing.assert_close(out, expected, atol=1e-4 * float(s), rtol=0)


def test_objective_decreases_and_converges():
    k = _phantom_kspace(batch=2, seed=3)
    mask = torch.zeros(32, dtype=torch.bool)
    mask[::3] = True
    mask[13:19] = True
    cfg = CSConfig(levels=2)
    wav = Wavelet2D((32, 32), "db4", 2)
    lam = 0.02
    values = []
    ref = solve_batch(k, mask, lam, cfg.replace(iterations=1))
    s = ifft2c(k[:, 0] * mask).abs().amax(dim=(1, 2))
    for it in (1, 3, 10, 30, 100, 300):
        x = solve_batch(k, mask, lam, cfg.replace(iterations=it)).image
        values.append(cs_objective(x, k, mask, None, lam * s, wav))
    v = torch.stack(values)  # (iterations, batch)
    diffs = v[1:] - v[:-1]
    assert (diffs.mean(dim=0) < 0).all()  # decreases on average
    assert (v[-1] < v[0]).all()
    assert ((v[-2] - v[-1]).abs() / v[-1] < 1e-3).all()  # converged
    assert ref.info.iterations == 1


def test_tolerance_stops_early_and_batch_equals_single():
    k = _phantom_kspace(batch=3, seed=4)
    mask = torch.zeros(32, dtype=torch.bool)
    mask[::2] = True
    mask[14:18] = True
    cfg = CSConfig(levels=2, iterations=500, tol=1e-3)
    res = solve_batch(k, mask, 0.01, cfg)
    assert res.info.iterations < 500 and (res.info.rel_change < 1e-3).all()
    single = solve_batch(k[1:2], mask, 0.01, cfg.replace(tol=0.0, iterations=30)).image
    batch = solve_batch(k, mask, 0.01, cfg.replace(tol=0.0, iterations=30)).image
    torch.testing.assert_close(batch[1:2], single, atol=1e-5, rtol=1e-4)


def test_scale_invariance_of_relative_lambda():
    k = _phantom_kspace(seed=5)
    mask = torch.zeros(32, dtype=torch.bool)
    mask[::2] = True
    cfg = CSConfig(levels=2, iterations=20)
    a = solve_batch(k, mask, 0.02, cfg).image
    b = solve_batch(k * 1e-5, mask, 0.02, cfg).image
    torch.testing.assert_close(b * 1e5, a, atol=1e-4 * float(a.abs().max()), rtol=0)


def test_tv_term_decreases_its_objective():
    k = _phantom_kspace(seed=6)
    mask = torch.zeros(32, dtype=torch.bool)
    mask[::2] = True
    mask[14:18] = True
    wav = Wavelet2D((32, 32), "db4", 2)
    s = ifft2c(k[:, 0] * mask).abs().max()
    lam, tv = 0.01, 0.02
    problem_vals = []
    for it in (5, 30, 150):
        x = solve_batch(k, mask, lam, CSConfig(levels=2, iterations=it, tv=tv)).image
        problem_vals.append(float(cs_objective(x, k, mask, None, lam * s, wav, tv * s)))
    assert problem_vals[2] < problem_vals[1] < problem_vals[0]
    # the TV solution has less total variation than the wavelet-only one
    x_tv = solve_batch(k, mask, lam, CSConfig(levels=2, iterations=150, tv=tv)).image
    x_w = solve_batch(k, mask, lam, CSConfig(levels=2, iterations=150)).image

    def tv_of(x):
        with_tv = cs_objective(x, k, mask, None, 0.0, wav, 1.0)
        return float(with_tv - cs_objective(x, k, mask, None, 0.0, wav))

    assert tv_of(x_tv) < tv_of(x_w)
    # Condat-Vu with tv ~ 0 solves the same problem as FISTA: same objective value
    x_cv = solve_batch(k, mask, lam, CSConfig(levels=2, iterations=300, tv=1e-12)).image
    f_cv, f_w = (float(cs_objective(x, k, mask, None, lam * s, wav)) for x in (x_cv, x_w))
    assert abs(f_cv - f_w) / f_w < 1e-2


def test_padding_and_crop_single_coil_volume():
    # 36 x 20 is not a multiple of 2**levels: the variable is padded to 40 x 24.
    assert padded_shape((36, 20), 3) == (40, 24)
    img = torch.zeros(2, 36, 20, dtype=torch.complex64)
    img[:, 14:22, 8:11] = 1.0
    k = fft2c(img)[:, None]
    mask = torch.zeros(20, dtype=torch.bool)
    mask[::2] = True
    mask[8:12] = True
    out = cs_reconstruct(k, mask, (32, 16), CSConfig(levels=3, iterations=50, lam=1e-2)).image
    assert out.shape == (2, 32, 16) and out.dtype == torch.float32
    target = img.abs()[:, 2:34, 2:18]
    zf = ifft2c(k[:, 0] * mask).abs()[:, 2:34, 2:18]
    err, err_zf = float((out - target).norm()), float((zf - target).norm())
    assert err < 0.75 * err_zf  # measured 0.61


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    k = _phantom_kspace(batch=2, seed=7)
    k = torch.cat([k, k.roll(3, dims=-1)], dim=1)  # two "coils" -> ESPIRiT on the device
    mask = torch.zeros(32, dtype=torch.bool)
    mask[::2] = True
    mask[12:20] = True
    cfg = CSConfig(levels=2, iterations=30)
    cpu = solve_batch(k, mask, 0.01, cfg).image
    with torch.autocast("cuda", dtype=torch.bfloat16):  # the solver must ignore autocast
        gpu = solve_batch(k.cuda(), mask.cuda(), 0.01, cfg).image.cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-3 * float(cpu.abs().max()), rtol=0)
