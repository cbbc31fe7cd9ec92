"""Foundation features from the real SevenNet models of the installed wheel (no mock)."""

from __future__ import annotations

import numpy as np
import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from stores.mlip_phonons import find_mlip_phonons
from stores.schemas import MLIP_FEATURES_DOC_TYPE
from workflows.mlip import features as ft
from workflows.mlip.potentials import PotentialError


def nb3al() -> Structure:
    """A15 Nb3Al (8 sites: two Wyckoff orbits, Al on 2a and Nb on 6c)."""
    return Structure.from_spacegroup("Pm-3n", Lattice.cubic(5.19), ["Al", "Nb"],
                                     [[0, 0, 0], [0.25, 0, 0.5]])


@pytest.fixture
def store():
    s = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    s.connect()
    return s


@pytest.mark.parametrize("potential", ["sevennet-0", "sevennet-l3i5", "sevennet-mf-0"])
def test_last_layer_features_are_per_site_invariants(potential):
    s = nb3al()
    x = ft.atom_features(s, potential)
    assert x.shape == (8, 128) and np.all(np.isfinite(x)) and ft.feature_width(potential) == 128
    species = [site.specie.symbol for site in s]
    nb = [i for i, e in enumerate(species) if e == "Nb"]
    al = [i for i, e in enumerate(species) if e == "Al"]
    # symmetry-equivalent sites get the same row, Nb and Al different ones
    np.testing.assert_allclose(x[nb], np.broadcast_to(x[nb[0]], x[nb].shape), rtol=1e-3,
                               atol=1e-3)       # float32 model
    assert np.abs(x[nb[0]] - x[al[0]]).max() > 0.1
    # a rotated, translated copy (other cell vectors, same crystal) gives the same features
    moved = Structure(Lattice(s.lattice.matrix[[1, 2, 0]]), s.species,
                      (s.frac_coords[:, [1, 2, 0]] + 0.13) % 1.0)
    np.testing.assert_allclose(ft.atom_features(moved, potential), x, rtol=1e-3, atol=1e-3)


def test_features_see_the_environment_not_only_the_element():
    dense = Structure(Lattice.cubic(3.30), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    stretched = Structure(Lattice.cubic(3.60), ["Nb", "Nb"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    a, b = ft.atom_features(dense, "sevennet-l3i5"), ft.atom_features(stretched, "sevennet-l3i5")
    assert np.abs(a - b).max() > 0.05


def test_uncovered_element_and_non_sevennet_potential_are_refused():
    po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    with pytest.raises(PotentialError, match="does not cover Po"):
        ft.atom_features(po, "sevennet-0")
    with pytest.raises(PotentialError, match="need a SevenNet potential"):
        ft.atom_features(nb3al(), "chgnet")


def test_feature_documents_are_stored_once_and_reused(store, monkeypatch):
    s = nb3al()
    first = ft.feature_documents([("nb3al", s)], "sevennet-l3i5", store)[0]
    assert not first["reused"] and np.asarray(first["atom_features"]).shape == (8, 128)
    assert first["potential_package"] == "sevenn" and first["settings"]["layer"]
    stored = find_mlip_phonons(store, {first["key"]}, MLIP_FEATURES_DOC_TYPE)
    assert list(stored) == [first["key"]]
    calls = []
    monkeypatch.setattr(ft, "atom_features", lambda *a: calls.append(a))   # must not be called
    again = ft.feature_documents([("nb3al", s)], "sevennet-l3i5", store)[0]
    assert again["reused"] and calls == []
    np.testing.assert_allclose(again["atom_features"], first["atom_features"])
    # another potential is another document; stored_only reports what is missing
    missing = ft.feature_documents([("nb3al", s)], "sevennet-0", store, stored_only=True)[0]
    assert "no stored sevennet-0 feature document" in missing["error"]
    assert ft.feature_key(s, "sevennet-0") != ft.feature_key(s, "sevennet-l3i5")


def test_feature_models_load_with_the_network_off(monkeypatch):
    """Every SevenNet model of the foundation modes ships in the wheel: nothing is fetched."""
    import socket

    from workflows.mlip import potentials as pots

    def refuse(*_args, **_kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        for name in ("sevennet-0", "sevennet-l3i5", "sevennet-mf-0"):
            pots._calculator.cache_clear()
            assert np.all(np.isfinite(ft.atom_features(nb3al(), name)))
    finally:
        pots._calculator.cache_clear()
