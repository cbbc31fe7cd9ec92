"""``bete dfpt submit``: no duplicate work, whatever state the first submission is in."""

from __future__ import annotations

import json

from pymatgen.core import Lattice, Structure

from launchers import fireworks as fw
from launchers.cli import main


def _fcc_al(path, a: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Structure(Lattice.cubic(a), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(path))


def _submit(capsys, *argv) -> list[dict]:
    capsys.readouterr()
    assert main(["dfpt", "submit", *map(str, argv), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_resubmitting_adds_only_new_structures(launchpad, mongomock_lp_file,
                                                           tmp_path, capsys):
    fw.close_launchpad(launchpad)
    structures = tmp_path / "structures"
    _fcc_al(structures / "Al.cif", 4.05)
    [first] = _submit(capsys, structures / "Al.cif")
    assert first["added"]
    # the first workflow is no longer READY (paused by someone): still not submitted again
    lp = fw.load_launchpad(mongomock_lp_file)
    lp.defuse_wf(first["fw_ids"][0])
    fw.close_launchpad(lp)
    _fcc_al(structures / "Al_strained.cif", 4.10)  # another cell: another input hash
    again = _submit(capsys, *sorted(structures.iterdir()))
    rows = {r["structure"]: r for r in again}
    assert not rows["Al"]["added"] and rows["Al"]["fw_ids"] == first["fw_ids"]
    assert rows["Al"]["state"] == "DEFUSED"
    assert rows["Al_strained"]["added"]
    assert rows["Al_strained"]["key"] != first["key"]
    # --no-dedup is the explicit way to submit the same work again
    [forced] = _submit(capsys, structures / "Al.cif", "--no-dedup")
    assert forced["added"] and forced["key"] is None
    lp = fw.load_launchpad(mongomock_lp_file)
    assert lp.workflows.count_documents({}) == 3
    assert lp.workflows.count_documents({"metadata.bete_dedup_key": first["key"]}) == 1
    fw.close_launchpad(lp)
