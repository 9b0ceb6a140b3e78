"""One configuration mechanism: YAML mappings into typed frozen dataclasses.

Every config of the package (training, CS, compare's CS settings) is a frozen
dataclass, possibly nested. :func:`load_typed` reads a YAML file, applies ``--set
key=value`` overrides (dotted keys of any depth, values parsed as YAML) and builds the
dataclass, converting each value to its field's annotated type: ``lr: 1e-3``, which
YAML reads as a string, becomes a float; a mapping ``{4: 1e-3}`` becomes a tuple of
pairs; ``null`` fills an ``Optional`` field; a union of dataclasses with a ``kind`` field
is a tagged union (``model: {kind: varnet, ...}`` picks the class whose ``kind`` default
is ``varnet``). Floats must be finite. Every error is one
:class:`~mrirecon.errors.ConfigError` line that names the file or the ``--set``
argument and the key. :func:`write_yaml` writes a config atomically.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import yaml

from mrirecon.errors import ConfigError
from mrirecon.io import atomic_write

__all__ = [
    "Override",
    "parse_overrides",
    "read_yaml",
    "typed_from_dict",
    "load_typed",
    "to_plain",
    "write_yaml",
]

T = TypeVar("T")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class Override(NamedTuple):
    """One ``--set`` item: the dotted key, its YAML-parsed value and the argument as given."""

    key: str
    value: Any
    arg: str


class _SchemaError(ConfigError):
    """A schema error that knows the dotted key at fault ("" = the whole config)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_overrides(items: Sequence[str], flag: str = "--set") -> list[Override]:
    """Parse ``key=value`` strings (dotted keys of any depth; values read as YAML).

    Args:
        items: the arguments as given, e.g. ``["optim.lr=3e-4", "espirit.kernel_width=6"]``.
        flag: the option name used in error messages (``--set``, ``--cs-set``).

    Returns:
        one :class:`Override` per item, in order (a later one wins).

    Raises:
        ConfigError: "<flag> '<item>': reason" for a missing ``=``, an empty key part
            or a value that is not valid YAML.
    """
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{flag} {item!r}: value is not valid YAML ({_first_line(exc)})"
            ) from None
        out.append(Override(".".join(p.strip() for p in key.split(".")), value, item))
    return out


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """The parsed YAML document of a config file (None for an empty file).

    Raises:
        ConfigError: "<path>: reason" when the file is missing, unreadable or not YAML.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({_first_line(exc)})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({_first_line(exc)})") from None


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """``value`` converted to the annotated type ``tp`` (``key`` names it in errors)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) > 1 and all(_kind(a) for a in args):
            return _build(_tagged(key, args, value), value, key)
        return _coerce(key, args[0], value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is tuple:
        return _coerce_tuple(key, typing.get_args(tp), value)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value.strip()) if isinstance(value, str) else int(value)
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            number = float(value)
        elif tp is str:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError
            return str(value)
        else:
            raise _SchemaError(key, f"{key}: unsupported type {tp}")
    except (TypeError, ValueError, OverflowError):
        raise _SchemaError(key, f"{key}: expected {tp.__name__}, got {_short(value)}") from None
    if not math.isfinite(number):
        raise _SchemaError(key, f"{key}: expected a finite number, got {_short(value)}")
    return number


def _is_section(tp: Any) -> bool:
    """A dataclass, or a tagged union of dataclasses (a config section)."""
    if dataclasses.is_dataclass(tp):
        return True
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return len(args) > 1 and all(_kind(a) for a in args)


def _kind(cls: Any) -> str | None:
    """The default of a dataclass's ``kind`` field (its tag in a tagged union), else None."""
    if not dataclasses.is_dataclass(cls):
        return None
    field = next((f for f in dataclasses.fields(cls) if f.name == "kind"), None)
    return field.default if field is not None and isinstance(field.default, str) else None


def _tagged(key: str, classes: Sequence[Any], value: Any) -> Any:
    """The class of a tagged union that ``value['kind']`` names (the first one by default)."""
    kinds = {_kind(c): c for c in classes}
    kind = value.get("kind", _kind(classes[0])) if isinstance(value, Mapping) else _kind(classes[0])
    if kind not in kinds:
        where = f"{key}.kind" if key else "kind"
        raise _SchemaError(where, f"{where}: unknown {_short(kind)}; choose from {sorted(kinds)}")
    return kinds[kind]


def _coerce_tuple(key: str, args: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    if isinstance(value, Mapping):  # {acceleration: lam} is the YAML form of ((a, lam), ...)
        value = list(value.items())
    elif isinstance(value, str):  # "--set optim.betas=0.8,0.99" (or "[0.8, 0.99]")
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    if not isinstance(value, list | tuple):
        value = [value]
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(key, args[0], v) for v in value)
    if len(value) != len(args):
        raise _SchemaError(key, f"{key}: expected {len(args)} values, got {_short(list(value))}")
    return tuple(_coerce(key, a, v) for a, v in zip(args, value, strict=True))


