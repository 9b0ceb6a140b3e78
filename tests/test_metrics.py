import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from mrirecon.metrics import nmse, psnr, ssim, ssim_torch, volume_metrics
from tests.conftest import make_volume


def _pair(seed=0):
    _, target = make_volume(True, slices=3, seed=seed)
    rng = np.random.default_rng(seed)
    pred = target + rng.normal(0, 0.05 * target.max(), target.shape).astype(np.float32)
    return target, pred


def test_metrics_equal_fastmri_evaluate():
    ev = pytest.importorskip("fastmri.evaluate")
    gt, pred = _pair()
    m = volume_metrics(gt, pred)
    assert abs(m.nmse - float(ev.nmse(gt, pred))) < 1e-6
    assert abs(m.psnr - float(ev.psnr(gt, pred))) < 1e-6
    assert abs(m.ssim - np.asarray(ev.ssim(gt, pred)).item()) < 1e-6
    assert 0 < m.ssim < 1 and m.nmse > 0


def test_metrics_detect_quality():
    gt, pred = _pair()
    worse = gt + 3 * (pred - gt)
    assert ssim(gt, pred) > ssim(gt, worse)
    assert psnr(gt, pred) > psnr(gt, worse)
    assert nmse(gt, pred) < nmse(gt, worse)
    assert ssim(gt, gt) == pytest.approx(1.0)


def test_ssim_uses_volume_max_not_slice_max():
    gt, pred = _pair()
    per_slice = np.mean(
        [structural_similarity(gt[i], pred[i], data_range=gt[i].max()) for i in range(len(gt))]
    )
    assert ssim(gt, pred) == pytest.approx(
        np.mean(
            [structural_similarity(gt[i], pred[i], data_range=gt.max()) for i in range(len(gt))]
        )
    )
    assert ssim(gt, pred) != pytest.approx(per_slice, abs=1e-7)


def test_torch_ssim_equals_skimage():
    gt, pred = _pair(1)
    ours = ssim_torch(torch.from_numpy(gt), torch.from_numpy(pred), float(gt.max()))
    ref = [
        structural_similarity(gt[i], pred[i], data_range=float(gt.max())) for i in range(len(gt))
    ]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)
    ours64 = ssim_torch(
        torch.from_numpy(gt).double(), torch.from_numpy(pred).double(), float(gt.max())
    )
    np.testing.assert_allclose(ours64.numpy(), ref, atol=1e-6)


def test_torch_ssim_differentiable():
    gt, pred = _pair(2)
    p = torch.from_numpy(pred[:1]).double().requires_grad_()
    loss = 1 - ssim_torch(torch.from_numpy(gt[:1]).double(), p, float(gt.max())).mean()
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_metric_input_errors():
    gt, pred = _pair()
    with pytest.raises(ValueError, match="shape mismatch"):
        volume_metrics(gt, pred[:, :10])
    with pytest.raises(ValueError, match="volumes"):
        volume_metrics(gt[0], pred[0])
    bad = pred.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        volume_metrics(gt, bad)
