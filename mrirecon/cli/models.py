"""``mrirecon models``: the shipped models, fastMRI weight import, packing for shipping.

Examples::

    mrirecon models                                   # what ships: pretrained:NAME, size, card
    mrirecon models import-fastmri unet_knee_sc.pt --out ckpts/fastmri_knee.pt
    mrirecon models pack runs/generalist --out mrirecon/models/assets/unet-generalist.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand and its actions."""
    p = sub.add_parser(
        "models",
        help="list the shipped models (pretrained:NAME); import fastMRI U-Net weights",
        description="Without an action: list the models shipped with the package, usable as "
        "--checkpoint pretrained:NAME (reconstruct, compare) and --init pretrained:NAME (train).",
    )
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help="list the shipped models (the default)")
    ls.set_defaults(func=run_list)

    imp = actions.add_parser(
        "import-fastmri",
        help="turn a fastmri.models.Unet or VarNet state_dict into an mrirecon checkpoint",
        description="Read torch.save(fastmri.models.Unet(...).state_dict()) (fastMRI's published "
        "U-Net baselines) and write a checkpoint with the matching config (instance norm, "
        "chans, pools and channels read from the tensors).",
    )
    imp.add_argument("state_dict", type=Path, metavar="STATE_DICT")
    imp.add_argument("--out", type=Path, required=True, metavar="CKPT", help="checkpoint to write")
    imp.set_defaults(func=run_import)

    pack = actions.add_parser(
        "pack",
        help="compact copy of a checkpoint for shipping (weights + config, fp16)",
        description="Drop optimiser/scheduler/RNG state and store weights as fp16 (<= 25 MB), "
        "the form of mrirecon/models/assets/NAME.pt.",
    )
    pack.add_argument("checkpoint", type=Path, metavar="CKPT", help="checkpoint or run folder")
    pack.add_argument("--out", type=Path, required=True, help="file to write")
    pack.add_argument("--fp32", action="store_true", help="keep float32 weights")
    pack.set_defaults(func=run_pack)


def _size(n: int | None) -> str:
    return "MISSING" if n is None else f"{n / 2**20:.1f} MB"


def run_list(args: argparse.Namespace) -> int:
    """Print one block per shipped model."""
    from mrirecon.models.registry import PREFIX, registry_root, shipped_models

    models = shipped_models()
    if not models:
        print(f"no models ship with this installation (registry {registry_root()})")
        return 0
    for m in models:
        print(f"{PREFIX}{m.name}  ({_size(m.size_bytes)})")
        print(f"  {m.card.summary}")
        print(f"  training data: {m.card.training_data}")
        print(f"  card: {m.card.path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import fastMRI weights and say what config was inferred."""
    from mrirecon.pretrained import import_fastmri

    m = import_fastmri(args.state_dict, args.out).config.model
    if m.kind == "varnet":
        what = (f"fastMRI VarNet, {m.num_cascades} cascades, chans {m.chans}, {m.pools} pools, "
                f"sensitivity chans {m.sens_chans}, {m.sens_pools} pools")  # fmt: skip
    else:
        what = (f"fastMRI U-Net, chans {m.chans}, {m.num_pool_layers} pools, "
                f"{m.in_chans}->{m.out_chans} channels")  # fmt: skip
    print(f"{args.out}: {what}, norm {m.norm}")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    """Write the compact copy and report its size."""
    from mrirecon.pretrained import pack_checkpoint

    size = pack_checkpoint(args.checkpoint, args.out, fp16=not args.fp32)
    print(f"{args.out}: {_size(size)}")
    return 0
