"""E2E-VarNet: fastMRI parity on a real multi-coil slice, shapes, single coil, checkpointing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mrirecon.data.fastmri_h5 import VolumeReader
from mrirecon.data.masks import MaskSpec, eval_rng
from mrirecon.models.varnet import VarNet, VarNetConfig
from tests.conftest import real_scan_path

SMALL = {"num_cascades": 2, "chans": 8, "pools": 2, "sens_chans": 4, "sens_pools": 2,
         "num_groups": 2, "sens_num_groups": 2}  # fmt: skip


def _real_slice(acc: float = 4.0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Masked k-space (1, 4, 256, 256) of the real TU Graz scan, its mask and ACS width."""
    path = real_scan_path()
    kspace = VolumeReader(path, None, False).read(0)[0]
    kspace = torch.from_numpy(np.asarray(kspace, dtype=np.complex64))[None]
    spec = MaskSpec.paired("random", (acc,))
    m = spec.sample(kspace.shape[-1], eval_rng(path.name))
    mask = torch.from_numpy(m.mask)
    return kspace * mask + 0.0, mask, m.num_low


@pytest.mark.parametrize("given_num_low", [False, True])
def test_instance_norm_varnet_matches_fastmri(given_num_low):
    fm = pytest.importorskip("fastmri.models")
    k, mask, num_low = _real_slice()
    k = k / k.abs().max()  # fastMRI's k-space scale, so the tolerance is meaningful
    torch.manual_seed(0)
    ref = fm.VarNet(num_cascades=2, sens_chans=4, sens_pools=2, chans=8, pools=2).eval()
    ours = VarNetConfig(**{**SMALL, "norm": "instance"}).build().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    nl = num_low if given_num_low else None
    with torch.no_grad():
        want = ref(torch.view_as_real(k), mask.reshape(1, 1, 1, -1, 1), nl)
        got = ours(k, mask, nl)
    assert got.shape == want.shape == (1, 256, 256)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_output_is_cropped_rss_and_single_coil_uses_unit_maps():
    k, mask, _ = _real_slice(8.0)
    net = VarNetConfig(**SMALL).build().eval()
    with torch.no_grad():
        full = net(k, mask)
        cropped = net(k, mask, crop=(200, 180))
        single = net(k[:, :1], mask, crop=(64, 64))
        sens = net.sensitivities(k[:, :1], mask.reshape(1, 1, 1, -1), None)
    assert full.shape == (1, 256, 256) and cropped.shape == (1, 200, 180)
    torch.testing.assert_close(cropped, full[:, 28:228, 38:218])
    assert single.shape == (1, 64, 64) and torch.isfinite(single).all()
    assert torch.equal(sens, torch.ones_like(sens))


def test_sensitivities_have_unit_rss():
    k, mask, _ = _real_slice()
    net = VarNetConfig(**SMALL).build().eval()
    with torch.no_grad():
        maps = net.sensitivities(k, mask.reshape(1, 1, 1, -1), None)
    rss = maps.abs().square().sum(dim=1).sqrt()
    torch.testing.assert_close(rss, torch.ones_like(rss), rtol=1e-5, atol=1e-5)


def test_checkpointing_gives_the_same_output_and_gradients():
    k, mask, _ = _real_slice()
    k = k[..., 64:192, :] / k.abs().max()
    torch.manual_seed(1)
    plain = VarNetConfig(**SMALL).build()
    ckpt = VarNetConfig(**{**SMALL, "checkpointing": True}).build()
    ckpt.load_state_dict(plain.state_dict())
    grads = []
    for net in (plain, ckpt):
        out = net(k, mask, crop=(96, 96))
        out.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    torch.testing.assert_close(plain(k, mask), ckpt(k, mask))
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-5, atol=1e-7)


def test_bad_config_and_input_are_one_line():
    with pytest.raises(ValueError, match="num_groups"):
        VarNetConfig(chans=18, num_groups=4)
    with pytest.raises(ValueError, match="num_cascades"):
        VarNetConfig(num_cascades=0)
    net = VarNetConfig(**SMALL).build()
    with pytest.raises(ValueError, match="complex"):
        net(torch.zeros(1, 2, 16, 16), torch.ones(16, dtype=torch.bool))


def test_is_a_varnet():
    assert isinstance(VarNetConfig(**SMALL).build(), VarNet)


def test_gated_varnet_starts_as_zero_filled_and_learns_its_gates():
    from mrirecon.fft import ifft2c, rss

    k, mask, _ = _real_slice()
    k = k[..., 64:192, :] / k.abs().max()
    torch.manual_seed(2)
    net = VarNetConfig(**{**SMALL, "gated": True}).build()
    out = net(k, mask, crop=(96, 96))
    zero_filled = rss(ifft2c(k).abs(), dim=1)[:, 16:112, 80:176]
    torch.testing.assert_close(out, zero_filled, rtol=1e-5, atol=1e-6 * float(out.detach().max()))
    out.square().mean().backward()
    gates = [c.gate.grad for c in net.cascades]
    assert all(g is not None and float(g.abs()) > 0 for g in gates)  # the gates train
    with pytest.raises(RuntimeError, match="gate"):  # not a fastMRI layout any more
        VarNetConfig(**SMALL).build().load_state_dict(net.state_dict(), strict=True)


