"""The mpd site DOS: real SevenNet-0 phonons of one-atom cells (no mock of the potential)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from betenet_model.training import TrainConfig
from betenet_model.variants import get_variant
from stores.datasets import load_fast_v1
from stores.mlip_phonons import iter_mlip_phonons
from workflows.ml.mlip_dos import (
    candidate_site_dos,
    mlip_site_dos,
    uses_mlip_dos,
    with_mlip_site_dos,
)
from workflows.ml.predict import predict_structures
from workflows.ml.train import train_from_records
from workflows.screening.candidates import Candidate

TINY = {"mul": 4, "embed_dim": 8, "radial_neurons": 8, "lmax": 1, "layers": 1}


@pytest.fixture
def store():
    s = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    s.connect()
    return s


def one_atom_records(n: int = 2):
    """The first ``n`` one-atom stable fast-v1 records (elemental metals) but Cs.

    SevenNet-0 sees no neighbour of a Cs atom (5 Å cutoff), so it has no MLIP phonons.
    """
    return [r for r in load_fast_v1(None) if len(r.structure) == 1 and r.formula != "Cs"][:n]


def test_mpd_is_the_mlip_source():
    assert get_variant("mpd").site_dos == "mlip" and uses_mlip_dos("MPD")
    assert not uses_mlip_dos("cso") and not uses_mlip_dos("fpd")


def test_records_get_the_stored_document_dos_and_bad_rows_are_reported(store):
    good = one_atom_records(1)
    bad = good[0].structure.copy()
    bad.replace_species({bad[0].specie: {bad[0].specie: 0.5, "Al": 0.5}})  # disordered
    rows = [*good, type(good[0])(id="disordered", structure=bad, tc_K=1.0)]
    said: list[str] = []
    assert with_mlip_site_dos(good, store, say=said.append, stored_only=True) == []
    assert "no stored MLIP phonon document" in said[-1]
    out = with_mlip_site_dos(rows, store, say=said.append)
    assert [r.id for r in out] == [good[0].id]
    assert "1 of 2 rows left out" in said[-1] and "disordered" in said[-1]
    [doc] = list(iter_mlip_phonons(store))
    assert np.allclose(out[0].site_dos, doc["site_dos"])
    assert out[0].site_dos.shape == (1, len(doc["frequencies_meV"]))
    # the second request reads the stored document (same numbers, no new one)
    freq, dos = mlip_site_dos(good[0].structure, store)
    assert np.allclose(dos, out[0].site_dos) and len(list(iter_mlip_phonons(store))) == 1


@pytest.mark.slow
def test_mpd_trains_and_predicts_on_mlip_dos(store, tmp_path):
    rows = with_mlip_site_dos(one_atom_records(2), store)
    ens = train_from_records(rows, tmp_path / "mpd", variant="mpd", members=1, seed=0,
                             training=TrainConfig(max_epochs=2, checkpoint_every=0),
                             network_options=TINY)
    assert json.loads((tmp_path / "mpd" / "ensemble.json").read_text())["variant"] == "mpd"
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                     [0, 0.5, 0.5]]).get_primitive_structure()
    [pred] = predict_structures([al], ens, ids=["Al"], site_dos=[mlip_site_dos(al, store)])
    assert np.isfinite(pred.mean["tc_K"]) and pred.mean["lambda"] > 0
    with pytest.raises(ValueError, match="needs the site-projected phonon DOS"):
        predict_structures([al], ens, ids=["Al"])


def test_candidates_get_dos_or_a_reason(store):
    [rec] = one_atom_records(1)
    lone = Structure(Lattice.cubic(12.0), ["Cs"], [[0, 0, 0]])  # no neighbour: zero forces
    found, failed = candidate_site_dos(
        [Candidate("a", rec.structure, "test"), Candidate("cs", lone, "test")], store)
    assert set(found) == {"a"} and set(failed) == {"cs"}
    assert "zero forces" in failed["cs"]
    assert np.asarray(found["a"]["site_dos"]).shape[0] == 1
    assert Structure.from_dict(found["a"]["structure"]) == rec.structure
