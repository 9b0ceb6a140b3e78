"""U-Net: gradients, every normalisation, odd/small sizes, fastMRI weight parity."""

from __future__ import annotations

import fastmri.models.unet as fastmri_unet
import pytest
import torch

from mrirecon.models import NORMS, Unet, UnetConfig


def test_gradcheck_tiny_unet_float64():
    torch.manual_seed(0)
    net = Unet(1, 1, chans=2, num_pool_layers=2, norm="group", num_groups=2).double()
    x = torch.randn(1, 1, 7, 6, dtype=torch.float64, requires_grad=True)
    w = net.up_conv[-1][1].weight.detach().clone().requires_grad_(True)
    params = dict(net.named_parameters())

    def f(x, w):
        return torch.func.functional_call(net, {**params, "up_conv.1.1.weight": w}, (x,))

    assert torch.autograd.gradcheck(f, (x, w), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("norm", sorted(NORMS))
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (33, 31), (40, 64), (45, 50)])
def test_every_norm_any_size_finite(norm, size):
    torch.manual_seed(1)
    net = Unet(1, 2, chans=4, num_pool_layers=4, norm=norm, num_groups=2)
    x = torch.randn(2, 1, *size)
    for mode in (net.train, net.eval):
        mode()
        y = net(x)
        assert y.shape == (2, 2, *size)
        assert torch.isfinite(y).all()
    y.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("size", [(64, 48), (50, 45), (33, 97)])
def test_fastmri_state_dict_parity(size):
    """norm=instance loads fastmri.models.Unet weights and matches its output to 1e-5."""
    torch.manual_seed(2)
    ref = fastmri_unet.Unet(in_chans=2, out_chans=2, chans=8, num_pool_layers=4, drop_prob=0.0)
    ours = Unet(2, 2, chans=8, num_pool_layers=4, drop_prob=0.0, norm="instance")
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(3, 2, *size)
    for mode in ("train", "eval"):
        ref.train(mode == "train")
        ours.train(mode == "train")
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_groupnorm_default_and_config_build():
    cfg = UnetConfig(chans=8, num_groups=4)
    net = cfg.build()
    assert isinstance(net.down_sample_layers[0].layers[1], torch.nn.GroupNorm)
    assert net.down_sample_layers[0].layers[1].num_groups == 4
    assert net.down_sample_layers[0].layers[0].bias is None  # norm follows the conv
    assert Unet(norm="none", chans=4).down_sample_layers[0].layers[0].bias is not None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"norm": "layer"}, "unknown norm"),
        ({"activation": "tanh"}, "unknown activation"),
        ({"chans": 12, "num_groups": 8}, "must divide"),
        ({"drop_prob": 1.0}, "drop_prob"),
        ({"chans": 0}, ">= 1"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Unet(**kwargs)


def test_wrong_input_channels_raise():
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W\)"):
        Unet(chans=4, num_groups=2)(torch.zeros(1, 2, 32, 32))
