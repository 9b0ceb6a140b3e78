import numpy as np
import pytest
import torch

from mrirecon.fft import center_crop, crop_slices, fft2c, ifft2c, ifft_readout, rss


def _rand(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.complex64, generator=g)


@pytest.mark.parametrize("shape", [(8, 8), (3, 16, 10), (2, 3, 17, 9)])
def test_fft2c_matches_numpy(shape):
    x = _rand(shape)
    ref = np.fft.fftshift(
        np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(fft2c(x).numpy(), ref, rtol=1e-5, atol=1e-5)
    ref_inv = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(ifft2c(x).numpy(), ref_inv, rtol=1e-5, atol=1e-5)


def test_fft2c_unitary_and_adjoint():
    x, y = _rand((2, 15, 12), 1), _rand((2, 15, 12), 2)
    # <F x, y> == <x, F^H y>
    lhs = torch.vdot(fft2c(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), ifft2c(y).flatten())
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-4)
    assert torch.allclose(ifft2c(fft2c(x)), x, atol=1e-5)
    assert torch.allclose(
        torch.linalg.vector_norm(fft2c(x)), torch.linalg.vector_norm(x), rtol=1e-5
    )


def test_fft_matches_fastmri():
    fastmri = pytest.importorskip("fastmri")
    x = _rand((4, 20, 14))
    ours = ifft2c(x)
    ref = torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(x)).contiguous())
    assert torch.allclose(ours, ref, atol=1e-6)


def test_fft_rejects_real():
    with pytest.raises(ValueError, match="complex"):
        fft2c(torch.zeros(4, 4))


def test_rss_and_crop():
    x = _rand((3, 4, 10, 9))
    r = rss(x)
    assert r.shape == (3, 10, 9)
    np.testing.assert_allclose(r.numpy(), np.sqrt((np.abs(x.numpy()) ** 2).sum(1)), rtol=1e-5)
    c = center_crop(x, (4, 5))
    # fastMRI rule: start = (dim - crop) // 2
    assert torch.equal(c, x[..., 3:7, 2:7])
    assert center_crop(np.zeros((7, 8)), (3, 3)).shape == (3, 3)
    assert crop_slices((640, 368), (320, 320)) == (slice(160, 480), slice(24, 344))
    with pytest.raises(ValueError, match="cannot centre-crop"):
        center_crop(x, (11, 2))


def test_ifft_readout_is_the_readout_half_of_ifft2c_with_rows_cropped():
    gen = torch.Generator().manual_seed(3)
    k = torch.randn(2, 3, 19, 8, dtype=torch.complex64, generator=gen)  # odd readout length
    # along the readout only: ifft2c of k equals the phase-encode ifft of ifft_readout(k)
    cols = torch.fft.fftshift(
        torch.fft.ifft(torch.fft.ifftshift(ifft_readout(k), dim=-1), dim=-1, norm="ortho"), dim=-1
    )
    torch.testing.assert_close(cols, ifft2c(k), atol=1e-5, rtol=0)
    rows = crop_slices(k.shape, (7, 8))[0]
    torch.testing.assert_close(ifft_readout(k, rows), ifft_readout(k)[..., rows, :])
