"""The one config mechanism (mrirecon.config) as training and CS use it."""

from __future__ import annotations

import pytest
import yaml

from mrirecon.config import Override, parse_overrides, write_yaml
from mrirecon.cs.config import (
    CSConfig,
    EspiritConfig,
    cs_config_to_dict,
    load_cs_config,
    save_cs_config,
)
from mrirecon.errors import ConfigError
from mrirecon.train.config import TrainConfig, load_train_config, save_train_config


def test_cs_yaml_strings_are_coerced_like_training(tmp_path):
    # YAML 1.1 reads 1e-3 (no dot) as the string "1e-3": the bug this mechanism fixes.
    assert yaml.safe_load("lam: 1e-3")["lam"] == "1e-3"
    path = tmp_path / "cs.yaml"
    path.write_text("cs:\n  lam: 1e-3\n  tol: 1e-4\n  iterations: '20'\n")
    cfg = load_cs_config(path)
    assert cfg.lam == 1e-3 and isinstance(cfg.lam, float)
    assert cfg.tol == 1e-4 and cfg.iterations == 20
    assert cfg.lam_for(8.0) == 1e-3
    train = tmp_path / "t.yaml"
    train.write_text("optim:\n  lr: 1e-3\n")
    assert load_train_config(train).optim.lr == 1e-3


def test_cs_nested_mapping_optional_and_top_level_form(tmp_path):
    path = tmp_path / "cs.yaml"
    path.write_text("lam: null\nlams: {4: 2e-3, 8: 5e-4}\nespirit:\n  kernel_width: '5'\n")
    cfg = load_cs_config(path)  # options at the top level (no ``cs:`` key)
    assert cfg.lam is None
    assert cfg.lams == ((4.0, 2e-3), (8.0, 5e-4))
    assert cfg.espirit == EspiritConfig(kernel_width=5)
    assert load_cs_config(None) == CSConfig()


def test_cs_overrides_any_depth(tmp_path):
    cfg = load_cs_config(None, ["iterations=20", "espirit.kernel_width=6", "lams={4: 1e-2}"])
    assert cfg.iterations == 20 and cfg.espirit.kernel_width == 6
    assert cfg.lams == ((4.0, 1e-2),)


def test_cs_save_is_atomic_and_round_trips_with_records(tmp_path):
    cfg = CSConfig(iterations=7, lam=2e-3, espirit=EspiritConfig(threshold=0.05))
    path = tmp_path / "sub" / "cs.yaml"
    save_cs_config(cfg, path, extra={"tuning": {"data": "x"}})
    doc = yaml.safe_load(path.read_text())
    assert doc["tuning"] == {"data": "x"} and doc["cs"] == cs_config_to_dict(cfg)
    assert load_cs_config(path) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["cs.yaml"]


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    save_train_config(TrainConfig(), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(yaml, "safe_dump", boom)
    with pytest.raises(OSError, match="disk full"):
        save_train_config(TrainConfig(), path)
    with pytest.raises(OSError, match="disk full"):
        write_yaml({"a": 1}, tmp_path / "other.yaml")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("optim:\n  lrr: 1\n", r"c\.yaml: unknown key optim\.lrr; valid keys in 'optim': name, lr"),
        ("foo: 1\n", r"c\.yaml: unknown config section 'foo'; valid sections: data, mask"),
        ("optim: [1, 2]\n", r"c\.yaml: optim must be a mapping, got \[1, 2\]"),
        ("- 1\n- 2\n", r"c\.yaml: a config must be a mapping, got list"),
        ("run:\n  epochs: 1.5\n", r"c\.yaml: run\.epochs: expected int, got 1\.5"),
        ("optim:\n  lr: .nan\n", r"c\.yaml: optim\.lr: expected a finite number"),
        ("run:\n  epochs: 0\n", r"c\.yaml: run\.epochs must be >= 1, got 0"),
    ],
)
def test_train_file_errors_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_train_config(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, match",
    [
        ("cs:\n  lamda: 1\n", r"c\.yaml: unknown key 'lamda'; valid keys: wavelet, levels"),
        ("cs:\n  espirit: {kernel: 5}\n", r"c\.yaml: unknown key espirit\.kernel; valid keys in"),
        ("cs:\n  lam: -1\n", r"c\.yaml: lam: lambda must be > 0"),
        ("cs:\n  lams: {4: .inf}\n", r"c\.yaml: lams: expected a finite number"),
        ("cs:\n  levels: 0\n", r"c\.yaml: levels must be >= 1, got 0"),
        ("cs:\n  seed: -1\n", r"c\.yaml: seed must be >= 0"),
    ],
)
def test_cs_file_errors_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_cs_config(path)


def test_parse_overrides():
    got = parse_overrides(["a.b.c=[1, 2]", "x= yes ", "e="])
    assert got == [
        Override("a.b.c", [1, 2], "a.b.c=[1, 2]"),
        Override("x", True, "x= yes "),
        Override("e", "", "e="),
    ]
    for bad in ("novalue", "=3", "a..b=1", ".a=1"):
        with pytest.raises(ConfigError, match=r"^--set '.*': expected KEY=VALUE"):
            parse_overrides([bad])
    with pytest.raises(ConfigError, match=r"^--cs-set 'iterations=\[1': value is not valid YAML"):
        parse_overrides(["iterations=[1"], flag="--cs-set")


def test_override_errors_name_the_set_argument_not_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n")
    with pytest.raises(ConfigError, match=r"^--set optim\.lrr=1: unknown key optim\.lrr"):
        load_train_config(path, ["run.epochs=2", "optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"^--set run\.epochs=0: run\.epochs must be >= 1"):
        load_train_config(path, ["optim.lr=1e-2", "run.epochs=0"])
    with pytest.raises(
        ConfigError, match=r"^--set model\.drop_prob=2: model\.drop_prob must be in"
    ):
        load_train_config(path, ["run.epochs=3", "model.drop_prob=2"])  # a cross-section check
    with pytest.raises(ConfigError, match=r"^--set levels=0: levels must be >= 1"):
        load_cs_config(None, ["iterations=3", "levels=0"])
    with pytest.raises(ConfigError, match=r"^--set optim\.lr\.x=1: optim\.lr is not a mapping"):
        load_train_config(path, ["optim.lr.x=1"])
    with pytest.raises(ConfigError, match=r"^--cs-set espirit\.crop=2: espirit crop must be in"):
        load_cs_config(None, ["espirit.crop=2"], flag="--cs-set")
    # an error already in the file names the file even when overrides are given
    path.write_text("optim:\n  lr: -1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: optim\.lr must be > 0"):
        load_train_config(path, ["run.epochs=2"])
    # ... and an override may repair the file
    assert load_train_config(path, ["optim.lr=1e-3"]).optim.lr == 1e-3
