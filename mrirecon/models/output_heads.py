"""Output heads of the E2E-VarNet (additions to Sriram et al. 2020, opt-in).

Two small local CNNs act on the network's output magnitude and the zero-filled one:
:class:`OutputGate` multiplies the output by a learned per-pixel gate (exact zero
backgrounds), :class:`OutputMix` adds a learned per-pixel multiple of the zero-filled
magnitude (the measured noise of noisy magnitude data). Both are exactly the identity when
freshly built, so they can be added to a trained network. :class:`GateContext` and
:class:`RowContext` (opt-in) give the gate statistics of the whole image; they too start as
no-ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GateContext", "OutputGate", "OutputMix", "RowContext"]


class _LocalHead(nn.Module):
    """A local CNN on the output and zero-filled magnitudes, for the output heads below.

    Three 3 x 3 convolutions (dilations 1, 2, 4; 15 x 15 receptive field) map the two
    magnitudes, scaled by the zero-filled mean (so the map is the same for any scaling of
    the data), to one map; the last layer starts at zero, so the map starts at zero.

    Args:
        chans: hidden channels.
    """

    def __init__(self, chans: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(2, chans, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(chans, chans, 3, padding=2, dilation=2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(chans, 1, 3, padding=4, dilation=4),
        )
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def local_map(
        self,
        image: torch.Tensor,
        zero_filled: torch.Tensor,
        context: GateContext | None = None,
        rows: RowContext | None = None,
    ) -> torch.Tensor:
        """(N, H, W) output and zero-filled magnitudes -> the (N, H, W) map.

        ``context`` and ``rows`` each add a per-image bias, computed from the whole image,
        to the first layer's features.
        """
        scale = zero_filled.flatten(1).mean(dim=1).clamp_min(1e-12)[:, None, None]
        features = self.layers[0](torch.stack([image / scale, zero_filled / scale], dim=1))
        if context is not None:
            features = features + context(features)[:, :, None, None]
        if rows is not None:
            features = features + rows(zero_filled).to(features.dtype)[:, :, None, None]
        return self.layers[1:](features)[:, 0]


class GateContext(nn.Module):
    """A per-image bias for the output gate's first layer, from that layer's global statistics.

    Why: the gate is local (15 x 15 pixels). Where the zero-filled image is mostly aliasing
    (strong phase wraps at 8x), it cannot tell locally whether the target's background is
    an exact zero (noiseless skull-stripped data) or a noise floor (magnitude data), and
    darkening a noise floor costs SSIM. The mean and standard deviation over the image of
    each first-layer feature map, through a linear layer that starts at zero (so a fresh
    context changes nothing), shift the gate's features for the whole image.

    Args:
        chans: the gate's hidden channels.
    """

    def __init__(self, chans: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(2 * chans, chans)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, chans, H, W) first-layer features -> (N, chans) bias."""
        flat = features.flatten(2)
        return self.proj(torch.cat([flat.mean(dim=2), flat.std(dim=2)], dim=1))


class RowContext(nn.Module):
    """A per-image bias for the output gate's first layer, from the emptiest readout rows.

    Why: column (phase-encode) undersampling aliases only along each readout row, so a row
    that the object does not reach holds, in the zero-filled image, what the target holds
    there: nothing when the image is noiseless, the noise floor when it is noisy. The energy
    of the emptiest rows relative to the image's mean energy therefore measures the
    target's floor where the aliasing cannot hide it, even at 8x under a wrapping phase,
    where the local gate cannot tell a noise floor from residual error. Its log at four
    low quantiles of the rows, through a linear layer that starts at zero (so a fresh
    context changes nothing), shifts the gate's features for the whole image.

    Args:
        chans: the gate's hidden channels.
    """

    QUANTILES = (0.02, 0.05, 0.1, 0.25)

    def __init__(self, chans: int = 8) -> None:
        super().__init__()
        self.proj = nn.Linear(len(self.QUANTILES), chans)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def features(self, zero_filled: torch.Tensor) -> torch.Tensor:
        """(N, H, W) zero-filled magnitude (rows = readout) -> (N, 4) log row-energy ratios.

        Each is log10 of a low quantile of the per-row mean energy over the image's mean
        energy, floored at 1e-12 and divided by 4 (so about -3 for empty rows, 0 for none).
        """
        rows = zero_filled.float().square().mean(dim=2)
        q = torch.tensor(self.QUANTILES, dtype=rows.dtype, device=rows.device)
        low = torch.quantile(rows, q, dim=1).T
        ratio = low / rows.mean(dim=1, keepdim=True).clamp_min(1e-30)
        return torch.log10(ratio.clamp_min(1e-12)) / 4

    def forward(self, zero_filled: torch.Tensor) -> torch.Tensor:
        """(N, H, W) zero-filled magnitude -> (N, chans) bias."""
        return self.proj(self.features(zero_filled))


class OutputGate(_LocalHead):
    """A per-pixel gate (>= 0) on the output magnitude, from it and the zero-filled one.

    Why: the VarNet's output is the magnitude of complex coil images, so every residual
    error of its cascades shows as a positive floor, and it cannot output the exact zeros
    of a noiseless zero background (skull-stripped or magnitude-derived data), where
    SSIM's luminance term punishes a floor of 1% of the peak by half. A local CNN
    (:class:`_LocalHead`) on the two magnitudes can tell such a floor from the noise of a
    noisy target. The gate is ``relu(1 + z)`` of the CNN's map ``z``: exactly zero where it
    says so, and not saturated at the start, where it is exactly 1 (the plain VarNet's
    output).
    """

    def forward(
        self,
        image: torch.Tensor,
        zero_filled: torch.Tensor,
        context: GateContext | None = None,
        rows: RowContext | None = None,
    ) -> torch.Tensor:
        """(N, H, W) output and zero-filled magnitudes -> (N, H, W) gated output."""
        return image * F.relu(1.0 + self.local_map(image, zero_filled, context, rows))


class OutputMix(_LocalHead):
    """Adds a learned per-pixel multiple of the zero-filled magnitude to the output.

    Why: where the target is a noise floor that covers the whole field of view (noisy
    magnitude data, noncentral-chi backgrounds), the zero-filled image keeps the measured
    noise exactly, while the cascades' soft data consistency and regularisers replace it
    with their own estimate; a local CNN (:class:`_LocalHead`) can learn where the
    measured image is the better answer. The output is ``relu(image + m * zero_filled)``
    with the CNN's map ``m``; with the gate it spans every local blend of the two. It is
    exactly the input at the start.
    """

    def forward(self, image: torch.Tensor, zero_filled: torch.Tensor) -> torch.Tensor:
        """(N, H, W) output and zero-filled magnitudes -> (N, H, W) mixed output."""
        return F.relu(image + self.local_map(image, zero_filled) * zero_filled)
