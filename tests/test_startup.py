"""Start-up: ``mrirecon --help`` and every ``mrirecon COMMAND --help`` load no heavy library."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from mrirecon.cli import COMMANDS
from mrirecon.methods import METHODS

HEAVY = {"torch", "scipy", "matplotlib", "skimage", "sigpy"}

# Runs one command line in a fresh interpreter and prints the modules it imported.
PROBE = """
import contextlib, io, json, sys
from mrirecon.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def _imported(argv: list[str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"]] + [[c, "--help"] for c in COMMANDS], ids=str)
def test_help_imports_no_heavy_library(argv):
    heavy = {m.split(".")[0] for m in _imported(argv)} & HEAVY
    assert not heavy, (argv, sorted(heavy))


def test_a_command_imports_only_its_own_module():
    loaded = _imported(["evaluate", "--help"])
    cli = {m for m in loaded if m.startswith("mrirecon.cli.")}
    assert cli == {"mrirecon.cli.evaluate"}, sorted(cli)
    assert not {m for m in loaded if m.startswith(("mrirecon.methods", "mrirecon.train"))}


def test_method_table_matches_the_specs():
    """The method kinds the CLI lists without importing (METHODS) are the specs' own."""
    for kind, module, cls in METHODS:
        assert getattr(importlib.import_module(module), cls).kind == kind
