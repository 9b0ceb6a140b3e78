"""Method specs: lookup, labels, report pairs and distinct names for several checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrirecon.errors import ConfigError
from mrirecon.methods import (
    MethodOptions,
    UnetSpec,
    baseline_method,
    comparison_pairs,
    method_label,
    spec_class,
    specs_for,
)
from tests.recon_utils import tiny_checkpoint


def test_two_checkpoints_of_one_kind_get_distinct_names(tmp_path):
    a = tiny_checkpoint(tmp_path / "runA" / "last.pt")
    b = tiny_checkpoint(tmp_path / "runB" / "last.pt", seed=1)
    specs = specs_for(None, MethodOptions(), [a, b])
    assert [s.name for s in specs] == ["zero-filled", "cs", "unet@runA", "unet@runB"]
    assert [method_label(s.name) for s in specs[2:]] == ["U-Net (runA)", "U-Net (runB)"]
    same = specs_for(["unet", "unet"], MethodOptions(), [a, a])
    assert len({s.name for s in same}) == 2
    assert spec_class("unet@runA") is UnetSpec


def test_pairs_and_baseline_follow_the_tiers():
    names = ["zero-filled", "cs", "unet@a", "varnet"]
    assert comparison_pairs(names) == [("unet@a", "cs"), ("varnet", "cs"), ("cs", "zero-filled")]
    assert baseline_method(names) == "zero-filled" and baseline_method(["cs", "unet"]) is None


def test_unknown_method_and_bad_tag_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        specs_for(["magic"], MethodOptions())
    with pytest.raises(ConfigError, match="tag"):
        UnetSpec(Path("x.pt"), tag="a b")
