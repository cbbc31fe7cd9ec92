"""Pseudopotential families: header parsing, lookup rules, errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from workflows.qe.errors import BeteInputError, MissingPseudopotentialError
from workflows.qe.pseudos import (
    DEBIAN_LDA_FILES,
    DEBIAN_PSEUDO_DIR,
    PseudoFamily,
    canonical_functional,
    default_family,
    read_upf_header,
)
from workflows.qe.sets import ElphInputGenerator

UPF_V2 = """<UPF version="2.0.1">
  <PP_INFO>
    Element: {el}
    Functional: {func}
    Suggested minimum cutoff for wavefunctions:  {wfc}. Ry
    Suggested minimum cutoff for charge density: {rho}. Ry
  </PP_INFO>
  <PP_HEADER generated='by "hand"' element="{el}" pseudo_type="US"
     functional="{func}" z_valence="{z}" wfc_cutoff="1.0" rho_cutoff="2.0"/>
  <PP_MESH/>
</UPF>
"""

UPF_V1 = """<PP_INFO>
 hand made
</PP_INFO>
<PP_HEADER>
   0                   Version Number
  {el}                   Element
   NC                  Norm - Conserving pseudopotential
    F                  Nonlinear Core Correction
 SLA  PW   PBE  PBE     PBE  Exchange-Correlation functional
    {z}      Z valence
   -5.0               Total energy
  {wfc}  {rho} Suggested cutoff for wfc and rho
    1                  Max angular momentum component
