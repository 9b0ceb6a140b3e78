"""Simulated fastMRI-format raw data from real anatomy.

- :mod:`~mrirecon.synth.kspace`: fastMRI conventions shared by the simulators (k-space size,
  ISMRMRD header, targets from the stored k-space, atomic file writes).
- :mod:`~mrirecon.synth.fields`: smooth random fields: contrast tables, bias, phase, coil
  sensitivities, correlated noise.
- :mod:`~mrirecon.synth.anatomy` and :mod:`~mrirecon.synth.volumes`: the Colin 27 demo and
  test volumes (``mrirecon data synth``, ``--demo``).
- :mod:`~mrirecon.synth.slab`, :mod:`~mrirecon.synth.sources` and
  :mod:`~mrirecon.synth.corpus`: the domain-randomised training corpus
  (``mrirecon data synth --corpus N``, or streamed into training).
"""
