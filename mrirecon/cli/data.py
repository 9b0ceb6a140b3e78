"""``mrirecon data check DIR`` and ``mrirecon data synth --out DIR``.

``data synth`` writes the Colin 27 demo/test volumes (:mod:`mrirecon.synth.volumes`), the
demo layout (``--demo``), or ``--corpus N`` volumes of the domain-randomised training
corpus (:mod:`mrirecon.synth.corpus`).

``data check`` validates each file with :func:`mrirecon.data.dataset.inspect_file`, the
same door check every other command applies, then (unless ``--quick``) scans k-space for
NaN/Inf one slice at a time; entries named ``*.h5`` that are not files are listed too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mrirecon.errors import ConfigError, DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect or generate fastMRI-format data")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True

    c = dsub.add_parser("check", help="validate every .h5 file of a folder and print a table")
    c.add_argument("folder", type=Path)
    c.add_argument(
        "--quick", action="store_true", help="skip the NaN/Inf scan of k-space (structure only)"
    )
    c.set_defaults(func=run_check)

    s = dsub.add_parser("synth", help="write reproducible demo/test volumes from real anatomy")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--corpus",
        type=int,
        default=None,
        metavar="N",
        help="write N volumes of the domain-randomised training corpus (mixed single- and "
        "multi-coil, 96..256 matrices, 2 slices by default: ~9 MiB per volume on average)",
    )
    s.add_argument(
        "--matrix",
        type=int,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="--corpus: range of recon side lengths (default 96 256; up to 512 for fastMRI sizes)",
    )
    s.add_argument(
        "--oversample-prob",
        type=float,
        default=None,
        metavar="P",
        help="--corpus: share of volumes with fastMRI's 2x readout oversampling (default 1; "
        "the others have none, as raw data exported with it removed)",
    )
    s.add_argument(
        "--magnitude-noise-prob",
        type=float,
        default=None,
        metavar="P",
        help="--corpus: share of volumes whose noise is Rician noise in the magnitude image "
        "(k-space simulated from noisy magnitude images; default 0)",
    )
    s.add_argument("--single", type=int, default=4, help="number of single-coil volumes")
    s.add_argument("--multi", type=int, default=4, help="number of multi-coil volumes")
    s.add_argument("--slices", type=int, default=None, help="slices per volume")
    s.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="recon size")
    s.add_argument(
        "--demo",
        action="store_true",
        help="write the demo layout (train/, val/, real/) instead of one folder",
    )
    s.set_defaults(func=run_synth)


def run_check(args: argparse.Namespace) -> int:
    from mrirecon.data.dataset import check_kspace_finite, inspect_file, list_h5, skipped_h5

    files, skipped = list_h5(args.folder), skipped_h5(args.folder)
    if not files and not skipped:
        raise DataError(f"{args.folder}: no .h5 files found")
    header = f"{'file':<36} {'type':<10} {'slices':>6} {'coils':>5} {'kspace (H,W)':>13} {'recon':>9} {'header':>6}  target"
    print(header)
    print("-" * len(header))
    bad = []
    for path in files:
        try:
            info = inspect_file(path)
            if not args.quick:
                check_kspace_finite(info)
        except DataError as exc:
            bad.append(str(exc))
            continue
        kind = "multicoil" if info.multicoil else "singlecoil"
        hw = "x".join(map(str, info.kspace_shape[-2:]))
        rs = "x".join(map(str, info.recon_size))
        target = info.target_key or ("mask (test)" if info.has_mask else "none")
        print(
            f"{info.fname:<36} {kind:<10} {info.num_slices:>6} {info.num_coils:>5} {hw:>13} "
            f"{rs:>9} {('yes' if info.header else 'no'):>6}  {target}"
        )
    for line in bad:
        print(f"UNUSABLE {line}")
    for path, why in skipped:
        print(f"SKIPPED {path}: {why}")
    summary = f"{len(files) - len(bad)} usable, {len(bad)} unusable of {len(files)} file(s)"
    print(summary + (f", {len(skipped)} skipped (not files)" if skipped else ""))
    return 1 if bad or skipped else 0


def run_synth(args: argparse.Namespace) -> int:
    from mrirecon.data.dataset import list_h5
    from mrirecon.synth import volumes as synth

    if args.corpus is not None:
        return _run_corpus(args)
    corpus_only = (args.matrix, args.oversample_prob, args.magnitude_noise_prob)
    if any(value is not None for value in corpus_only):
        raise ConfigError(
            "--matrix, --oversample-prob and --magnitude-noise-prob apply only to --corpus"
        )
    args.slices_given = args.slices is not None
    if args.slices is None:
        args.slices = 8
    if args.demo:
        kw = {"slices": args.slices} if args.slices_given else {}
        if args.size:
            kw["recon_size"] = tuple(args.size)
        layout = synth.demo_dataset(args.out, seed=args.seed, **kw)
        for name, folder in layout._asdict().items():
            print(f"{name}: {folder} ({len(list_h5(folder))} files)")
        return 0
    kwargs = dict(
        seed=args.seed, num_singlecoil=args.single, num_multicoil=args.multi, slices=args.slices
    )
    if args.size:
        kwargs["recon_size"] = tuple(args.size)
    config = synth.SynthConfig(**kwargs)
    paths = synth.synthesize(args.out, config)
    print(f"wrote {len(paths)} volume(s) to {args.out}")
    return 0


def _run_corpus(args: argparse.Namespace) -> int:
    from mrirecon.synth.corpus import CorpusConfig, write_corpus

    if args.demo or args.size:
        raise ConfigError("--corpus cannot be combined with --demo or --size (use --matrix)")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    kwargs: dict[str, object] = {}
    if args.slices is not None:
        kwargs["slices"] = args.slices
    if args.matrix is not None:
        kwargs["matrix"] = tuple(args.matrix)
    if args.oversample_prob is not None:
        kwargs["oversample_prob"] = args.oversample_prob
    if args.magnitude_noise_prob is not None:
        kwargs["magnitude_noise_prob"] = args.magnitude_noise_prob
    paths = write_corpus(args.out, CorpusConfig(**kwargs), args.corpus, seed=args.seed)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} corpus volume(s) to {args.out} ({size / 2**20:.1f} MiB)")
    return 0
