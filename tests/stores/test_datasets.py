import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from stores.constants import DEFAULT_STABILITY_THRESHOLD_MEV
from stores.datasets import (
    TrainingRecord,
    load_betenet_database,
    load_fast_v1,
    load_records,
    load_store_records,
    packaged_fast_v1_dir,
    read_index_file,
    split_by_index_files,
    split_records,
)

SHARED_FAST_V1 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "fast-v1"


def test_packaged_fast_v1_records():
    recs = load_fast_v1()
    ids = [r.id for r in recs]
    assert "109" not in ids                      # failed run
    assert "13" not in ids                       # LiPb, dynamically unstable
    assert len(recs) >= 16 and ids == sorted(ids, key=int)
    pb = next(r for r in recs if r.formula == "Pb")
    assert pb.labels["sigma_Ry"] == pytest.approx(0.02)
    assert pb.labels["lambda_"] == pytest.approx(1.227, abs=1e-3)
    assert pb.site_dos.shape == (1, pb.phdos_frequencies_meV.size)
    assert pb.a2f.shape == pb.frequencies_meV.shape
    unstable = {r.id for r in load_fast_v1(drop_unstable=False)} - set(ids)
    assert "13" in unstable and all(r.min_frequency_meV < DEFAULT_STABILITY_THRESHOLD_MEV for r in
                                    load_fast_v1(drop_unstable=False) if r.id in unstable)


def test_other_broadening_and_shared_folder():
    recs = load_fast_v1(packaged_fast_v1_dir(), sigma_index=0)
    assert all(r.labels["sigma_Ry"] == pytest.approx(0.005) for r in recs)
    if SHARED_FAST_V1.is_dir():
        shared = load_fast_v1(SHARED_FAST_V1)
        # the packaged copy: every shared record, plus the project's own campaign records
        assert {r.id for r in shared} <= {r.id for r in load_fast_v1()}


