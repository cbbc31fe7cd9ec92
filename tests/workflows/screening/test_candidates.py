import json

import pytest
from pymatgen.core import Lattice, Structure

from tests.workflows.screening.conftest import bcc, fcc
from workflows.qe.pseudos import PseudoFamily
from workflows.screening.candidates import (
    Candidate,
    deduplicate,
    read_candidates,
    screen_candidates,
)


def test_folder_reads_every_format_and_rejects_unreadable(candidate_dir):
    found = read_candidates(candidate_dir)
    assert {c.id for c in found.accepted} == {"AlMg", "Al", "Al_again", "Cu", "Li", "POSCAR"}
    assert [(r.id, r.reason) for r in found.rejected] == [("broken", "unreadable")]


def test_checks_and_deduplication(candidate_dir, pslibrary_dir):
    family = PseudoFamily.from_path(pslibrary_dir)
    checked = screen_candidates(read_candidates(candidate_dir), family=family, max_atoms=16)
    assert sorted(c.formula for c in checked.accepted) == ["Al", "Cu", "Li", "Nb"]
    reasons = {r.id: r.reason for r in checked.rejected}
    assert reasons == {"broken": "unreadable", "AlMg": "disordered", "Al_again": "duplicate"}
    dup = next(r for r in checked.rejected if r.reason == "duplicate")
    assert "Al" in dup.detail


def test_too_many_atoms_and_missing_pseudopotential(tmp_path):
    big = fcc("Al", 4.04).copy()
    big.make_supercell([2, 2, 2])
    big.perturb(0.05, 0.05)       # stays a 32-atom primitive cell
    fam = PseudoFamily.debian()   # Debian's LDA files: no Nb
    cands = [Candidate("big", big), Candidate("Nb", bcc("Nb", 3.3))]
    checked = screen_candidates(cands, max_atoms=8, family=fam)
    reasons = {r.id: r.reason for r in checked.rejected}
    assert reasons == {"big": "too_many_atoms", "Nb": "missing_pseudopotential"}
    assert "Nb" in next(r.detail for r in checked.rejected if r.id == "Nb")


def test_dedup_against_known_only_within_formula():
    known = [("Al (completed, abc)", fcc("Al", 4.05))]
    cands = [Candidate("a", fcc("Al", 4.10)), Candidate("b", fcc("Cu", 3.61)),
             Candidate("c", bcc("Al", 3.2))]
    kept, rejected = deduplicate(cands, known)
    assert [c.id for c in kept] == ["b", "c"]
    assert rejected[0].reason == "already_computed" and "abc" in rejected[0].detail


def test_json_jsonl_and_betenet_folder(tmp_path):
    al, cu = fcc("Al", 4.04), fcc("Cu", 3.61)
    (tmp_path / "list.json").write_text(json.dumps(
        [{"id": "mp-1", "structure": al.as_dict()}, cu.as_dict()]))
    (tmp_path / "lines.jsonl").write_text(
        json.dumps({"id": "x1", "structure": al.as_dict()}) + "\n{not json}\n"
        + json.dumps({"id": "x2", "structure": {"bad": 1}}) + "\n")
    found = read_candidates([tmp_path / "list.json", tmp_path / "lines.jsonl"])
    assert [c.id for c in found.accepted] == ["mp-1", "list:1", "x1"]
    assert sorted(r.reason for r in found.rejected) == ["unreadable", "unreadable"]
    bn = tmp_path / "bete-net"
    bn.mkdir()
    for i, s in ((10, al), (2, cu), (107, al), (689, cu)):
        s.to(filename=str(bn / f"{i}.cif"))
    found = read_candidates(bn)
    assert [c.id for c in found.accepted] == ["bete-net:2", "bete-net:10"]
    # held out for evaluation: never screened, so never sent to DFPT
    assert [(r.id, r.reason) for r in found.rejected] == [("bete-net:107", "reserved"),
                                                          ("bete-net:689", "reserved")]
    assert "reserved" in found.report()[0] and "evaluate" in found.report()[0]


def test_store_source_and_dedup_against_store(store, fake_dfpt, tmp_path):
    from stores.records import write_screening_documents
    from workflows.qe.flows import ElphFlowMaker
    from workflows.qe.local import run_elph

    doc = {"doc_type": "screening", "candidate_id": "cu1", "formula": "Cu", "model_id": "m",
           "acquisition": "mean", "score": 1.0, "rank": 1,
           "structure": fcc("Cu", 3.61).as_dict()}
    write_screening_documents(store, [doc])
    maker = ElphFlowMaker.from_preset(pseudo_family=str(PseudoFamily.debian().directory),
                                      scratch_dir=str(tmp_path))
    run_elph([("al", fcc("Al", 4.04))], maker, store)
    found = read_candidates(["store"], store=store)
    assert [c.id for c in found.accepted] == ["cu1"]
    checked = screen_candidates([Candidate("al2", fcc("Al", 4.0)), *found.accepted],
                                store=store)
    assert [c.id for c in checked.accepted] == ["cu1"]
    assert checked.rejected[0].reason == "already_computed"


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_candidates(tmp_path / "nope")
    with pytest.raises(ValueError, match="needs --store"):
        read_candidates("store")


def test_candidate_roundtrip():
    c = Candidate("x", Structure(Lattice.cubic(3), ["Cu"], [[0, 0, 0]]), "f.cif")
    assert Candidate.from_dict(c.as_dict()).structure == c.structure
