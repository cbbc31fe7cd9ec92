"""Input sets: fast-v1 reproduction, presets, the override scheme, hashing, round trips."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Element, Lattice, Structure

from tests.conftest import AL_PSEUDO, BETE_STRUCTURES, FAST_V1, PSLIBRARY, REPO
from workflows.qe.errors import BeteInputError
from workflows.qe.inputs import MatdynInput, PhInput, PwInput, Q2rInput
from workflows.qe.preset_rules import MATDYN_ASR_FALLBACK, apply_overrides, load_preset
from workflows.qe.sets import FILE_NAMES, ElphInputGenerator
from workflows.qe.structures import read_structure


def _ok_records() -> list[Path]:
    if not FAST_V1.is_dir():
        return []
    return [p for p in sorted(FAST_V1.glob("*.json"))
            if json.loads(p.read_text()).get("status") == "ok"]


OK_RECORDS = _ok_records()


def fcc(el: str, a: float) -> Structure:
    return Structure(Lattice.cubic(a), [el] * 4,
                     [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


def bcc(el: str, a: float) -> Structure:
    return Structure(Lattice.cubic(a), [el] * 2, [[0, 0, 0], [.5, .5, .5]])


@pytest.fixture
def al_fast(al_pseudo_dir):
    return ElphInputGenerator("fast", family=al_pseudo_dir).get_input_set(fcc("Al", 4.04))


# --- fast-v1 reproduction ---------------------------------------------------------------------
def test_fast_v1_records_are_here(fast_v1_dir):
    assert len(OK_RECORDS) >= 10, "expected the fast-v1 records with status ok"


@pytest.mark.parametrize("record_path", OK_RECORDS, ids=[p.stem for p in OK_RECORDS])
def test_fast_reproduces_fast_v1_record(record_path):
    if not PSLIBRARY.is_dir() or not BETE_STRUCTURES.is_dir():
        pytest.skip("../shared is not here")
    record = json.loads(record_path.read_text())
    structure = read_structure(BETE_STRUCTURES / f"{record['id']}.cif")
    inputs = ElphInputGenerator("fast", family=PSLIBRARY, max_atoms=16).get_input_set(structure)
    assert inputs.k_grid == record["k_grid"]
    assert inputs.k_grid_dense == record["k_grid_dense"]
    assert inputs.q_grid == record["q_grid"]
    assert inputs.ecutwfc == record["ecutwfc"]
    assert inputs.ecutrho == record["ecutrho"]
    assert inputs.pseudopotentials == record["pseudopotentials"]
    expected = Structure.from_dict(record["structure"])
    got = inputs.structure
    assert [s.specie.symbol for s in got] == [s.specie.symbol for s in expected]
    np.testing.assert_allclose(got.lattice.matrix, expected.lattice.matrix, atol=1e-8)
    np.testing.assert_allclose(got.frac_coords, expected.frac_coords, atol=1e-8)
    # the same numbers reach the files QE reads
    assert inputs.scf_dense.k_grid == record["k_grid_dense"]
    assert inputs.scf.k_grid == record["k_grid"]
    assert [inputs.ph.get(f"nq{i}") for i in (1, 2, 3)] == record["q_grid"]
    assert inputs.scf.get("ecutwfc") == record["ecutwfc"]
    assert inputs.scf_dense.get("ecutrho") == record["ecutrho"]
    species = inputs.scf.card("ATOMIC_SPECIES")
    assert {row[0]: row[2] for row in species.rows} == record["pseudopotentials"]


def test_fast_protocol_values(al_fast):
    for pw in (al_fast.scf_dense, al_fast.scf):
        assert pw.get("calculation") == "scf"
        assert pw.get("ibrav") == 0
        assert pw.card("CELL_PARAMETERS").option == "angstrom"
        assert pw.card("ATOMIC_POSITIONS").option == "crystal"
        assert pw.card("K_POINTS").rows[0][3:] == ("0", "0", "0")  # Γ-centred
        assert (pw.get("occupations"), pw.get("smearing"), pw.get("degauss")) == (
            "smearing", "mv", 0.02)
        assert (pw.get("conv_thr"), pw.get("mixing_beta")) == (1e-10, 0.4)
        assert pw.get("tprnfor") is True and pw.get("tstress") is True
        assert pw.get("prefix") == al_fast.ph.get("prefix")
        assert pw.get("outdir") == al_fast.ph.get("outdir")
    assert al_fast.scf_dense.get("la2f") is True
    assert al_fast.scf.get("la2f") is None
    # Al: z_valence 3 -> ceil(0.6 * 3) + 8
    assert al_fast.nbnd == math.ceil(0.6 * 3) + 8 == al_fast.scf.get("nbnd")
    ph = al_fast.ph
    assert ph.get("ldisp") is True and ph.get("trans") is True
    assert (ph.get("tr2_ph"), ph.get("electron_phonon")) == (1e-14, "interpolated")
    assert (ph.get("el_ph_sigma"), ph.get("el_ph_nsigma")) == (0.005, 10)
    assert ph.get("fildvscf")
    assert ph.get("amass(1)") == float(Element("Al").atomic_mass)
    mass = al_fast.scf.card("ATOMIC_SPECIES").rows[0][1]
    assert float(mass) == float(Element("Al").atomic_mass)
    assert (al_fast.q2r.get("zasr"), al_fast.q2r.get("la2f")) == ("crystal", True)
    assert al_fast.q2r.get("fildyn") == ph.get("fildyn")
    md = al_fast.matdyn
    assert (md.get("asr"), md.get("la2f"), md.get("dos")) == ("crystal", True, True)
    assert [md.get(f"nk{i}") for i in (1, 2, 3)] == [20, 20, 20]
    assert md.get("deltae") == 2.0
    assert md.get("flfrc") == al_fast.q2r.get("flfrc")
    assert al_fast.matdyn_asr_fallback == MATDYN_ASR_FALLBACK == ("crystal", "simple", "no")
    assert al_fast.matdyn_input("simple").get("asr") == "simple"
    assert al_fast.matdyn.get("asr") == "crystal"  # variants never mutate the set


def test_fast_cutoff_cap(tmp_path):
    upf = AL_PSEUDO / "Al.pbe-nl-rrkjus_psl.1.0.0.UPF"
    text = upf.read_text().replace("wavefunctions:  29. Ry", "wavefunctions:  75. Ry")
    (tmp_path / upf.name).write_text(text)
    inputs = ElphInputGenerator("fast", family=tmp_path).get_input_set(fcc("Al", 4.04))
    assert (inputs.ecutwfc, inputs.ecutrho) == (60.0, 480.0)
    std = ElphInputGenerator("standard", family=tmp_path).get_input_set(fcc("Al", 4.04))
    assert std.ecutwfc == 75.0


# --- round trips ------------------------------------------------------------------------------
def test_every_input_round_trips(al_fast):
    classes = {"pw": PwInput, "ph": PhInput, "q2r": Q2rInput, "matdyn": MatdynInput}
    for name, obj in al_fast.items():
        again = classes[obj.code].from_str(obj.get_str())
        assert again == obj, name
        assert again.get_str() == obj.get_str()
    per_q = al_fast.ph_input(start_q=2, last_q=2, recover=True)
    assert PhInput.from_str(per_q.get_str()) == per_q


def test_from_str_hand_written():
    text = """title line
 &inputph
   tr2_ph=1.0d-14, ldisp=.TRUE. ! comment
   prefix='al', fildyn = 'a/b.dyn',
   amass(1)=26.98, nq1=2 /