def test_record_validation():
    s = Structure(Lattice.cubic(3), ["Al"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="shape"):
        TrainingRecord("x", s, np.arange(3.0), np.arange(4.0))
    with pytest.raises(ValueError, match="site DOS"):
        TrainingRecord("x", s, np.arange(3.0), np.arange(3.0), np.arange(5.0), np.ones((2, 5)))


def _structures(tmp_path):
    folder = tmp_path / "structures" / "bete-net"
    folder.mkdir(parents=True)
    cells = {
        4: Structure(Lattice.cubic(4.05), ["Al"], [[0, 0, 0]]),
        7: Structure(Lattice.cubic(3.1), ["Mg", "B"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        9: Structure(Lattice.cubic(3.3), ["Nb"], [[0, 0, 0]]),
    }
    for idx, s in cells.items():
        s.to(filename=str(folder / f"{idx}.cif"))
    return folder, cells


def _database(tmp_path, cells):
    w = np.linspace(0.1, 40, 50)
    rows = {}
    for idx, s in cells.items():
        n = len(s)
        a2f = np.exp(-((w - 15) / 4) ** 2)
        rows[idx] = {
            "comp": s.composition.reduced_formula, "comp_name": f"{s.formula}_mp_{idx}",
            "Freq_meV": w.tolist(), "a2F": a2f.tolist(),
            "PhFreq_meV": w.tolist(), "Tot_PhDOS": (n * a2f).tolist(),
            "Site_Proj_PhDOS": [a2f.tolist()] * n, "lambda": 0.5 + idx / 10,
            "w_log": 12.0, "w_sq": 225.0,
            "PhFreq_meV_dense": w.tolist(), "Tot_PhDOS_dense": a2f.tolist(),
            "Site_Proj_PhDOS_dense": [a2f.tolist()] * n,
            "Tot_eDOS_eng_meV": w.tolist(), "Tot_eDOS": a2f.tolist(),
            "Site_proj_eDOS_eng_meV": w.tolist(), "Site_proj_eDOS": [a2f.tolist()] * n,
            "Ph_2x2x2_interpolated_Freq_meV": w[::2].tolist(),
            "Ph_2x2x2_interpolated_Tot_DOS": a2f[::2].tolist(),
            "Ph_2x2x2_interpolated_Site_Proj_DOS": [a2f[::2].tolist()] * n,
        }
    rows[9]["lambda"] = None                    # dropped by dropna()
    path = tmp_path / "database.json"
    pd.DataFrame.from_dict(rows, orient="index").to_json(path)
    return path


def test_betenet_database_layout(tmp_path):
    folder, cells = _structures(tmp_path)
    path = _database(tmp_path, cells)
    recs = load_betenet_database(path, folder)
    assert [r.id for r in recs] == ["4", "7"]
    mgb = recs[1]
    assert mgb.formula == "MgB" and len(mgb.structure) == 2
    assert mgb.labels == {"lambda_": pytest.approx(1.2), "omega_log_meV": 12.0,
                          "omega_2_meV": 15.0}
    assert mgb.site_dos.shape == (2, 50)
    coarse = load_betenet_database(path, folder, site_dos="coarse")
    assert coarse[1].site_dos.shape == (2, 25)
    # the dispatcher finds structures/bete-net next to the file
    assert [r.id for r in load_records(path)] == ["4", "7"]
    with pytest.raises(ValueError, match="missing|CIF|does not exist"):
        load_betenet_database(path, tmp_path / "nowhere")


def _task_doc(formula, preset="fast", status="completed", stable=True, source_id="1"):
    s = Structure(Lattice.cubic(4.0), ["Al"], [[0, 0, 0]])
    w = np.linspace(0.25, 40, 60)
    return {
        "doc_type": "elph_task", "status": status, "dynamically_stable": stable,
        "preset": preset, "formula": formula, "source_id": source_id,
        "input_hash": f"h-{source_id}", "structure": s.as_dict(),
        "reference_sigma_Ry": 0.02, "lambda_": 0.4, "omega_log_K": 250.0,
        "a2f_spectra": [
            {"sigma_Ry": 0.01, "frequencies_meV": w.tolist(), "a2f": (0 * w).tolist()},
            {"sigma_Ry": 0.02, "frequencies_meV": w.tolist(),
             "a2f": np.exp(-((w - 20) / 3) ** 2).tolist()},
        ],
        "phdos": {"frequencies_meV": w.tolist(), "total": w.tolist(), "site_dos": [w.tolist()]},
    }


def test_store_query(tmp_path):
    from stores.config import load_job_store

    store = load_job_store(tmp_path / "store")
    store.connect()
    docs = [_task_doc("Al", source_id="1"),
            _task_doc("Al", stable=False, source_id="2"),
            _task_doc("Al", status="failed", source_id="3"),
            _task_doc("Al", preset="accurate", source_id="4")]
    for i, doc in enumerate(docs):
        store.update({"uuid": f"u{i}", "index": 1, "output": doc, "completed_at": str(i)},
                     save={"data": ["a2f_spectra", "phdos"]})
    store.close()
    recs = load_store_records(load_job_store(tmp_path / "store"), preset="fast")
    assert [r.id for r in recs] == ["1"]
    rec = recs[0]
    assert rec.a2f.max() == pytest.approx(1.0, abs=1e-2)        # the σ = 0.02 Ry spectrum
    assert rec.site_dos.shape == (1, 60) and rec.labels["lambda_"] == 0.4
    assert [r.id for r in load_records(tmp_path / "store", preset=None)] == ["1", "4"]


def test_split_is_seeded_and_order_independent():
    recs = load_fast_v1()
    tr1, te1 = split_records(recs, 0.25, seed=3)
    tr2, te2 = split_records(list(reversed(recs)), 0.25, seed=3)
    assert [r.id for r in te1] == [r.id for r in te2]
    assert len(te1) == round(0.25 * len(recs))
    assert {r.id for r in tr1}.isdisjoint({r.id for r in te1})
    assert len(tr1) + len(te1) == len(recs)
    _, te3 = split_records(recs, 0.25, seed=4)
    assert [r.id for r in te3] != [r.id for r in te1]
    with pytest.raises(ValueError):
        split_records(recs, 1.0)


def test_paper_index_files(tmp_path):
    recs = load_fast_v1()
    train_file, test_file = tmp_path / "idx_train_full.txt", tmp_path / "idx_test_full.txt"
    np.savetxt(train_file, [0, 15, 21])
    np.savetxt(test_file, [82.0])
    assert read_index_file(train_file) == [0, 15, 21]
    train, test = split_by_index_files(recs, train_file, test_file)
    assert [r.id for r in train] == ["0", "15", "21"] and [r.id for r in test] == ["82"]
    json.dumps([r.id for r in train])


# ------------------------------------------------ data errors name file, record, field (issue 14)
@pytest.mark.parametrize(("field", "value", "expected"), [
    ("a2F", "x", "field 'a2F' is str 'x', expected list"),
    ("a2F[3]", "broken", "field 'a2F[3]' is str"),
    ("a2F[3].lambda_", "high", "field 'a2F[3].lambda_' is str 'high', expected int or float"),
    ("structure", {"lattice": 1}, "field 'structure' is not a pymatgen Structure"),
    ("a2F_frequency_meV", ["a", "b"], "field 'a2F_frequency_meV' must hold numbers only"),
    ("min_frequency_meV", "low", "field 'min_frequency_meV' is str 'low'"),
])
def test_a_wrong_field_type_names_file_record_and_field(tmp_path, field, value, expected):
    import shutil

    from stores.datasets import load_records, packaged_fast_v1_dir

    folder = tmp_path / "data"
    shutil.copytree(packaged_fast_v1_dir(), folder)
    path = folder / "21.json"
    data = json.loads(path.read_text())
    if field.startswith("a2F[3]"):
        if "." in field:
            data["a2F"][3][field.split(".")[1]] = value
        else:
            data["a2F"][3] = value
    else:
        data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        load_records(folder)
    assert str(info.value) == f"{path} (record '21'): {expected}" or (
        str(info.value).startswith(f"{path} (record '21'): {expected}"))


def test_a_truncated_record_names_the_file_and_position(tmp_path):
    import shutil

    from stores.datasets import load_records, packaged_fast_v1_dir

    folder = tmp_path / "data"
    shutil.copytree(packaged_fast_v1_dir(), folder)
    path = folder / "21.json"
    text = path.read_text()
    path.write_text(text[:len(text) // 2])
    with pytest.raises(ValueError, match=rf"^{path}: not valid JSON at line 1, column \d+ .*"
                                         "truncated"):
        load_records(folder)


def test_cli_data_error_is_one_line(tmp_path, capsys):
    import shutil

    from launchers.cli import main
    from stores.datasets import packaged_fast_v1_dir

    folder = tmp_path / "data"
    shutil.copytree(packaged_fast_v1_dir(), folder)
    path = folder / "21.json"
    data = json.loads(path.read_text())
    data["a2F"] = [{"sigma_Ry": 0.005}, "b", "c", "d"]
    path.write_text(json.dumps(data))
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path} (record '21'): field 'a2F[3]' is str" in err


def test_a_database_row_with_a_wrong_type_names_file_row_and_column(tmp_path):
    folder, cells = _structures(tmp_path)
    path = _database(tmp_path, cells)
    data = json.loads(path.read_text())
    data["w_log"]["7"] = "twelve"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"^{path} row 7: column 'w_log' holds 'twelve', "
                                         "expected numbers$"):
        load_betenet_database(path, folder)
