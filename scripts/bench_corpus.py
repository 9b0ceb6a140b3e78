#!/usr/bin/env python3
"""Generation speed of the domain-randomised corpus (mrirecon.synth.corpus), one CPU core.

Times :func:`~mrirecon.synth.corpus.corpus_slice` (one streamed training slice: anatomy,
contrast, phase, coils, noise, FFT, target) after the one-off preload of the anatomy, as CPU
time of this process (so other load on the machine inflates it less than wall time):

- the reference case of issue 8: 256 x 256 recon (512 x 256 k-space), 8 coils;
- the default corpus mix (96..256 matrices, 1..32 coils) and the generalist's (96..320).

    OMP_NUM_THREADS=1 taskset -c 0 python scripts/bench_corpus.py [--slices 40]
"""

from __future__ import annotations

import argparse
import time

from mrirecon.synth.corpus import CorpusConfig, corpus_slice
from mrirecon.synth.sources import preload

CASES = {
    "256x256, 8 coils": CorpusConfig(
        matrix=(256, 256), max_aspect=1.0, coils=(8, 8), singlecoil_prob=0.0
    ),
    "default mix (96..256, 1..32 coils)": CorpusConfig(),
    "generalist mix (96..320)": CorpusConfig(matrix=(96, 320)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=40, help="slices timed per case")
    args = parser.parse_args()
    start = time.process_time()
    preload()
    print(f"preload (decode anatomy, distance maps): {time.process_time() - start:.2f} s CPU")
    for name, config in CASES.items():
        corpus_slice(config, 0, 0, 0)  # warm-up
        start = time.process_time()
        for index in range(args.slices):
            corpus_slice(config, 0, 1, index)
        per_slice = (time.process_time() - start) / args.slices * 1000
        print(f"{name:<38} {per_slice:6.1f} ms CPU per slice")


if __name__ == "__main__":
    main()
