"""U-Net for image-domain reconstruction, fastMRI's layout with configurable normalisation.

The network follows the fastMRI baseline (Zbontar et al., "fastMRI: An Open Dataset and
Benchmarks for Accelerated MRI", arXiv:1811.08839), itself the U-Net of Ronneberger,
Fischer and Brox (MICCAI 2015): ``num_pool_layers`` levels whose channel count starts at
``chans`` and doubles per level, two 3x3 conv -> norm -> activation -> dropout blocks per
level, 2x2 average pooling down, 2x2 transposed convolutions up, skip concatenation and a
final 1x1 convolution.

Normalisation is configurable: GroupNorm (default; Wu & He, ECCV 2018 — independent of
batch size, unlike BatchNorm, and less prone than InstanceNorm to erasing the global
intensity level of a slice), InstanceNorm (fastMRI's choice), BatchNorm or none. Module
names and layer indices match ``fastmri.models.Unet``, so with ``norm="instance"`` a
fastMRI state_dict loads unchanged and gives the same output.

Residual output (``residual=True``): the network predicts a correction that is added to
its own input, and its last convolution starts at zero, so an untrained network is the
identity (the U-Net method then returns the zero-filled image; a "do no harm" start).
The body sees the input clamped to +-:data:`INPUT_CLAMP`, as in training, while the
correction is added to the input as given, so the identity is exact even for inputs
that the normalisation's clamp would cut.

Sizes: as in fastMRI, a transposed-conv output one pixel short of its skip connection is
reflect-padded on the right/bottom, so any size works. Inputs smaller than
``2 ** (num_pool_layers + 1)`` (where fastMRI fails because the bottom level would have
a single pixel) are first padded up to that size and the output is cropped back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mrirecon.errors import ConfigError

__all__ = [
    "Unet",
    "UnetConfig",
    "NORMS",
    "ACTIVATIONS",
    "INPUT_CLAMP",
    "ConvBlock",
    "TransposeConvBlock",
]

# The clamp of fastMRI's input normalisation (mrirecon.data.transforms.CLAMP): a residual
# network's body sees inputs within it, as in training.
INPUT_CLAMP = 6.0


def _group_norm(chans: int, num_groups: int) -> nn.Module:
    return nn.GroupNorm(num_groups, chans)


NORMS: dict[str, Callable[[int, int], nn.Module]] = {
    "group": _group_norm,
    "instance": lambda chans, _: nn.InstanceNorm2d(chans),
    "batch": lambda chans, _: nn.BatchNorm2d(chans),
    "none": lambda chans, _: nn.Identity(),
}

ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    "leaky_relu": lambda slope: nn.LeakyReLU(negative_slope=slope, inplace=True),
    "relu": lambda _: nn.ReLU(inplace=True),
    "silu": lambda _: nn.SiLU(inplace=True),
    "gelu": lambda _: nn.GELU(),
}


class ConvBlock(nn.Module):
    """Two (3x3 conv, norm, activation, 2-D dropout) layers: (N, in, H, W) -> (N, out, H, W)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        drop_prob: float,
        norm: str,
        num_groups: int,
        activation: str,
        negative_slope: float,
    ) -> None:
        super().__init__()
        bias = norm == "none"
        layers: list[nn.Module] = []
        for cin in (in_chans, out_chans):
            layers += [
                nn.Conv2d(cin, out_chans, kernel_size=3, padding=1, bias=bias),
                NORMS[norm](out_chans, num_groups),
                ACTIVATIONS[activation](negative_slope),
                nn.Dropout2d(drop_prob),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, out_chans, H, W)."""
        return self.layers(image)


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transposed conv, norm, activation: (N, in, H, W) -> (N, out, 2H, 2W)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        norm: str,
        num_groups: int,
        activation: str,
        negative_slope: float,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2, bias=norm == "none"),
            NORMS[norm](out_chans, num_groups),
            ACTIVATIONS[activation](negative_slope),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, out_chans, 2H, 2W)."""
        return self.layers(image)