"""
    ph = PhInput.from_str(text)
    assert ph.title == "title line"
    assert ph.namelists["inputph"] == {"tr2_ph": 1e-14, "ldisp": True, "prefix": "al",
                                       "fildyn": "a/b.dyn", "amass(1)": 26.98, "nq1": 2}
    pw = PwInput.from_str("&control\n calculation='scf'\n/\n&system\n/\n&electrons\n/\n"
                          "K_POINTS {automatic}\n 4 4 4 0 0 0\n")
    assert pw.k_grid == [4, 4, 4]
    with pytest.raises(BeteInputError, match="not closed"):
        PwInput.from_str("&control\n calculation='scf'\n")


# --- presets ----------------------------------------------------------------------------------
def test_presets_are_read_only():
    first = load_preset("fast")
    first["pw"]["system"]["degauss"] = 99.0
    first["k_spacing"] = 1.0
    again = load_preset("fast")
    assert again["pw"]["system"]["degauss"] == 0.02
    assert again["k_spacing"] == 0.30
    with pytest.raises(BeteInputError, match="unknown preset"):
        load_preset("superfast")


@pytest.mark.parametrize(("structure", "k", "q"), [
    (fcc("Al", 4.04), [12, 12, 12], [6, 6, 6]),
    (fcc("Pb", 4.95), [10, 10, 10], [5, 5, 5]),
    (fcc("Pb", 5.03), [10, 10, 10], [5, 5, 5]),
    (bcc("Nb", 3.30), [12, 12, 12], [6, 6, 6]),
])
def test_standard_grids_for_benchmark_metals(pslibrary_dir, structure, k, q):
    inputs = ElphInputGenerator("standard", family=pslibrary_dir).get_input_set(structure)
    assert inputs.q_grid == q
    assert inputs.k_grid == k
    assert inputs.k_grid_dense == [2 * x for x in k]
    assert inputs.scf.get("conv_thr") == 1e-12
    assert inputs.ph.get("tr2_ph") == 1e-16
    assert inputs.scf.get("degauss") == 0.02


def test_presets_get_denser(al_pseudo_dir):
    sets = {p: ElphInputGenerator(p, family=al_pseudo_dir).get_input_set(fcc("Al", 4.04))
            for p in ("fast", "standard", "accurate")}
    for coarse, fine in (("fast", "standard"), ("standard", "accurate")):
        assert all(a < b for a, b in zip(sets[coarse].q_grid, sets[fine].q_grid, strict=True))
        assert all(a < b for a, b in zip(sets[coarse].k_grid, sets[fine].k_grid, strict=True))
        assert sets[coarse].scf.get("conv_thr") > sets[fine].scf.get("conv_thr")
        assert sets[coarse].ph.get("tr2_ph") > sets[fine].ph.get("tr2_ph")
        assert sets[coarse].ecutwfc <= sets[fine].ecutwfc


def test_user_yaml_preset(tmp_path, al_pseudo_dir):
    path = tmp_path / "mine.yaml"
    path.write_text("base: standard\nname: mine\nq_spacing: 1.0\n")
    inputs = ElphInputGenerator(path, family=al_pseudo_dir).get_input_set(fcc("Al", 4.04))
    assert inputs.q_grid == [3, 3, 3]
    assert inputs.parameters["preset"] == "mine"
    assert inputs.scf.get("conv_thr") == 1e-12


# --- overrides --------------------------------------------------------------------------------
def test_override_scheme(al_pseudo_dir):
    gen = ElphInputGenerator("fast", family=al_pseudo_dir, overrides={
        "scf": {"mixing_beta": 0.2},
        "scf_dense": {"electrons": {"conv_thr": 1e-9}},
        "k_spacing": 0.25,
        "q_grid": [4, 4, 4],
        "ph": {"tr2_ph": 1e-15},
        "matdyn": {"nk1": 10, "dos": None},
        "pw": {"system": {"smearing": "gaussian"}},
    })
    inputs = gen.get_input_set(fcc("Al", 4.04))
    assert inputs.scf.get("mixing_beta") == inputs.scf_dense.get("mixing_beta") == 0.2
    assert inputs.scf_dense.get("conv_thr") == 1e-9
    assert inputs.scf.get("conv_thr") == 1e-10
    assert inputs.q_grid == [4, 4, 4]
    # ceil(2.694/0.25) = 11 -> next multiple of 4
    assert inputs.k_grid == [12, 12, 12]
    assert inputs.ph.get("tr2_ph") == 1e-15
    assert inputs.matdyn.get("nk1") == 10 and inputs.matdyn.get("dos") is None
    assert inputs.scf.get("smearing") == "gaussian"
    assert gen.overrides["scf"] == {"mixing_beta": 0.2}  # the hook itself is not mutated
    assert load_preset("fast")["pw"]["electrons"]["mixing_beta"] == 0.4


def test_explicit_grids_cutoffs_and_masses(al_pseudo_dir):
    gen = ElphInputGenerator("fast", family=al_pseudo_dir, overrides={
        "k_grid": [6, 6, 6], "k_grid_dense": [12, 12, 12], "q_grid": [3, 3, 3],
        "ecutwfc": 35.0, "ecutrho": 300.0, "nbnd": 12, "masses": {"Al": 27.5},
    })
    inputs = gen.get_input_set(fcc("Al", 4.04))
    assert (inputs.k_grid, inputs.k_grid_dense, inputs.q_grid) == ([6] * 3, [12] * 3, [3] * 3)
    assert (inputs.ecutwfc, inputs.ecutrho, inputs.nbnd) == (35.0, 300.0, 12)
    assert inputs.ph.get("amass(1)") == 27.5
    bad = ElphInputGenerator("fast", family=al_pseudo_dir,
                             overrides={"q_grid": [4, 4, 4], "k_grid_dense": [10, 10, 10]})
    with pytest.raises(BeteInputError, match="not a multiple of the q grid"):
        bad.get_input_set(fcc("Al", 4.04))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"kspacing": 0.2}, "unknown override 'kspacing'"),
    ({"scf": {"mixing_bta": 0.2}}, "unknown pw.x key 'mixing_bta'"),
    ({"scf": {"ecutwfc": 50}}, "'ecutwfc'"),
    ({"pw": {"pseudo_dir": "/tmp"}}, "family"),
    ({"ph": {"nq1": 4}}, "'q_grid'"),
    ({"ph": {"start_q": 2}}, "ph_input"),
    ({"matdyn": {"asr": "simple"}}, "matdyn_asr_fallback"),
    ({"k_spacing": -1}, "positive number"),
    ({"q_grid": [2, 2]}, "three positive integers"),
    ({"relax": "md"}, "'relax'"),
    ({"matdyn_asr_fallback": ["crystal", "bogus"]}, "matdyn_asr_fallback"),
    ({"scf": 0.2}, "must be a mapping"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(BeteInputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        apply_overrides(load_preset("fast"), overrides)


def test_nested_unknown_key_allowed():
    resolved = apply_overrides(load_preset("fast"), {"scf": {"system": {"nosym_fancy": True}}})
    assert resolved["scf"]["system"]["nosym_fancy"] is True


def test_relax_input(al_pseudo_dir):
    gen = ElphInputGenerator("fast", family=al_pseudo_dir, overrides={"relax": "vc-relax"})
    inputs = gen.get_input_set(fcc("Al", 4.04))
    assert inputs.relax is not None and "relax.in" in inputs
    assert inputs.relax.get("calculation") == "vc-relax"
    assert inputs.relax.get("cell_dynamics") == "bfgs"
    assert inputs.relax.get("la2f") is None
    relax = ElphInputGenerator("fast", family=al_pseudo_dir).get_relax_input(
        fcc("Al", 4.04), "relax")
    assert relax.get("calculation") == "relax" and "cell" not in relax.namelists
    assert ElphInputGenerator("fast", family=al_pseudo_dir).get_input_set(
        fcc("Al", 4.04)).relax is None


# --- ph.x fan-out and restart -----------------------------------------------------------------
def test_ph_input_variants(al_fast):
    one = al_fast.ph_input(start_q=3, last_q=3)
    assert (one.get("start_q"), one.get("last_q"), one.get("recover")) == (3, 3, None)
    again = al_fast.ph_input(recover=True)
    assert again.get("recover") is True and again.get("start_q") is None
    assert al_fast.ph.get("start_q") is None  # the set's own input is untouched
    assert one.get("electron_phonon") == "interpolated"
    with pytest.raises(BeteInputError, match="positive integer"):
        al_fast.ph_input(start_q=0)
    with pytest.raises(BeteInputError, match="smaller than start_q"):
        al_fast.ph_input(start_q=3, last_q=2)


# --- set as a mapping, writing ----------------------------------------------------------------
def test_write_and_mapping(al_fast, tmp_path):
    assert set(al_fast) == {"scf_dense.in", "scf.in", "ph.in", "q2r.in", "matdyn.in"}
    written = al_fast.write(tmp_path / "run")
    for role, path in written.items():
        assert path.name == FILE_NAMES[role]
        assert path.read_text() == al_fast.inputs[role].get_str()
    assert PwInput.from_file(written["scf"]) == al_fast.scf
    assert al_fast.files["fildyn"] == al_fast.q2r.get("fildyn")
    params = json.loads(json.dumps(al_fast.parameters))  # JSON-ready
    assert params["k_grid"] == al_fast.k_grid
    assert params["pseudopotentials"]["Al"]["md5"] == al_fast.pseudo_md5["Al"]


# --- hashing ----------------------------------------------------------------------------------
_HASH_SCRIPT = """
import sys
from pymatgen.core import Lattice, Structure
from workflows.qe.sets import ElphInputGenerator
s = Structure(Lattice.cubic(4.04), ["Al"] * 4,
              [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
print(ElphInputGenerator("fast", family=sys.argv[1]).get_input_set(s).input_hash())
"""


def test_hash_stable_across_processes(al_fast, al_pseudo_dir):
    out = subprocess.run([sys.executable, "-c", _HASH_SCRIPT, str(al_pseudo_dir)],
                         capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == al_fast.input_hash()
    assert len(al_fast.input_hash()) == 64


def test_hash_tracks_physics_not_paths(al_fast, al_pseudo_dir):
    def digest(structure=None, **overrides):
        return ElphInputGenerator("fast", family=al_pseudo_dir, overrides=overrides
                                  ).get_input_set(structure or fcc("Al", 4.04)).input_hash()

    base = al_fast.input_hash()
    assert digest() == base
    assert digest(prefix="other", outdir="/scratch/x") == base
    shifted = fcc("Al", 4.04)
    shifted.translate_sites(list(range(4)), [0.1, 0.2, 0.3])  # same crystal, other origin
    assert digest(shifted) == base
    assert digest(scf={"mixing_beta": 0.3}) != base
    assert digest(matdyn={"nk1": 21}) != base
    assert digest(fcc("Al", 4.05)) != base
    assert digest(masses={"Al": 27.0}) != base


# --- real QE (tiny) ---------------------------------------------------------------------------
@pytest.mark.qe
def test_fast_scf_runs_with_pw(require_qe, tmp_path):
    """The generated coarse scf for fcc Al (Debian LDA family) runs with pw.x."""
    if not Path("/usr/share/espresso/pseudo/Al.pz-vbc.UPF").is_file():
        pytest.skip("Debian's pseudopotentials are not installed: apt-get install "
                    "quantum-espresso-data (scripts/install.sh does)")
    inputs = ElphInputGenerator("fast", family="debian").get_input_set(fcc("Al", 4.04))
    inputs.write(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([shutil.which("pw.x"), "-in", "scf.in"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "convergence has been achieved" in result.stdout
    assert "JOB DONE" in result.stdout


def test_grid_rules_round_half_to_even_and_multiples():
    from workflows.qe.preset_rules import k_grid_rule, q_grid_rule

    assert q_grid_rule([2.5, 3.5, 4.5], 1.0, 2) == [2, 4, 4]
    assert q_grid_rule([0.4, 1.0, 2.6], 1.3, 2) == [2, 2, 2]
    assert k_grid_rule([1.0, 1.0, 1.0], 0.3, 2, multiple_of=[2, 3, 4]) == [4, 6, 4]
    assert k_grid_rule([0.1, 0.1, 0.1], 0.3, 2) == [2, 2, 2]


def test_generator_serialises_for_jobflow(al_pseudo_dir):
    from monty.json import MontyDecoder, jsanitize

    from workflows.qe.pseudos import PseudoFamily

    for family in (str(al_pseudo_dir), PseudoFamily.from_path(al_pseudo_dir), None):
        gen = ElphInputGenerator("standard", overrides={"scf": {"mixing_beta": 0.2}},
                                 family=family, max_atoms=8)
        data = json.loads(json.dumps(jsanitize(gen, strict=True, enum_values=True)))
        assert MontyDecoder().process_decoded(data) == gen


CAMPAIGN_RECORDS = [p for p in sorted((REPO / "stores" / "data" / "fast-v1").glob("*.json"))
                    if "computed_by" in json.loads(p.read_text())]


def test_the_shipped_dataset_holds_campaign_records():
    assert CAMPAIGN_RECORDS, "no record of the project's own campaign in stores/data/fast-v1"


@pytest.mark.parametrize("record_path", CAMPAIGN_RECORDS, ids=[p.stem for p in CAMPAIGN_RECORDS])
def test_campaign_record_is_reproducible_from_its_structure(record_path, bete_structures_dir,
                                                            pslibrary_dir):
    """A shipped campaign record: today's fast preset on its bete-net cell gives its inputs."""
    from stores.datasets import RESERVED_BETE_NET_IDS

    record = json.loads(record_path.read_text())
    assert record["id"] == record_path.stem and int(record["id"]) not in RESERVED_BETE_NET_IDS
    assert record["protocol_fingerprint"] == "1db541fdcd6c"
    structure = read_structure(bete_structures_dir / f"{record['id']}.cif")
    inputs = ElphInputGenerator("fast", family=pslibrary_dir).get_input_set(structure)
    assert inputs.input_hash() == record["input_hash"]
    assert [inputs.k_grid, inputs.k_grid_dense, inputs.q_grid] == [
        record["k_grid"], record["k_grid_dense"], record["q_grid"]]
    assert inputs.pseudopotentials == record["pseudopotentials"]