def _untrained_heads(**options: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks that a VarNet with the output ``options`` on is, untrained, exactly the plain
    one on a real slice, that each head trains and that a strict fastMRI-layout load
    refuses it. Returns the slice's masked k-space and the plain output."""
    k, mask, _ = _real_slice()
    k = k[..., 64:192, :] / k.abs().max()
    torch.manual_seed(3)
    plain = VarNetConfig(**SMALL).build()
    torch.manual_seed(3)
    net = VarNetConfig(**{**SMALL, **options}).build()
    out = net(k, mask, crop=(96, 96))
    with torch.no_grad():
        ref = plain(k, mask, crop=(96, 96))
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-8)
    out.square().mean().backward()
    for name in options:
        assert float(getattr(net, name).layers[-1].weight.grad.abs().max()) > 0  # it trains
        with pytest.raises(RuntimeError, match=name):  # fastMRI layout only when off
            plain.load_state_dict(net.state_dict(), strict=True)
    return k, ref


def test_output_gate_starts_open_learns_and_can_zero_a_background():
    from mrirecon.models.output_heads import OutputGate

    _, ref = _untrained_heads(output_gate=True)  # untrained, the gate is exactly 1
    # Trained to zero the faint pixels of the real image (a background floor) and keep the
    # rest, a gate learns to: it sees the magnitude it multiplies.
    image = ref.detach()
    faint = image < 0.5 * image.median()
    target = torch.where(faint, torch.zeros_like(image), image)
    torch.manual_seed(0)
    gate = OutputGate()
    opt = torch.optim.Adam(gate.parameters(), lr=1e-2)
    for _ in range(200):
        opt.zero_grad()
        err = (gate(image, image) - target).abs()
        loss = err[faint].mean() + err[~faint].mean()  # both regions weigh the same
        loss.backward()
        opt.step()
    with torch.no_grad():
        got = gate(image, image)
    assert float(got[faint].mean()) < 0.05 * float(image[faint].mean())
    assert float((got == 0)[faint].float().mean()) > 0.5  # exact zeros, as a target's
    kept = ~faint
    assert float((got[kept] - image[kept]).abs().mean()) < 0.1 * float(image[kept].mean())


