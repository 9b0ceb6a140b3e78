"""Compressed-sensing l1-wavelet baseline (Lustig, Donoho & Pauly 2007), batched in torch.

Public API:

- :class:`CSConfig` / :class:`EspiritConfig`: frozen settings; :func:`load_cs_config`,
  :func:`save_cs_config` for their YAML form.
- :func:`cs_reconstruct`: a volume of k-space -> :class:`CSResult` ((S, h, w) float32
  magnitude and the lambda used; the ``mrirecon reconstruct --method cs`` adapter lives
  in :mod:`mrirecon.methods`).
- :func:`choose_lambda`: the lambda of a scan (``lam: auto``: k-space cross-validation).
- :func:`solve_batch`: one batch of slices -> complex images (with maps and solver info).
- :func:`espirit_maps`: ESPIRiT coil sensitivities from the rectangular ACS block.
- :class:`Wavelet2D`: orthonormal periodised 2-D DWT.
- :func:`tune_lambda`: lambda search for best mean SSIM (``mrirecon cs tune``).
"""

from __future__ import annotations

from mrirecon.cs.auto import LambdaChoice, choose_lambda
from mrirecon.cs.config import AutoLambdaConfig, CSConfig, load_cs_config, save_cs_config
from mrirecon.cs.espirit import EspiritConfig, espirit_maps
from mrirecon.cs.recon import solve_batch
from mrirecon.cs.tune import tune_lambda
from mrirecon.cs.volume import CSResult, cs_reconstruct
from mrirecon.cs.wavelet import Wavelet2D

__all__ = [
    "AutoLambdaConfig",
    "CSConfig",
    "CSResult",
    "EspiritConfig",
    "LambdaChoice",
    "choose_lambda",
    "cs_reconstruct",
    "solve_batch",
    "espirit_maps",
    "load_cs_config",
    "save_cs_config",
    "tune_lambda",
    "Wavelet2D",
]
