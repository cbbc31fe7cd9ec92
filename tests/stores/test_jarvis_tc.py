"""The jarvis-tc importer: Tc-only records, bad lines reported with their line numbers."""

import json
import shutil
from pathlib import Path

import pytest

from stores.datasets import TrainingRecord, load_records, split_records
from stores.jarvis_tc import is_jarvis_tc_dir, load_jarvis_tc

DATA = Path(__file__).resolve().parents[1] / "data" / "jarvis-tc"


def test_reads_the_test_copy_as_tc_only_records():
    records = load_jarvis_tc(DATA)
    assert [r.id for r in records][:2] == ["JVASP-122903", "JVASP-122935"]
    assert all(not r.has_spectrum and r.a2f is None for r in records)
    assert records[2].tc_K == pytest.approx(14.16) and records[2].labels["tc_K"] == 14.16
    assert all(len(r.structure) in (1, 2) for r in records)
    # load_records picks the importer from the layout, and splits work on the rows
    assert [r.id for r in load_records(DATA)] == [r.id for r in records]
    train, test = split_records(records, 0.5, seed=1)
    assert len(train) == len(test) == 3


def test_bad_lines_are_reported_with_their_numbers(tmp_path):
    lines = (DATA / "records.jsonl").read_text().splitlines()
    good = json.loads(lines[0])
    no_tc = {k: v for k, v in good.items() if k != "tc_K"} | {"jid": "X-1"}
    broken = good | {"jid": "X-2", "poscar": "System\n1.0\nnot a lattice\n"}
    extra = json.loads(lines[1]) | {"formula": "ignored", "other": [1, 2]}
    content = [lines[0], json.dumps(no_tc), json.dumps(broken), "{not json", "",
               json.dumps(extra), lines[0], json.dumps(good | {"jid": "X-3", "tc_K": -1})]
    (tmp_path / "records.jsonl").write_text("\n".join(content) + "\n")
    (tmp_path / "notes.txt").write_text("other files are ignored")
    messages: list[str] = []
    records = load_jarvis_tc(tmp_path, report=messages.append)
    assert [r.id for r in records] == [good["jid"], extra["jid"]]
    assert len(messages) == 1
    msg = messages[0]
    assert "dropped 5 of 7 lines" in msg      # the blank line is not a row
    assert "line 2: X-1: no tc_K" in msg
    assert "line 3: X-2: unreadable POSCAR" in msg
    assert "line 4: not JSON" in msg
    assert f"line 7: {good['jid']}: repeated jid" in msg
    assert "line 8: X-3: tc_K -1.0 is not a finite number >= 0" in msg


def test_folder_without_usable_lines(tmp_path):
    assert not is_jarvis_tc_dir(tmp_path)
    with pytest.raises(ValueError, match="records.jsonl"):
        load_jarvis_tc(tmp_path)
    (tmp_path / "records.jsonl").write_text('{"jid": "a"}\n')
    with pytest.raises(ValueError, match="no usable line"):
        load_jarvis_tc(tmp_path, report=lambda m: None)


def test_a_record_needs_a_spectrum_or_a_tc(tmp_path):
    structure = load_jarvis_tc(DATA)[0].structure
    with pytest.raises(ValueError, match="tc_K"):
        TrainingRecord(id="x", structure=structure)


@pytest.mark.skipif(not Path("../shared/datasets/jarvis-tc").is_dir(),
                    reason="needs ../shared/datasets/jarvis-tc (the full data set)")
def test_reads_the_full_shared_data_set():
    messages: list[str] = []
    records = load_jarvis_tc("../shared/datasets/jarvis-tc", report=messages.append)
    assert len(records) == 496 and not messages
    assert sum(r.tc_K > 5 for r in records) == 79


def test_copy_of_the_folder_is_found_by_layout(tmp_path):
    shutil.copytree(DATA, tmp_path / "j")
    assert is_jarvis_tc_dir(tmp_path / "j")