def test_output_mix_starts_as_identity_and_learns_to_return_the_measured_image():
    from mrirecon.fft import center_crop, ifft2c, rss
    from mrirecon.models.output_heads import OutputGate, OutputMix

    k, ref = _untrained_heads(output_gate=True, output_mix=True)  # together the identity
    # Trained towards the zero-filled magnitude of the real slice (the measured image, where
    # it is the better answer), gate and mix learn to return it instead of the output.
    image = ref.detach()
    zero_filled = center_crop(rss(ifft2c(k).abs(), dim=1), (96, 96))
    torch.manual_seed(0)
    gate, mix = OutputGate(), OutputMix()
    opt = torch.optim.Adam([*gate.parameters(), *mix.parameters()], lr=3e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = (mix(gate(image, zero_filled), zero_filled) - zero_filled).abs().mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        got = mix(gate(image, zero_filled), zero_filled)
    before = float((image - zero_filled).abs().mean())
    assert float((got - zero_filled).abs().mean()) < 0.25 * before


def _added_context_is_a_no_op(option: str, k: torch.Tensor, mask: torch.Tensor) -> VarNet:
    """Checks that the gate context ``option``, added to a gated VarNet (its only new
    weights), leaves the output exactly as it was on the real slice ``k``, and that it needs
    the gate. Returns the gated VarNet without it."""
    torch.manual_seed(3)
    gated = VarNetConfig(**SMALL, output_gate=True).build()
    torch.manual_seed(3)
    net = VarNetConfig(**SMALL, output_gate=True, **{option: True}).build()
    missing = net.load_state_dict(gated.state_dict(), strict=False).missing_keys
    assert sorted(missing) == [f"{option}.proj.bias", f"{option}.proj.weight"]
    with torch.no_grad():
        torch.testing.assert_close(net(k, mask, crop=(96, 96)), gated(k, mask, crop=(96, 96)))
    with pytest.raises(ValueError, match=f"{option} needs"):
        VarNetConfig(**SMALL, **{option: True})
    return gated


def test_gate_context_starts_as_a_no_op_and_decides_what_a_local_gate_cannot():
    from mrirecon.models.output_heads import GateContext, OutputGate

    k, mask, _ = _real_slice()
    k = k[..., 64:192, :] / k.abs().max()
    gated = _added_context_is_a_no_op("gate_context", k, mask)
    # The same noise-floor patch in two images: in one the floor covers the whole
    # background (keep it: a noisy target), in the other only that patch (zero it). Inside
    # the patch the 15 x 15 views are identical, so only the image's statistics can tell.
    with torch.no_grad():  # the real slice's output, inside a frame of background
        image = F.pad(gated(k, mask, crop=(96, 96))[0], (32, 32, 32, 32))
    floor = 0.3 * float(image[32:128, 32:128].median())
    background = image == 0
    patch = torch.zeros_like(background)
    patch[:30, :60] = True
    inner = torch.zeros_like(patch)
    inner[8:22, 8:52] = True  # 8 pixels inside the patch: identical 15 x 15 views
    keep = torch.where(background, torch.full_like(image, floor), image)
    only = torch.where(background & ~patch, torch.zeros_like(image), keep)
    # The same mean too (the heads scale by it): the removed floor, as a block far away.
    only[130:, 100:] = floor * float((background & ~patch).sum()) / only[130:, 100:].numel()
    inputs = torch.stack([keep, only])
    targets = torch.stack([keep, torch.where(patch & background, 0.0, only)])

    def fit(context: GateContext | None) -> torch.Tensor:
        torch.manual_seed(0)
        gate = OutputGate()
        params = [*gate.parameters(), *(context.parameters() if context else [])]
        opt = torch.optim.Adam(params, lr=1e-2)
        for _ in range(300):
            opt.zero_grad()
            # Squared error: the best answer common to both is half the floor, not the
            # gate's dead zero, where no gradient would reach the context.
            ((gate(inputs, inputs, context) - targets)[:, inner] / floor).square().mean().backward()
            opt.step()
        with torch.no_grad():
            return (gate(inputs, inputs, context) - targets)[:, inner].abs().mean() / floor

    assert float(fit(GateContext())) < 0.1  # keeps one floor, zeros the other
    assert float(fit(None)) > 0.4  # a local gate must answer both the same way


def test_row_context_starts_as_a_no_op_and_reads_the_floor_off_empty_rows():
    from mrirecon.fft import fft2c, ifft2c, rss
    from mrirecon.models.output_heads import RowContext

    k, mask, _ = _real_slice(8.0)
    _added_context_is_a_no_op("gate_rows", k[..., 64:192, :] / k.abs().max(), mask)
    # Column undersampling aliases within readout rows only, so at 8x the rows the head
    # does not reach still show the real scan's thermal noise floor ...
    rows = RowContext()
    real = rows.features(rss(ifft2c(k).abs(), dim=1))[0]
    assert float(real[0]) > -1.5
    # ... and stay exactly empty for the same head without noise (background zeroed, a
    # smooth phase), whatever the aliasing does to the rows it reaches.
    full = ifft2c(_real_slice(1.0)[0])
    image = rss(full.abs(), dim=1)[0]
    clean = torch.where(image > 0.05 * image.max(), image, 0.0) * torch.exp(
        1j * 0.3 * full[0, 0].angle()
    )
    zero_filled = ifft2c(fft2c(clean) * mask).abs()[None]
    empty = (image > 0.05 * image.max()).sum(dim=1) == 0
    assert 0.03 < float(empty.float().mean()) < 0.2  # the scan has a few empty rows
    assert float(zero_filled[0, empty].max()) < 1e-5 * float(zero_filled.max())
    assert float(zero_filled[0, ~empty].mean()) > 0.01 * float(zero_filled.max())
    assert float(rows.features(zero_filled)[0, 0]) <= -2.5  # at the floor of the scale


def test_cascade_with_zero_regulariser_keeps_the_measured_lines():
    from mrirecon.models.varnet import VarNetBlock

    k, mask, _ = _real_slice()

    class Zero(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(x)

    block = VarNetBlock(Zero())  # the regulariser term vanishes
    current = k + torch.randn_like(k) * k.abs().mean()  # far from the data everywhere
    sens = torch.ones_like(k[:, :1]).expand_as(k) / 2.0
    with torch.no_grad():
        out = block(current, k, mask.reshape(1, 1, 1, -1), sens)
    torch.testing.assert_close(out[..., mask], k[..., mask])  # dc_weight 1: data restored
    torch.testing.assert_close(out[..., ~mask], current[..., ~mask])


def test_fastmri_varnet_weights_import_through_the_cli(tmp_path, capsys):
    fm = pytest.importorskip("fastmri.models")
    from mrirecon.cli import main
    from mrirecon.train.checkpoint import load_model

    torch.manual_seed(2)
    ref = fm.VarNet(num_cascades=2, sens_chans=4, sens_pools=2, chans=8, pools=2).eval()
    torch.save(ref.state_dict(), tmp_path / "varnet_sd.pt")
    assert main(["models", "import-fastmri", str(tmp_path / "varnet_sd.pt"),
                 "--out", str(tmp_path / "imported.pt")]) == 0  # fmt: skip
    model, cfg = load_model(tmp_path / "imported.pt")
    assert (
        cfg.model.kind == "varnet" and cfg.model.num_cascades == 2 and cfg.model.norm == "instance"
    )
    k, mask, num_low = _real_slice()
    k = k / k.abs().max()
    with torch.no_grad():
        want = ref(torch.view_as_real(k), mask.reshape(1, 1, 1, -1, 1), num_low)
        got = model(k, mask, num_low)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
