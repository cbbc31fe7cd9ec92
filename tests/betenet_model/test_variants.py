"""The variant registry is what the network, the data code and the CLI read."""

import subprocess
import sys

import pytest

from betenet_model.features import DOS_BINS, NUM_SPECIES, input_dim
from betenet_model.variants import DEFAULT_VARIANT, VARIANTS, get_variant
from launchers.cli import build_parser


def test_input_width_follows_the_registry():
    for name, variant in VARIANTS.items():
        extra = DOS_BINS if variant.takes_site_dos else 0
        assert input_dim(name) == NUM_SPECIES + extra
    assert get_variant(None).name == DEFAULT_VARIANT
    assert get_variant("FPD") is VARIANTS["fpd"]


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="unknown model variant 'xyz'; choose one of cso, cpd"):
        get_variant("xyz")


def test_train_choices_are_the_registry():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    train = sub.choices["train"]
    option = next(a for a in train._actions if a.dest == "variant")
    assert tuple(option.choices) == tuple(VARIANTS)


def test_registry_imports_without_torch():
    code = "import sys, betenet_model.variants; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
