"""Models shipped inside the package, named ``pretrained:NAME`` wherever a checkpoint goes.

A shipped model is two files in the registry folder (``mrirecon/models/assets/``): its
model card ``NAME.md`` and its weights ``NAME.pt`` (an mrirecon checkpoint, fp16 storage
allowed, at most :data:`MAX_BYTES`). The card is the registry's index: it starts with a
YAML front matter block (as Hugging Face model cards do) holding at least ``summary`` and
``training_data``; its body is the full card (a copy of ``docs/model_cards/NAME.md``).

The folder can be replaced by another with the ``MRIRECON_PRETRAINED_DIR`` environment
variable or a ``root`` argument (tests use a temporary folder, so no fake weights ship).
This module only finds files; :mod:`mrirecon.train.checkpoint` loads and checks them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mrirecon.errors import CheckpointError

__all__ = [
    "PREFIX",
    "ROOT_ENV",
    "MAX_BYTES",
    "ModelCard",
    "ShippedModel",
    "registry_root",
    "is_pretrained",
    "read_card",
    "shipped_models",
    "shipped_model",
    "pretrained_path",
]

PREFIX = "pretrained:"
ROOT_ENV = "MRIRECON_PRETRAINED_DIR"
MAX_BYTES = 25 * 2**20
PACKAGE_ROOT = Path(__file__).resolve().parent / "assets"
# Names are plain file stems: no path separators, so ``pretrained:../x`` cannot escape.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_NOT_CARDS = {"README.md"}


@dataclass(frozen=True)
class ModelCard:
    """The front matter of a model card.

    Attributes:
        name: the model's name (the card's file stem).
        summary: one line: what the model is.
        training_data: one line: what it was trained on.
        path: the card file.
    """

    name: str
    summary: str
    training_data: str
    path: Path


@dataclass(frozen=True)
class ShippedModel:
    """A model in the registry.

    Attributes:
        name: use it as ``pretrained:NAME``.
        weights: its checkpoint file (may be missing from a broken installation).
        card: its model card.
    """

    name: str
    weights: Path
    card: ModelCard

    @property
    def size_bytes(self) -> int | None:
        """Size of the weights file, None when it is missing."""
        return self.weights.stat().st_size if self.weights.is_file() else None


def registry_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The registry folder: ``root``, else ``$MRIRECON_PRETRAINED_DIR``, else the package's."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else PACKAGE_ROOT


def is_pretrained(ref: str | os.PathLike[str]) -> bool:
    """Whether a checkpoint argument names a shipped model (``pretrained:NAME``)."""
    return str(ref).startswith(PREFIX)


def read_card(path: str | os.PathLike[str]) -> ModelCard:
    """Read a model card's front matter.

    Raises:
        CheckpointError: no front matter, bad YAML, or a missing/non-text ``summary`` or
            ``training_data`` (one line naming the card).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable model card ({exc})") from None
    parts = text.split("---\n", 2)
    if len(parts) < 3 or parts[0].strip():
        raise CheckpointError(f"{path}: model card must start with a '---' YAML front matter block")
    try:
        meta = yaml.safe_load(parts[1])
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise CheckpointError(f"{path}: model card front matter is not YAML ({reason})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: model card front matter must be a mapping")
    values = {}
    for key in ("summary", "training_data"):
        value = meta.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CheckpointError(f"{path}: model card front matter needs a text {key!r}")
        values[key] = " ".join(value.split())
    return ModelCard(path.stem, values["summary"], values["training_data"], path)


def shipped_models(root: str | os.PathLike[str] | None = None) -> tuple[ShippedModel, ...]:
    """Every model in the registry, by name (a missing folder holds none).

    Raises:
        CheckpointError: a card in the folder that cannot be read.
    """
    folder = registry_root(root)
    if not folder.is_dir():
        return ()
    cards = sorted(p for p in folder.glob("*.md") if p.name not in _NOT_CARDS)
    return tuple(
        ShippedModel(p.stem, p.with_suffix(".pt"), read_card(p))
        for p in cards
        if _NAME.match(p.stem)
    )


def shipped_model(name: str, root: str | os.PathLike[str] | None = None) -> ShippedModel:
    """The registry entry called ``name``.

    Raises:
        CheckpointError: unknown name, or its weights are missing (one line naming it).
    """
    models = {m.name: m for m in shipped_models(root)}
    if name not in models:
        known = ", ".join(f"{PREFIX}{n}" for n in models) or "none"
        raise CheckpointError(f"{PREFIX}{name}: no such shipped model (shipped: {known})")
    model = models[name]
    if not model.weights.is_file():
        raise CheckpointError(
            f"{PREFIX}{name}: weights {model.weights} are missing from this installation"
        )
    return model


def pretrained_path(
    ref: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Path:
    """The weights file that ``pretrained:NAME`` names.

    Raises:
        CheckpointError: ``ref`` is not ``pretrained:NAME``, the name is unknown, or its
            weights are missing.
    """
    text = str(ref)
    if not is_pretrained(text):
        raise CheckpointError(f"{text}: not a shipped model name (expected {PREFIX}NAME)")
    return shipped_model(text[len(PREFIX) :], root).weights
