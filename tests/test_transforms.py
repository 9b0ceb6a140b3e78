"""Our dataset + transform against fastMRI's SliceDataset + UnetDataTransform."""

import numpy as np
import pytest
import torch

from mrirecon.data.dataset import SliceDataset
from mrirecon.data.masks import MaskSpec, eval_rng
from mrirecon.data.transforms import UnetTransform, fully_sampled_image, zero_filled
from mrirecon.fft import center_crop, ifft2c, rss


@pytest.mark.parametrize("which", ["mc_file", "sc_file"])
@pytest.mark.parametrize("pairs", [((0.08,), (4,)), ((0.08, 0.04), (4, 8))])
def test_transform_matches_fastmri(which, pairs, request):
    fm_data = pytest.importorskip("fastmri.data")
    from fastmri.data.subsample import RandomMaskFunc
    from fastmri.data.transforms import UnetDataTransform

    path = request.getfixturevalue(which)
    challenge = "multicoil" if which == "mc_file" else "singlecoil"
    cfs, accs = pairs
    ref_ds = fm_data.SliceDataset(
        root=path.parent,
        challenge=challenge,
        transform=UnetDataTransform(
            challenge, mask_func=RandomMaskFunc(list(cfs), list(accs)), use_seed=True
        ),
    )
    ours = SliceDataset(
        path.parent, transform=UnetTransform(MaskSpec("random", cfs, accs), mode="eval")
    )
    assert len(ours) == len(ref_ds) == 2
    for i in range(len(ours)):
        ref, got = ref_ds[i], ours[i]
        assert got.fname == ref.fname and got.slice_idx == ref.slice_num
        np.testing.assert_allclose(got.image[0].numpy(), ref.image.numpy(), atol=2e-5, rtol=1e-5)
        np.testing.assert_allclose(got.target[0].numpy(), ref.target.numpy(), atol=2e-5, rtol=1e-5)
        np.testing.assert_allclose(got.mean.item(), ref.mean.item(), rtol=1e-5)
        np.testing.assert_allclose(got.std.item(), ref.std.item(), rtol=1e-5)
        assert got.max_value.item() == pytest.approx(float(ref.max_value))
        # the un-normalised target is the stored one, uncropped here (already recon size)
        raw_target = ours.raw_slice(i).target
        np.testing.assert_array_equal(got.target_raw.numpy(), raw_target)
    ours.close()


def test_zero_filled_sparse_equals_dense(mc_file):
    ds = SliceDataset(mc_file.parent)
    raw = ds.raw_slice(0)
    k = torch.from_numpy(raw.kspace)
    mask = torch.from_numpy(
        MaskSpec("random", (0.08,), (4,)).sample(k.shape[-1], eval_rng("x.h5")).mask
    )
    dense = rss(center_crop(ifft2c(k * mask), (128, 128)))
    sparse = zero_filled(k, mask, (128, 128))
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6 * dense.max().item())
    full = fully_sampled_image(k, (128, 128))
    np.testing.assert_allclose(full.numpy(), raw.target, rtol=1e-4, atol=1e-5 * raw.target.max())
    ds.close()


def test_mask_operator_adjoint():
    # The column mask is a self-adjoint projection: <M x, y> = <x, M y> and M M = M.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 12, dtype=torch.complex64, generator=g)
    y = torch.randn(2, 16, 12, dtype=torch.complex64, generator=g)
    m = torch.from_numpy(MaskSpec("random", (0.25,), (2,)).sample(12, eval_rng("m.h5")).mask)
    assert torch.allclose(
        torch.vdot((x * m).flatten(), y.flatten()), torch.vdot(x.flatten(), (y * m).flatten())
    )
    assert torch.equal(x * m * m, x * m)


def test_train_mode_masks_vary_and_augment_recomputes_target(mc_file):
    def flip(k, rng):
        return torch.flip(k, dims=(-1,)) if rng.rand() < 2 else k

    ds = SliceDataset(
        mc_file.parent,
        transform=UnetTransform(MaskSpec("random", (0.08,), (4,)), mode="train", augment=flip),
    )
    a, b = ds[0], ds[1]
    assert not torch.equal(a.mask, b.mask)
    ds.set_epoch(1)
    assert not torch.equal(ds[0].mask, a.mask)
    ds.set_epoch(0)
    assert torch.equal(ds[0].mask, a.mask)
    # flipping k-space columns flips the image left-right (about the fftshift centre): target recomputed
    plain = SliceDataset(
        mc_file.parent, transform=UnetTransform(MaskSpec("random", (0.08,), (4,)), mode="eval")
    )
    assert not torch.allclose(a.target_raw, plain[0].target_raw)
    ds.close()
    plain.close()


def test_test_file_mask_is_used(tmp_path):
    from tests.conftest import make_volume, write_fastmri

    k, _ = make_volume(True, slices=1)
    file_mask = np.zeros(k.shape[-1], dtype=bool)
    file_mask[::3] = True
    k = k * file_mask
    write_fastmri(tmp_path / "test.h5", k, None, multicoil=True, recon=(128, 128), mask=file_mask)
    ds = SliceDataset(
        tmp_path, transform=UnetTransform(MaskSpec("random", (0.08,), (4,)), mode="eval")
    )
    s = ds[0]
    assert np.array_equal(s.mask.numpy(), file_mask)
    assert s.image.shape == (1, 128, 128) and s.target_raw.abs().sum() == 0
    ds.close()


@pytest.mark.parametrize(
    "shape,crop", [((3, 37, 29), (17, 11)), ((1, 40, 31), (20, 20)), ((2, 33, 48), (33, 47))]
)
def test_zero_filled_odd_sizes(shape, crop):
    g = torch.Generator().manual_seed(1)
    k = torch.randn(*shape, dtype=torch.complex64, generator=g)
    mask = torch.rand(shape[-1], generator=g) < 0.4
    mask[shape[-1] // 2] = True
    dense = rss(center_crop(ifft2c(k * mask), crop))
    torch.testing.assert_close(zero_filled(k, mask, crop), dense, rtol=1e-5, atol=1e-6)
