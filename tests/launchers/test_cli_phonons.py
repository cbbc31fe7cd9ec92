"""``bete phonons`` and ``bete query --documents mlip-phonons`` with real SevenNet-0 runs."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from launchers.cli import main


def test_phonons_json_rerun_reuses_and_query_lists(tmp_path, capsys):
    al = Structure(Lattice.cubic(4.04), ["Al"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                                      [0, 0.5, 0.5]]).get_primitive_structure()
    al.to(filename=str(tmp_path / "Al.cif"))
    store = str(tmp_path / "store")
    assert main(["phonons", str(tmp_path / "Al.cif"), "--store", store, "--format", "json"]) == 0
    [first] = json.loads(capsys.readouterr().out)
    for key in ("formula", "potential", "min_frequency_meV", "dynamically_stable",
                "mean_log_frequency_meV", "wall_s"):
        assert key in first
    assert first["potential"] == "sevennet-0" and first["dynamically_stable"] is True
    assert first["reused"] is False
    assert main(["phonons", str(tmp_path / "Al.cif"), "--store", store, "--format", "json"]) == 0
    [again] = json.loads(capsys.readouterr().out)
    assert again["reused"] is True and again["wall_s"] < first["wall_s"]
    assert again["mean_log_frequency_meV"] == pytest.approx(first["mean_log_frequency_meV"])
    assert main(["query", "--documents", "mlip-phonons", "--store", store,
                 "--format", "json"]) == 0
    assert [r["formula"] for r in json.loads(capsys.readouterr().out)] == ["Al"]


def test_unknown_potential_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["phonons", "x.cif", "--potential", "mace", "--store", str(tmp_path / "s")])
    assert exc.value.code == 2
    assert "invalid choice: 'mace'" in capsys.readouterr().err


def test_plot_phonons_puts_the_dfpt_dos_beside(tmp_path, capsys, al_run_dir, al_run_input_set):
    from monty.json import jsanitize

    from stores.config import load_job_store
    from stores.schemas import ScfSummary
    from workflows.mlip.phonons import mlip_phonon_document
    from workflows.qe.documents import elph_document
    from workflows.qe.jobs import ELPH_BLOB_FIELDS

    dfpt = elph_document(al_run_dir, al_run_input_set, "fast", "al-1", "a" * 64,
                         ScfSummary(pressure_kbar=5.0, is_metal=True), "6.7MaX", "crystal")
    store = load_job_store(tmp_path / "store")
    store.connect()
    store.update({"uuid": "u0", "index": 1, "completed_at": "0",
                  "output": jsanitize(dfpt.model_dump(), strict=True, enum_values=True)},
                 save={"data": list(ELPH_BLOB_FIELDS)})
    mlip_phonon_document(al_run_input_set.structure, "sevennet-0", store, source_id="al-1")
    store.close()
    out = tmp_path / "ph.png"
    assert main(["plot", "phonons", "Al", "--store", str(tmp_path / "store"),
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert "with the DFPT DOS" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_compute_in_processes_and_keep_the_input_order(tmp_path, capsys):
    from workflows.mlip.phonons import mlip_phonon_document

    cells = {"fcc": Structure(Lattice.cubic(4.04), ["Al"] * 4,
                              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
                              ).get_primitive_structure(),
             "sc": Structure(Lattice.cubic(2.7), ["Al"], [[0, 0, 0]])}
    for name, s in cells.items():
        s.to(filename=str(tmp_path / f"{name}.cif"))
    store = str(tmp_path / "store")
    files = [str(tmp_path / "fcc.cif"), str(tmp_path / "sc.cif")]
    assert main(["phonons", *files, "--store", store, "--workers", "2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["source_id"] for r in rows] == ["fcc", "sc"] and not any(r["reused"] for r in rows)
    for r in rows:   # the same numbers as here (float32 forces: equal to ~1e-5 meV)
        here = mlip_phonon_document(cells[r["source_id"]], "sevennet-0")
        assert r["min_frequency_meV"] == pytest.approx(here["min_frequency_meV"], abs=1e-3)
    assert [r["dynamically_stable"] for r in rows] == [True, False]
    assert main(["phonons", *files, "--store", store, "--workers", "2", "--format", "json"]) == 0
    assert all(r["reused"] for r in json.loads(capsys.readouterr().out))
