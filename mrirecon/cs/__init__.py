"""Compressed-sensing l1-wavelet baseline (Lustig, Donoho & Pauly 2007), batched in torch.

Modules (imported one by one; this package imports nothing, so that reading a CS config
does not load torch):

- :mod:`mrirecon.cs.config`: :class:`~mrirecon.cs.config.CSConfig`,
  :class:`~mrirecon.cs.config.EspiritConfig`, :class:`~mrirecon.cs.config.AutoLambdaConfig`
  and their YAML form (``load_cs_config``, ``save_cs_config``); no torch.
- :mod:`mrirecon.cs.volume`: ``cs_reconstruct``, a volume of k-space -> ``CSResult``
  ((S, h, w) magnitude and the lambda used; the ``mrirecon reconstruct --method cs``
  adapter is :mod:`mrirecon.methods.cs`).
- :mod:`mrirecon.cs.auto`: ``choose_lambda``, the lambda of a scan (``lam: auto``:
  k-space cross-validation, never the target).
- :mod:`mrirecon.cs.recon`: ``solve_batch``, one batch of slices (a lambda per slice
  allowed) -> complex images, maps and solver info.
- :mod:`mrirecon.cs.espirit`: ESPIRiT coil sensitivities from the rectangular ACS block.
- :mod:`mrirecon.cs.wavelet`: orthonormal periodised 2-D DWT.
- :mod:`mrirecon.cs.solvers`, :mod:`mrirecon.cs.operators`: FISTA / Condat-Vu and the
  SENSE operators.
- :mod:`mrirecon.cs.tune`: lambda search for best mean SSIM against targets
  (``mrirecon cs tune``), which writes the per-acceleration table.
"""