</PP_HEADER>
"""


def _write_v2(directory: Path, name: str, el: str, func: str = "PBE", z: float = 3.0,
              wfc: int = 30, rho: int = 240) -> Path:
    path = directory / name
    path.write_text(UPF_V2.format(el=el, func=func, z=z, wfc=wfc, rho=rho))
    return path


def _fcc(el: str, a: float) -> Structure:
    return Structure(Lattice.cubic(a), [el] * 4,
                     [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


def test_upf_v2_header(tmp_path):
    path = _write_v2(tmp_path, "Al.pbe-n-test.UPF", "Al", z=3.0, wfc=31, rho=250)
    header = read_upf_header(path)
    assert header.element == "Al"
    assert header.functional == "PBE"
    assert header.z_valence == 3.0
    assert header.upf_version == 2
    assert header.pseudo_type == "US"
    # the PP_INFO text line wins over the rounded header attributes
    assert (header.ecutwfc_Ry, header.ecutrho_Ry) == (31.0, 250.0)
    assert header.md5 == hashlib.md5(path.read_bytes()).hexdigest()


def test_upf_v1_header(tmp_path):
    path = tmp_path / "Rh.pbe-test.UPF"
    path.write_text(UPF_V1.format(el="Rh", z="9.00000000000", wfc="25.0", rho="200.0"))
    header = read_upf_header(path)
    assert (header.element, header.functional, header.z_valence) == ("Rh", "PBE", 9.0)
    assert header.upf_version == 1
    assert (header.ecutwfc_Ry, header.ecutrho_Ry) == (25.0, 200.0)


def test_upf_v1_zero_cutoffs_are_missing(tmp_path):
    path = tmp_path / "C.test.UPF"
    path.write_text(UPF_V1.format(el="C", z="4.0", wfc="0.0000000", rho="0.0000000"))
    assert read_upf_header(path).ecutwfc_Ry is None


def test_not_a_upf_file(tmp_path):
    path = tmp_path / "X.UPF"
    path.write_text("hello")
    with pytest.raises(BeteInputError, match="not a UPF file"):
        read_upf_header(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("SLA  PZ   NOGX NOGC", "LDA"), ("LDA", "LDA"), ("PZ", "LDA"), ("PBE", "PBE"),
    ("SLA PW PBX PBC", "PBE"), ("SLA  PW   PBE  PBE     PBE", "PBE"),
    ("SLA PW PSX PSC", "PBESOL"), ("PBESOL", "PBESOL"), ("SLA LYP B88 BLYP", "BLYP"),
])
def test_canonical_functional(text, expected):
    assert canonical_functional(text) == expected


def test_pslibrary_rule(pslibrary_dir):
    family = PseudoFamily.from_path(pslibrary_dir)
    info = family.get("Al")
    assert info.filename == "Al.pbe-nl-rrkjus_psl.1.0.0.UPF"
    assert (info.ecutwfc_Ry, info.ecutrho_Ry) == (29.0, 121.0)
    assert info.functional == "PBE" and info.z_valence == 3.0
    assert info.cutoff_source == "header"
    assert Path(info.path).is_absolute()
    assert family.get("W").filename == "W.pbe-spn-rrkjus_psl.1.0.1.UPF"
    with_tag = PseudoFamily.from_directory(pslibrary_dir, functional="pbe")
    assert with_tag.get("Pb").filename == "Pb.pbe-dn-rrkjus_psl.1.0.0.UPF"
    with pytest.raises(MissingPseudopotentialError):
        PseudoFamily.from_directory(pslibrary_dir, functional="pbesol").get("Al")


def test_missing_element_names_element_and_family(pslibrary_dir):
    family = PseudoFamily.from_path(pslibrary_dir)
    with pytest.raises(MissingPseudopotentialError, match="Cm") as err:
        family.get("Cm")
    assert "pslibrary-1.0.0-pbe-us" in str(err.value)
    assert err.value.element == "Cm"


def test_directory_ambiguous(tmp_path):
    _write_v2(tmp_path, "Al.pbe-a.UPF", "Al")
    _write_v2(tmp_path, "Al.pbe-b.UPF", "Al")
    _write_v2(tmp_path, "Als.pbe-c.UPF", "Al")  # not '<El>.' : ignored
    with pytest.raises(BeteInputError, match="several files for Al"):
        PseudoFamily.from_directory(tmp_path).get("Al")


def test_directory_does_not_exist(tmp_path):
    with pytest.raises(BeteInputError, match="does not exist"):
        PseudoFamily.from_directory(tmp_path / "nope")


def test_mixed_functionals_refused(tmp_path):
    _write_v2(tmp_path, "Al.pbe-x.UPF", "Al", func="PBE")
    _write_v2(tmp_path, "Mg.pz-x.UPF", "Mg", func="SLA PZ NOGX NOGC", z=2.0)
    family = PseudoFamily.from_directory(tmp_path)
    assert set(family.check(["Al"])) == {"Al"}
    with pytest.raises(BeteInputError, match="mix functionals") as err:
        family.check(["Al", "Mg"])
    assert "Al: PBE" in str(err.value) and "Mg: LDA" in str(err.value)


def test_sssp_json_family(tmp_path):
    upf = _write_v2(tmp_path, "al_pbe_v1.uspp.F.UPF", "Al", wfc=20, rho=100)
    md5 = hashlib.md5(upf.read_bytes()).hexdigest()
    spec = {"Al": {"filename": upf.name, "cutoff_wfc": 30.0, "cutoff_rho": 240.0, "md5": md5},
            "Mg": {"filename": "mg_missing.UPF", "cutoff_wfc": 30.0, "cutoff_rho": 240.0}}
    (tmp_path / "sssp.json").write_text(json.dumps(spec))
    family = PseudoFamily.from_path(tmp_path / "sssp.json")
    info = family.get("Al")
    assert (info.ecutwfc_Ry, info.ecutrho_Ry, info.cutoff_source) == (30.0, 240.0, "family json")
    assert info.md5 == md5
    assert family.directory == tmp_path.resolve()
    with pytest.raises(MissingPseudopotentialError, match="Mg"):
        family.get("Mg")
    with pytest.raises(MissingPseudopotentialError, match="Si"):
        family.get("Si")
    spec["Al"]["md5"] = "0" * 32
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    with pytest.raises(BeteInputError, match="md5"):
        PseudoFamily.from_json(tmp_path / "bad.json").get("Al")


def test_sssp_json_unreadable(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(BeteInputError, match="cannot read"):
        PseudoFamily.from_json(tmp_path / "x.json")


def test_family_default_cutoffs(tmp_path):
    _write_v2(tmp_path, "Al.pz-x.UPF", "Al", func="LDA", wfc=0, rho=0)
    (tmp_path / "Al.pz-x.UPF").write_text(
        (tmp_path / "Al.pz-x.UPF").read_text().replace('wfc_cutoff="1.0" rho_cutoff="2.0"', ""))
    with pytest.raises(BeteInputError, match="suggests no cutoffs"):
        PseudoFamily.from_directory(tmp_path).get("Al")
    info = PseudoFamily.from_directory(tmp_path, default_cutoffs_Ry=(35.0, 280.0)).get("Al")
    assert (info.ecutwfc_Ry, info.ecutrho_Ry, info.cutoff_source) == (35.0, 280.0,
                                                                      "family default")


def _need_debian() -> None:
    if not DEBIAN_PSEUDO_DIR.is_dir():
        pytest.skip("Debian's pseudopotentials are not installed: apt-get install "
                    "quantum-espresso-data (scripts/install.sh does)")


def test_debian_lda_family():
    _need_debian()
    family = PseudoFamily.debian()
    assert sorted(DEBIAN_LDA_FILES) == ["Al", "As", "Au", "B", "C", "Cu", "Fe", "H", "Mg", "Ni",
                                        "O", "Pb", "Pt", "Si", "Ti"]
    infos = family.check(DEBIAN_LDA_FILES)  # one functional for all: no error
    assert {i.functional for i in infos.values()} == {"LDA"}
    assert infos["Al"].cutoff_source == "family default"
    assert (infos["Au"].ecutwfc_Ry, infos["Au"].ecutrho_Ry) == (23.0, 297.0)
    assert family.available_elements() == sorted(DEBIAN_LDA_FILES)
    assert PseudoFamily.from_path(DEBIAN_PSEUDO_DIR).files == family.files
    with pytest.raises(MissingPseudopotentialError, match="Nb.*debian-lda"):
        family.get("Nb")
    with pytest.raises(BeteInputError, match="LDA only"):
        PseudoFamily.debian("pbe")


def test_default_family_reads_settings_at_call_time(monkeypatch, tmp_path):
    _write_v2(tmp_path, "Al.pbe-x.UPF", "Al")
    monkeypatch.delenv("BETE_PSEUDO_FAMILY", raising=False)
    assert default_family().name == "debian-lda"
    monkeypatch.setenv("BETE_PSEUDO_FAMILY", str(tmp_path))
    assert default_family().directory == tmp_path.resolve()


def test_missing_pseudo_raised_at_input_generation(tmp_path):
    _write_v2(tmp_path, "Al.pbe-x.UPF", "Al")
    generator = ElphInputGenerator("fast", family=tmp_path)
    structure = Structure(Lattice.cubic(3.0), ["Al", "Nb"], [[0, 0, 0], [.5, .5, .5]])
    with pytest.raises(MissingPseudopotentialError, match="Nb"):
        generator.get_input_set(structure)


def test_pseudo_dir_is_absolute_family_directory(tmp_path, monkeypatch):
    family_dir = tmp_path / "fam"
    family_dir.mkdir()
    _write_v2(family_dir, "Al.pbe-x.UPF", "Al")
    monkeypatch.chdir(tmp_path)
    inputs = ElphInputGenerator("fast", family="fam").get_input_set(_fcc("Al", 4.04))
    for pw in (inputs.scf, inputs.scf_dense):
        assert pw.get("pseudo_dir") == str(family_dir.resolve())
        assert Path(pw.get("pseudo_dir")).is_absolute()


def test_md5_changes_with_file(tmp_path):
    family_dir = tmp_path / "a"
    family_dir.mkdir()
    _write_v2(family_dir, "Al.pbe-x.UPF", "Al")
    other = tmp_path / "b"
    shutil.copytree(family_dir, other)
    with open(other / "Al.pbe-x.UPF", "a") as fh:
        fh.write("<!-- changed -->\n")
    h1 = ElphInputGenerator("fast", family=family_dir).get_input_set(_fcc("Al", 4.04))
    h2 = ElphInputGenerator("fast", family=other).get_input_set(_fcc("Al", 4.04))
    assert h1.pseudo_md5 != h2.pseudo_md5
    assert h1.input_hash() != h2.input_hash()
