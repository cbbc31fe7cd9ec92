"""The scratch JobStore jobflow's local runner uses for MLIP phonon flows."""

from __future__ import annotations

import pytest
from jobflow import Flow, job, run_locally

from stores.scratch import DictStore, scratch_job_store


@job
def add(a: int, b: int) -> int:
    return a + b


def test_a_flow_runs_on_it_and_outputs_resolve():
    first = add(1, 2)
    second = add(first.output, 10)
    store = scratch_job_store()
    responses = run_locally(Flow([first, second]), store=store, log=False,
                            ensure_success=True)
    assert responses[second.uuid][1].output == 13
    assert store.get_output(first.uuid) == 3 and store.count() == 2


def test_queries_it_answers_and_refuses():
    s = DictStore()
    s.connect()
    s.update([{"uuid": "a", "index": 1, "x": 1}, {"uuid": "a", "index": 2, "x": 2},
              {"uuid": "b", "index": 1, "x": 3}], key=["uuid", "index"])
    s.update({"uuid": "b", "index": 1, "x": 4}, key=["uuid", "index"])      # replaces
    assert [d["x"] for d in s.query({"uuid": "a"}, sort={"index": -1})] == [2, 1]
    assert [d["x"] for d in s.query({"uuid": {"$in": ["b"]}}, properties=["x"])] == [4]
    assert s.count({"index": 1}) == 2
    s.remove_docs({"uuid": "a"})
    assert s.count() == 1
    with pytest.raises(NotImplementedError, match="x.y"):
        list(s.query({"x.y": 1}))
    with pytest.raises(NotImplementedError, match=r"\$gt"):
        s.count({"x": {"$gt": 1}})
