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