def _build(cls: type[T], raw: Any, key: str) -> T:
    """``cls`` from the mapping ``raw`` at dotted position ``key`` ("" = the root)."""
    where = key or "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _SchemaError(key, f"{where} must be a mapping, got {_short(raw)}")
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in raw if k not in names)
    if unknown:
        bad = unknown[0]
        if key:
            raise _SchemaError(
                f"{key}.{bad}",
                f"unknown key {key}.{bad}; valid keys in {key!r}: {', '.join(names)}",
            )
        hints = typing.get_type_hints(cls)
        if all(_is_section(hints[n]) for n in names):
            raise _SchemaError(
                bad, f"unknown config section {bad!r}; valid sections: {', '.join(names)}"
            )
        raise _SchemaError(bad, f"unknown key {bad!r}; valid keys: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {
        name: _coerce(f"{key}.{name}" if key else name, hints[name], value)
        for name, value in raw.items()
    }
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a __post_init__ range or choice check
        msg = _first_line(exc)
        text = f"{key}: {msg}" if key and key not in msg else msg
        raise _SchemaError(_fault_key(names, key, msg), text) from None


def _fault_key(names: Sequence[str], key: str, msg: str) -> str:
    """The dotted key a check's message starts with (``optim.lr must be ...``), else ``key``.

    Lets an override be blamed precisely for a check made by a dataclass's __post_init__.
    """
    token = msg.replace(":", " ").split(" ", 1)[0]
    rel = token[len(key) + 1 :] if key and token.startswith(key + ".") else token
    if rel.split(".")[0] in names:
        return f"{key}.{rel}" if key else rel
    return key


def _related(override_key: str, error_key: str) -> bool:
    if not error_key:
        return True
    return (
        override_key == error_key
        or override_key.startswith(error_key + ".")
        or error_key.startswith(override_key + ".")
    )


def _apply(raw: Any, overrides: Sequence[Override], flag: str) -> Any:
    out = copy.deepcopy(raw) if raw is not None else {}
    for ov in overrides:
        node = out
        parts = ov.key.split(".")
        if not isinstance(node, dict):
            raise ConfigError(f"{flag} {ov.arg}: the config is not a mapping")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"{flag} {ov.arg}: {where} is not a mapping")
            node = child
        node[parts[-1]] = ov.value
    return out


def typed_from_dict(
    cls: type[T],
    raw: Any,
    *,
    source: str = "config",
    overrides: Sequence[Override] = (),
    flag: str = "--set",
) -> T:
    """Build the dataclass ``cls`` from a nested mapping plus parsed overrides.

    Args:
        cls: a (frozen) dataclass whose fields may be nested dataclasses.
        raw: the mapping (missing keys take their defaults; None = all defaults).
        source: what ``raw`` came from, named in errors (a file path).
        overrides: from :func:`parse_overrides`, applied in order.
        flag: the override option's name in errors.

    Returns:
        the validated instance.

    Raises:
        ConfigError: one line naming ``source`` (or the ``--set`` arguments at fault)
            and the key.
    """
    merged = _apply(raw, overrides, flag)
    try:
        return _build(cls, merged, "")
    except _SchemaError as exc:
        if not overrides:
            raise ConfigError(f"{source}: {exc}") from None
        try:
            _build(cls, raw, "")
        except _SchemaError as alone:
            if str(alone) == str(exc):  # the file itself is at fault
                raise ConfigError(f"{source}: {exc}") from None
        section = exc.key.split(".")[0]
        blamed = (
            [ov for ov in overrides if _related(ov.key, exc.key)]
            or [ov for ov in overrides if _related(ov.key, section)]
            or list(overrides)
        )
        args = ", ".join(f"{flag} {ov.arg}" for ov in blamed)
        raise ConfigError(f"{args}: {exc}") from None


def load_typed(
    cls: type[T],
    path: str | os.PathLike[str] | None,
    overrides: Sequence[str] = (),
    *,
    flag: str = "--set",
    section: str | None = None,
) -> T:
    """Read a YAML config file (None = defaults) into ``cls`` and apply overrides.

    Args:
        cls: the dataclass to build.
        path: the YAML file, or None for the defaults.
        overrides: ``key=value`` strings (see :func:`parse_overrides`).
        flag: the override option's name in errors.
        section: if the file's top level holds this key, only that mapping is the config
            (other top-level keys are records, e.g. ``tuning`` of a tuned CS file).

    Returns:
        the validated instance.

    Raises:
        ConfigError: one line naming the file or the ``--set`` argument and the key.
    """
    parsed = parse_overrides(overrides, flag)
    raw: Any = None if path is None else read_yaml(path)
    if section is not None and isinstance(raw, Mapping) and section in raw:
        raw = raw[section]
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a config must be a mapping, got {type(raw).__name__}")
    source = str(path) if path is not None else "defaults"
    return typed_from_dict(cls, raw, source=source, overrides=parsed, flag=flag)


def to_plain(value: Any) -> Any:
    """Plain nested dicts and lists of a (dataclass) value, safe for YAML, JSON and torch."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def write_yaml(doc: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Atomically write ``doc`` as YAML (keys in the given order); creates the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(yaml.safe_dump(dict(doc), sort_keys=False))
