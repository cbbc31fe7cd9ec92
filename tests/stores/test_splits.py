"""Grouped splits: whole chemical systems, or one element, on the test side."""

import pytest

from stores.datasets import chemical_system, grouped_split, load_fast_v1


@pytest.fixture(scope="module")
def records():
    return load_fast_v1(None, drop_unstable=False)


def test_chemsys_split_keeps_systems_together(records):
    for seed in range(5):
        train, test = grouped_split(records, "chemsys", 0.25, seed)
        assert len(train) + len(test) == len(records)
        assert len(test) >= 0.25 * len(records)
        assert not {chemical_system(r) for r in train} & {chemical_system(r) for r in test}
    # seeded and independent of the row order
    a = grouped_split(records, "chemsys", 0.25, 3)[1]
    b = grouped_split(list(reversed(records)), "chemsys", 0.25, 3)[1]
    assert [r.id for r in a] == [r.id for r in b]


def test_leave_one_element_out(records):
    element = sorted({e for r in records for e in r.elements})[0]
    train, test = grouped_split(records, "element", element=element)
    assert test and all(element in r.elements for r in test)
    assert all(element not in r.elements for r in train)
    with pytest.raises(ValueError, match="needs the element"):
        grouped_split(records, "element")
    with pytest.raises(ValueError, match="empty side"):
        grouped_split(records, "element", element="Og")
    with pytest.raises(ValueError, match="unknown split grouping"):
        grouped_split(records, "formula")


def test_random_is_the_plain_split(records):
    from stores.datasets import split_records

    assert grouped_split(records, "random", 0.3, 2) == split_records(records, 0.3, 2)
