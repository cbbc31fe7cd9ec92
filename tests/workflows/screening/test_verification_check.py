"""Screening needs valid structures only; the verification step checks what DFPT needs.

And "already computed" means: a task document of the verification's protocol for the same
structure, not of any protocol (issue 26).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore
from monty.json import jsanitize

from stores import records as rec
from stores.schemas import ScfSummary
from tests.workflows.screening.conftest import bcc, fcc
from workflows.qe.documents import elph_document
from workflows.qe.jobs import ELPH_BLOB_FIELDS
from workflows.qe.pseudos import PseudoFamily, family_covering
from workflows.screening.candidates import (
    Candidate,
    VerificationCheck,
    screen_candidates,
    stored_structures,
)
from workflows.screening.prescreen import StabilityPrescreen, select_for_dfpt

DEBIAN = Path("/usr/share/espresso/pseudo")


@pytest.fixture
def debian() -> PseudoFamily:
    if not (DEBIAN / "Al.pz-vbc.UPF").is_file():
        pytest.skip("Debian's quantum-espresso-data pseudopotentials are not installed")
    return PseudoFamily.debian()


def _memory_store() -> JobStore:
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    return store


def test_screening_checks_no_pseudopotential_nor_atom_limit(debian):
    big = fcc("Al", 4.04).copy()
    big.make_supercell([2, 2, 2])
    big.perturb(0.05, 0.05)       # a 32-atom primitive cell
    cands = [Candidate("big", big), Candidate("Nb", bcc("Nb", 3.3))]
    assert [c.id for c in screen_candidates(cands, for_dfpt=False).accepted] == ["big", "Nb"]
    assert {r.reason for r in screen_candidates(cands, max_atoms=8, family=debian).rejected} \
        == {"too_many_atoms", "missing_pseudopotential"}


def test_the_verification_skips_what_the_family_lacks_and_says_who_would(debian, pslibrary_dir,
                                                                        monkeypatch):
    """Ranked Nb3Ta (no Debian file for either), then Al: Al is verified instead."""
    from pymatgen.core import Lattice, Structure

    nbta = Structure(Lattice.cubic(3.3), ["Nb", "Ta"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    store = _memory_store()
    rows = [{"candidate_id": cid, "formula": s.composition.reduced_formula, "rank": i + 1,
             "structure": s.as_dict(), "model_id": "m", "acquisition": "mean",
             "round": None, "campaign": None, "doc_type": "screening"}
            for i, (cid, s) in enumerate((("x1", nbta), ("x2", fcc("Al", 4.04))))]
    rec.write_screening_documents(store, rows)
    said: list[str] = []
    chosen = select_for_dfpt(rows, 1, StabilityPrescreen(enabled=False), store,
                             {"model_id": "m"}, said.append, VerificationCheck(debian))
    assert [r["candidate_id"] for r in chosen] == ["x2"]
    docs = {d["candidate_id"]: d for d in rec.iter_screening_documents(store)}
    assert docs["x1"]["unverifiable"] == "no pseudopotential for Nb, Ta in family debian-lda"
    assert docs["x1"]["selected"] is False
    (line,) = said
    assert line.startswith("not verifiable here, left to the next candidates: TaNb (x1): no "
                           "pseudopotential for Nb, Ta. Family debian-lda has 15 elements, "
                           "not Nb, Ta; ")
    assert "pslibrary" in line and "--pseudos" in line
    # a family this machine knows (the pseudo_family setting) that covers them is named
    monkeypatch.setenv("BETE_PSEUDO_FAMILY", str(pslibrary_dir))
    assert family_covering(["Nb", "Ta"], exclude=debian).directory == pslibrary_dir.resolve()
    said.clear()
    select_for_dfpt(rows, 1, None, store, {"model_id": "m"}, said.append,
                    VerificationCheck(debian))
    assert said[0].endswith(f"{pslibrary_dir.name} covers them: --pseudos "
                            f"{pslibrary_dir.resolve()}")


def test_already_computed_means_the_same_protocol(tmp_path, al_run_dir, al_run_input_set):
    """The store's Al document counts only for a screening whose verification protocol
    is the document's own."""
    doc = elph_document(al_run_dir, al_run_input_set, "fast", "al-1", "a" * 64,
                        ScfSummary(pressure_kbar=5.0, is_metal=True), "6.7MaX", "crystal")
    store = _memory_store()
    store.update({"uuid": "u0", "index": 1, "completed_at": "0",
                  "output": jsanitize(doc.model_dump(), strict=True, enum_values=True)},
                 save={"data": list(ELPH_BLOB_FIELDS)})
    fingerprint = doc.protocol_fingerprint
    assert fingerprint and [label for label, _ in stored_structures(store, fingerprint)]
    assert stored_structures(store, "0123456789ab") == []
    cand = [Candidate("Al", fcc("Al", 4.04))]
    same = screen_candidates(cand, store=store, for_dfpt=False,
                             protocol_fingerprint=fingerprint)
    assert [(r.reason, f"protocol {fingerprint}" in r.detail) for r in same.rejected] == [
        ("already_computed", True)]
    other = screen_candidates(cand, store=store, for_dfpt=False,
                              protocol_fingerprint="0123456789ab")
    assert [c.id for c in other.accepted] == ["Al"] and other.rejected == []


def test_campaign_plans_with_the_debian_family_by_name(tmp_path, debian, capsys, monkeypatch):
    """``--pseudos debian`` (a name, not a folder) wherever the command runs."""
    from launchers.cli import main

    fcc("Al", 4.04).to(filename=str(tmp_path / "Al.cif"))
    monkeypatch.chdir(tmp_path)
    assert main(["campaign", "Al.cif", "--pseudos", "debian", "--plan", "--store",
                 str(tmp_path / "s")]) == 0
    out = capsys.readouterr()
    assert "input error" not in out.out and "debian-lda" in out.err


def test_active_learning_takes_the_verification_protocol_from_mixed_initial_data(
        tmp_path, pslibrary_dir):
    """``--initial-data`` of two protocols: the rounds' own protocol's rows, not an error
    that names ``--protocol-fingerprint`` (which ``bete al run`` does not have)."""
    import json

    from stores.datasets import packaged_fast_v1_dir
    from stores.protocol import FAST_V1_FINGERPRINT
    from workflows.screening.active_learning import ActiveLearningConfig, initial_records

    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, path in enumerate(sorted(packaged_fast_v1_dir().glob("*.json"))[:3]):
        data = json.loads(path.read_text())
        if i == 2:
            data["protocol_fingerprint"] = "0123456789ab"
        (folder / path.name).write_text(json.dumps(data))
    mine = ActiveLearningConfig(candidates=["x"], initial_data=str(folder),
                                pseudos=str(pslibrary_dir))
    rows = initial_records(mine)
    assert len(rows) == 2 and {r.protocol_fingerprint for r in rows} == {FAST_V1_FINGERPRINT}
    other = ActiveLearningConfig(candidates=["x"], initial_data=str(folder), pseudos="debian")
    with pytest.raises(ValueError, match="holds no rows of the verification protocol") as err:
        initial_records(other)
    assert "--protocol-fingerprint" not in str(err.value)
