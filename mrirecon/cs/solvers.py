"""First-order solvers for ``min_x 1/2 ||A x - y||^2 + lam ||W x||_1 (+ mu TV(x))``.

- :func:`fista`: FISTA (Beck A, Teboulle M. "A fast iterative shrinkage-thresholding
  algorithm for linear inverse problems." SIAM J Imaging Sci 2(1):183-202, 2009) with
  step 1/L; the proximal map of the l1 norm of an orthonormal wavelet transform is
  exact: ``W^H soft(W x)``. Optional gradient-based adaptive restart (O'Donoghue B,
  Candes E. "Adaptive restart for accelerated gradient schemes." Found Comput Math
  15:715-732, 2015).
- :func:`condat_vu`: for an added isotropic total-variation term, the primal-dual
  forward-backward method of Condat (J Optim Theory Appl 158:460-479, 2013) and Vu
  (Adv Comput Math 38:667-681, 2013): a gradient step on the data term, the exact
  wavelet prox, and a dual ascent step for TV, no inner loops.

Everything is batched: per-slice step sizes, weights and convergence tests, one
tensor per batch, on whatever device the tensors live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from mrirecon.cs.operators import grad2d, grad2d_adjoint
from mrirecon.cs.wavelet import Wavelet2D, soft_threshold

__all__ = ["Problem", "SolveInfo", "prox_l1_wavelet", "fista", "condat_vu"]


class Problem(NamedTuple):
    """A batched CS problem in the variable's domain.

    Attributes:
        normal: u -> A^H A u.
        aty: A^H y, (B, Hp, Wp) complex.
        wavelet: the orthonormal transform W.
        spectrum: True when the variable is the image's orthonormal 2-D DFT (single
            coil, unpadded: A^H A is then a diagonal mask), False for images.
        diag: when A^H A is diagonal, its diagonal (broadcastable to ``aty``); lets the
            solvers fuse the gradient step into one pass.
    """

    normal: Callable[[torch.Tensor], torch.Tensor]
    aty: torch.Tensor
    wavelet: Wavelet2D
    spectrum: bool = False
    diag: torch.Tensor | None = None

    def analysis(self, u: torch.Tensor) -> list[torch.Tensor]:
        return self.wavelet.forward_spectrum(u) if self.spectrum else self.wavelet.forward(u)

    def synthesis(self, coeffs: list[torch.Tensor]) -> torch.Tensor:
        w = self.wavelet
        return w.adjoint_spectrum(coeffs) if self.spectrum else w.adjoint(coeffs)

    def image(self, u: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(u, norm="ortho") if self.spectrum else u

    def variable(self, image: torch.Tensor) -> torch.Tensor:
        """The variable of an image (inverse of :meth:`image`)."""
        return torch.fft.fft2(image, norm="ortho") if self.spectrum else image


class SolveInfo(NamedTuple):
    """Iterations run and the last per-slice relative change ||x_k - x_k-1|| / ||x_k||."""

    iterations: int
    rel_change: torch.Tensor


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def prox_l1_wavelet(problem: Problem, u: torch.Tensor, thresh: torch.Tensor) -> torch.Tensor:
    """Exact prox of ``t ||W x||_1`` for orthonormal W: ``W^H soft(W u, t)``; t is (B,)."""
    coeffs = problem.analysis(u)
    return problem.synthesis([soft_threshold(c, _bcast(thresh, c)) for c in coeffs])


def _rel_change(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(1, new.dim()))
    num = torch.linalg.vector_norm(new - old, dim=dims)
    return num / torch.linalg.vector_norm(new, dim=dims).clamp_min(1e-30)


def fista(
    problem: Problem,
    lam: torch.Tensor,
    lipschitz: torch.Tensor,
    iterations: int,
    tol: float = 0.0,
    restart: bool = False,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    x0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SolveInfo]:
    """FISTA for ``1/2 ||A x - y||^2 + lam ||W x||_1``, batched.

    Args:
        problem: operators and data.
        lam: (B,) l1 weights.
        lipschitz: (B,) Lipschitz constants of the data gradient (step 1/L).
        iterations: maximum number of iterations.
        tol: stop when every slice's relative change is below tol (0 = never).
        restart: gradient-based adaptive restart of the momentum per slice.
        callback: called as ``callback(k, x_k)`` after every iteration (e.g. to log the
            objective).
        x0: warm start in the variable domain (None = zeros).

    Returns:
        the solution (variable domain, like ``problem.aty``) and :class:`SolveInfo`.
    """
    aty = problem.aty
    step = _bcast(1.0 / lipschitz, aty)
    thresh = lam / lipschitz
    step_aty = step * aty
    # z - step (A^H A z - A^H y) = step A^H y + z (1 - step diag) when A^H A is diagonal
    keep = None if problem.diag is None else (1 - step * problem.diag).to(aty.dtype)
    x = torch.zeros_like(aty) if x0 is None else x0.to(aty.dtype)
    z = x
    t = torch.ones(aty.shape[0], device=aty.device)
    rel = torch.full_like(t, float("inf"))
    done = 0
    for k in range(iterations):
        if keep is not None:
            v = torch.addcmul(step_aty, z, keep)
        else:
            v = torch.addcmul(z + step_aty, problem.normal(z), step, value=-1)
        x_new = prox_l1_wavelet(problem, v, thresh)
        t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        if restart:
            # Restart where the momentum points uphill: Re<z - x_new, x_new - x> > 0.
            uphill = ((z - x_new).conj() * (x_new - x)).real.sum(dim=(1, 2)) > 0
            t = torch.where(uphill, torch.ones_like(t), t)
            t_new = torch.where(uphill, torch.ones_like(t_new), t_new)
        # z = x_new + (t - 1) / t_new (x_new - x), one fused pass
        z = torch.lerp(x, x_new, _bcast(1 + (t - 1) / t_new, aty).to(aty.dtype))
        if tol > 0:
            rel = _rel_change(x_new, x)
        x, t, done = x_new, t_new, k + 1
        if callback is not None:
            callback(done, x)
        if tol > 0 and bool((rel < tol).all()):
            break
    if tol <= 0 and done:
        rel = torch.full_like(t, float("nan"))
    return x, SolveInfo(done, rel)


def condat_vu(
    problem: Problem,
    lam: torch.Tensor,
    lipschitz: torch.Tensor,
    iterations: int,
    tv: torch.Tensor,
    tol: float = 0.0,
    callback: Callable[[int, torch.Tensor], None] | None = None,
    x0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SolveInfo]:
    """Primal-dual forward-backward for ``1/2 ||A x - y||^2 + lam ||W x||_1 + tv TV(x)``.

    TV is isotropic over complex images, ``sum_px sqrt(|D_h x|^2 + |D_w x|^2)`` with
    periodic differences (||D||^2 <= 8). Steps ``tau = 1/L``, ``sigma = L/16`` satisfy
    Condat's condition ``1/tau - sigma ||D||^2 >= L/2``.

    Args:
        problem: operators and data (image domain only).
        lam: (B,) l1-wavelet weights.
        lipschitz: (B,) Lipschitz constants of the data gradient.
        iterations: maximum number of iterations.
        tv: (B,) TV weights.
        tol: relative-change stopping tolerance (0 = fixed iterations).
        callback: called as ``callback(k, x_k)`` after every iteration.
        x0: warm start image (None = zeros).

    Returns:
        the solution image and :class:`SolveInfo`.
    """
    if problem.spectrum:
        raise ValueError("condat_vu needs an image-domain problem")
    aty = problem.aty
    tau = _bcast(1.0 / lipschitz, aty)
    sigma = (lipschitz / 16.0).reshape(-1, 1, 1, 1)
    radius = tv.reshape(-1, 1, 1)
    x = torch.zeros_like(aty) if x0 is None else x0.to(aty.dtype)
    dual = torch.zeros(aty.shape[0], 2, *aty.shape[1:], dtype=aty.dtype, device=aty.device)
    rel = torch.full((aty.shape[0],), float("nan"), device=aty.device)
    done = 0
    for k in range(iterations):
        grad = problem.normal(x) - aty + grad2d_adjoint(dual)
        x_new = prox_l1_wavelet(problem, x - tau * grad, lam / lipschitz)
        dual = dual + sigma * grad2d(2 * x_new - x)
        norm = torch.sqrt((dual.abs() ** 2).sum(dim=1))
        dual = dual / torch.maximum(norm / radius.clamp_min(1e-30), torch.ones_like(norm))[:, None]
        if tol > 0:
            rel = _rel_change(x_new, x)
        x, done = x_new, k + 1
        if callback is not None:
            callback(done, x)
        if tol > 0 and bool((rel < tol).all()):
            break
    return x, SolveInfo(done, rel)
