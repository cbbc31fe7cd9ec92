"""``load_training_data``: the rows ``bete train`` / ``bete evaluate`` take from ``--data``."""

from __future__ import annotations

import pytest

from stores.datasets import load_fast_v1, packaged_fast_v1_dir
from workflows.ml.training_data import DataOptions, load_training_data


def test_packaged_sources_combine_and_say_what_they_read():
    said = []
    rows = load_training_data(DataOptions(source="fast-v1", more_sources=("jarvis-tc",)),
                              say=said.append)
    n_fast = len(load_fast_v1(None, report=lambda _m: None))
    tc_only = [r for r in rows if not r.has_spectrum]
    assert len(rows) - len(tc_only) == n_fast and tc_only
    assert any(line.startswith("data: packaged fast-v1 records") for line in said)
    assert f"data: {len(tc_only)} rows from jarvis-tc ({len(tc_only)} with a Tc label only)" \
        in said


def test_the_two_sides_of_a_split_partition_the_rows():
    opts = dict(source=str(packaged_fast_v1_dir()), test_fraction=0.3, split_seed=1)
    every = {r.id for r in load_training_data(DataOptions(**opts))}
    train = {r.id for r in load_training_data(DataOptions(**opts, split="train"))}
    test = {r.id for r in load_training_data(DataOptions(**opts, split="test"))}
    assert train and test and not train & test and train | test == every


def test_a_source_given_twice_is_refused():
    with pytest.raises(ValueError, match="occur in more than one --data source; give each "
                                         "source once"):
        load_training_data(DataOptions(source="fast-v1", more_sources=("fast-v1",)))


def test_an_unreadable_source_is_named(tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(ValueError, match=f"cannot read training data from {missing}"):
        load_training_data(DataOptions(source=str(missing)))