class Unet(nn.Module):
    """fastMRI-layout U-Net with selectable normalisation and activation.

    Args:
        in_chans: input channels (1 for magnitude images, 2 for real + imaginary).
        out_chans: output channels (1 or 2 likewise).
        chans: channels of the first level; each level doubles them.
        num_pool_layers: number of down/up-sampling levels (fastMRI: 4).
        drop_prob: 2-D dropout probability after every conv layer.
        norm: one of :data:`NORMS`: ``"group"``, ``"instance"``, ``"batch"``, ``"none"``.
        num_groups: groups of GroupNorm; must divide ``chans`` (used by ``norm="group"``).
        activation: one of :data:`ACTIVATIONS` (default LeakyReLU).
        negative_slope: slope of LeakyReLU for negative inputs.
        residual: add the input to the output (needs ``in_chans == out_chans``); the last
            convolution is zero-initialised so that the untrained network is the identity.

    Raises:
        ValueError: for unknown names or inconsistent sizes.
    """

    def __init__(
        self,
        in_chans: int = 1,
        out_chans: int = 1,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        norm: str = "group",
        num_groups: int = 8,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose from {sorted(NORMS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}"
            )
        if min(in_chans, out_chans, chans, num_pool_layers) < 1:
            raise ValueError(
                "in_chans, out_chans, chans and num_pool_layers must be >= 1, got "
                f"{in_chans}, {out_chans}, {chans}, {num_pool_layers}"
            )
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        if norm == "group" and (num_groups < 1 or chans % num_groups):
            raise ValueError(f"num_groups {num_groups} must divide chans {chans} for GroupNorm")
        if residual and in_chans != out_chans:
            raise ValueError(
                f"a residual U-Net needs in_chans == out_chans, got {in_chans} and {out_chans}"
            )
        self.residual = residual
        self.in_chans, self.out_chans, self.chans = in_chans, out_chans, chans
        self.num_pool_layers, self.drop_prob, self.norm = num_pool_layers, drop_prob, norm
        opts = (norm, num_groups, activation, negative_slope)

        self.down_sample_layers = nn.ModuleList([ConvBlock(in_chans, chans, drop_prob, *opts)])
        ch = chans
        for _ in range(num_pool_layers - 1):
            self.down_sample_layers.append(ConvBlock(ch, ch * 2, drop_prob, *opts))
            ch *= 2
        self.conv = ConvBlock(ch, ch * 2, drop_prob, *opts)

        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for _ in range(num_pool_layers - 1):
            self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch, *opts))
            self.up_conv.append(ConvBlock(ch * 2, ch, drop_prob, *opts))
            ch //= 2
        self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch, *opts))
        self.up_conv.append(
            nn.Sequential(
                ConvBlock(ch * 2, ch, drop_prob, *opts),
                nn.Conv2d(ch, out_chans, kernel_size=1, stride=1),
            )
        )
        if residual:
            # Zero correction at initialisation: the network starts as the identity. Built
            # first and zeroed after, so the RNG draws (and other layers) match residual=False.
            nn.init.zeros_(self.up_conv[-1][1].weight)
            nn.init.zeros_(self.up_conv[-1][1].bias)

    @property
    def min_size(self) -> int:
        """Smallest H, W run without input padding (the bottom level needs 2x2 pixels)."""
        return 2 ** (self.num_pool_layers + 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Run the network.

        Args:
            image: (N, in_chans, H, W) real tensor, any H, W >= 1.

        Returns:
            (N, out_chans, H, W); with ``residual``, the input plus the predicted correction.
        """
        if image.dim() != 4 or image.shape[1] != self.in_chans:
            raise ValueError(f"U-Net expects (N, {self.in_chans}, H, W), got {tuple(image.shape)}")
        given = image
        if self.residual:
            image = image.clamp(-INPUT_CLAMP, INPUT_CLAMP)
        h, w = image.shape[-2:]
        pad_h, pad_w = max(0, self.min_size - h), max(0, self.min_size - w)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            image = F.pad(image, [0, pad_w, 0, pad_h], mode=mode)

        stack = []
        output = image
        for layer in self.down_sample_layers:
            output = layer(output)
            stack.append(output)
            output = F.avg_pool2d(output, kernel_size=2, stride=2, padding=0)
        output = self.conv(output)

        for transpose_conv, conv in zip(self.up_transpose_conv, self.up_conv, strict=True):
            skip = stack.pop()
            output = transpose_conv(output)
            # Floor-halving loses at most one pixel per level: reflect-pad right/bottom back.
            dh, dw = skip.shape[-2] - output.shape[-2], skip.shape[-1] - output.shape[-1]
            if dh or dw:
                output = F.pad(output, [0, dw, 0, dh], mode="reflect")
            output = conv(torch.cat([output, skip], dim=1))

        if pad_h or pad_w:
            output = output[..., :h, :w]
        return output + given if self.residual else output


@dataclass(frozen=True)
class UnetConfig:
    """The ``model`` section of a training config: :class:`Unet`'s constructor arguments."""

    kind: str = "unet"
    in_chans: int = 1
    out_chans: int = 1
    chans: int = 32
    num_pool_layers: int = 4
    drop_prob: float = 0.0
    norm: str = "group"
    num_groups: int = 8
    activation: str = "leaky_relu"
    negative_slope: float = 0.2
    residual: bool = False

    def __post_init__(self) -> None:
        if self.kind != "unet":
            raise ConfigError(f"model.kind: a U-Net config has kind 'unet', got {self.kind!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"model.norm: unknown {self.norm!r}; choose from {sorted(NORMS)}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation: unknown {self.activation!r}; choose from {sorted(ACTIVATIONS)}"
            )
        if self.residual and self.in_chans != self.out_chans:
            raise ConfigError(
                "model.residual needs model.in_chans == model.out_chans, got "
                f"{self.in_chans} and {self.out_chans}"
            )

    def build(self) -> Unet:
        """A freshly initialised :class:`Unet` (draws from the global torch RNG)."""
        return Unet(**{k: v for k, v in asdict(self).items() if k != "kind"})
