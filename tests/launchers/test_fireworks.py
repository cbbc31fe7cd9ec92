"""FireWorks submission with real components: mongomock LaunchPad + MontyStore JobStore."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from jobflow import run_locally

from launchers import fireworks as fw
from tests.launchers.conftest import closed_port
from tests.launchers.sample_jobs import fail_unless, spawn, two_job_flow


def _outputs(store, flow) -> dict[str, dict]:
    """Job name → output with blobs loaded."""
    store.connect()
    return {job.name: store.get_output(job.uuid, load=True) for job in fw.iter_jobs(flow)}


# (a) ---------------------------------------------------------------------------------
def test_rapidfire_outputs_match_run_locally(launchpad, job_store, tmp_path):
    from stores.config import embedded_store

    local_store = embedded_store(tmp_path / "local")
    local_flow = two_job_flow(2.0)
    run_locally(local_flow, store=local_store, ensure_success=True)

    flow = two_job_flow(2.0)
    [sub] = fw.submit_flows(flow, launchpad)
    assert sub.added and len(sub.fw_ids) == 2
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "launches")

    got, expected = _outputs(job_store, flow), _outputs(local_store, local_flow)
    assert got.keys() == expected.keys() == {"make_spectrum", "integrate"}
    np.testing.assert_allclose(got["make_spectrum"]["a2f"], expected["make_spectrum"]["a2f"])
    assert got["integrate"] == pytest.approx(expected["integrate"])
    # the array went to the data store, not into the document
    raw = job_store.query_one({"uuid": flow.jobs[0].uuid})
    assert "blob_uuid" in raw["output"]["a2f"]
    assert job_store.additional_stores["data"].count() == 1
    # the same document layout as run_locally
    local_raw = local_store.query_one({"uuid": local_flow.jobs[0].uuid})
    assert set(raw) == set(local_raw)
    assert set(raw["output"]) == set(local_raw["output"])
    states = {j["name"]: j["state"] for j in fw.workflow_status(launchpad)[0]["jobs"]}
    assert states == {"make_spectrum": "COMPLETED", "integrate": "COMPLETED"}


def test_dynamic_jobs_inherit_resources(launchpad, job_store, tmp_path):
    flow = spawn(3)
    fw.submit_flows(flow, launchpad, resources={"*": {"category": "small"}}, dedup_key=None)
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "l")
    docs = list(launchpad.fireworks.find({}, {"name": 1, "spec._category": 1, "state": 1}))
    assert len(docs) == 2
    assert all(d["state"] == "COMPLETED" for d in docs)
    assert all(d["spec"]["_category"] == "small" for d in docs)


# (b) ---------------------------------------------------------------------------------
def test_submitting_twice_creates_one_workflow(launchpad):
    first = fw.submit_flows([two_job_flow(1.0), two_job_flow(2.0)], launchpad)
    again = fw.submit_flows([two_job_flow(1.0), two_job_flow(2.0)], launchpad)
    assert [s.added for s in first] == [True, True]
    assert [s.added for s in again] == [False, False]
    assert [s.fw_ids for s in again] == [s.fw_ids for s in first]
    assert launchpad.workflows.count_documents({}) == 2
    assert launchpad.fireworks.count_documents({}) == 4
    # no key: no dedup possible, so it is added
    fw.submit_flows(two_job_flow(1.0, key=None), launchpad)
    assert launchpad.workflows.count_documents({}) == 3


def test_dedup_key_from_jobs_or_callable():
    flow = two_job_flow(1.0, key=None)
    assert fw.dedup_key_for(flow) is None
    flow.jobs[0].metadata["input_hash"] = "abc"
    assert fw.dedup_key_for(flow) == "abc"
    flow.jobs[1].metadata["input_hash"] = "def"
    assert len(fw.dedup_key_for(flow)) == 64  # several values: hashed, deterministic
    assert fw.dedup_key_for(flow) == fw.dedup_key_for(flow)
    assert fw.dedup_key_for(flow, lambda f: f.name) == "demo-1.0"
    assert fw.dedup_key_for(flow, None) is None


# (c) ---------------------------------------------------------------------------------
def test_resources_land_in_the_firework_spec(launchpad):
    resources = {
        "make_*": {"category": "big", "queue": "big", "walltime": "24:00:00", "cores": 64,
                   "nodes": 2, "fworker": "cluster-big", "priority": 5},
        "*": {"category": "small", "queueadapter": {"nnodes": 1, "ppnode": 1}},
    }
    fw.submit_flows(two_job_flow(1.0), launchpad, resources=resources)
    specs = {d["name"]: d["spec"] for d in launchpad.fireworks.find({})}
    big, small = specs["make_spectrum"], specs["integrate"]
    assert big["_category"] == "big" and big["_fworker"] == "cluster-big"
    assert big["_priority"] == 5
    assert big["_queueadapter"] == {"queue": "big", "walltime": "24:00:00", "ntasks": 64,
                                    "nodes": 2}
    assert small["_category"] == "small"
    assert small["_queueadapter"] == {"nnodes": 1, "ppnode": 1}
    metadata = launchpad.workflows.find_one({})["metadata"]
    assert metadata["bete_dedup_key"] == metadata["input_hash"] == "hash-1.0"


def test_unknown_resource_key_is_refused():
    with pytest.raises(ValueError, match="unknown resource key 'cpus'"):
        fw.resources_to_spec({"cpus": 4})


def test_category_decides_which_worker_runs_a_job(launchpad, job_store, tmp_path):
    from fireworks import FWorker

    fw.submit_flows(two_job_flow(1.0), launchpad,
                    resources={"make_*": {"category": "big"}, "*": {"category": "small"}})
    fw.launch_rapidfire(launchpad, fworker=FWorker(category="small"), store=job_store,
                        launch_dir=tmp_path / "small", max_loops=1)
    states = {d["name"]: d["state"] for d in launchpad.fireworks.find({})}
    assert states == {"make_spectrum": "READY", "integrate": "WAITING"}
    fw.launch_rapidfire(launchpad, fworker=FWorker(category=["big", "small"]),
                        store=job_store, launch_dir=tmp_path / "both")
    states = {d["name"]: d["state"] for d in launchpad.fireworks.find({})}
    assert states == {"make_spectrum": "COMPLETED", "integrate": "COMPLETED"}


# (d) ---------------------------------------------------------------------------------
def test_status_lists_flows_and_job_states(launchpad):
    fw.submit_flows([two_job_flow(1.0), two_job_flow(2.0)], launchpad)
    status = fw.workflow_status(launchpad)
    assert [s["name"] for s in status] == ["demo-2.0", "demo-1.0"]  # newest first
    for flow in status:
        assert flow["state"] == "READY"
        assert {j["state"] for j in flow["jobs"]} == {"READY", "WAITING"}
        assert all(j["job_uuid"] for j in flow["jobs"])
    json.dumps(status)  # JSON-ready
    assert fw.workflow_status(launchpad, query={"state": "COMPLETED"}) == []


# (e) ---------------------------------------------------------------------------------
def test_rerun_fizzled_job(launchpad, job_store, tmp_path):
    marker = tmp_path / "fixed"
    job = fail_unless(str(marker))
    fw.submit_flows(job, launchpad, dedup_key=None)
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "l1")
    assert fw.workflow_status(launchpad)[0]["state"] == "FIZZLED"
    marker.write_text("")
    assert fw.rerun_fireworks(launchpad, fizzled=True) == [1]
    assert fw.rerun_fireworks(launchpad, fizzled=True) == []  # nothing FIZZLED any more
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "l2")
    assert fw.workflow_status(launchpad)[0]["state"] == "COMPLETED"
    job_store.connect()
    assert job_store.count({"uuid": job.uuid}) == 1
    assert job_store.get_output(job.uuid) == "ok"
    with pytest.raises(ValueError, match="nothing to rerun"):
        fw.rerun_fireworks(launchpad)


def test_rerun_in_previous_directory(launchpad, job_store, tmp_path):
    marker = tmp_path / "fixed"
    fw.submit_flows(fail_unless(str(marker)), launchpad, dedup_key=None)
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "l1")
    first_dir = fw.workflow_status(launchpad)[0]["jobs"][0]["launch_dir"]
    marker.write_text("")
    fw.rerun_fireworks(launchpad, fw_ids=[1], recover="prev_dir")
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "l2")
    doc = launchpad.fireworks.find_one({"fw_id": 1})
    assert doc["state"] == "COMPLETED"
    last = launchpad.launches.find_one({"launch_id": doc["launches"][-1]})
    assert last["launch_dir"] == first_dir


# (f) ---------------------------------------------------------------------------------
def test_unreachable_launchpad_is_one_line_with_address(tmp_path, monkeypatch):
    monkeypatch.delenv("MONGOMOCK_SERVERSTORE_FILE", raising=False)
    port = closed_port()
    lp_file = tmp_path / "lp.yaml"
    lp_file.write_text(f"host: 127.0.0.1\nport: {port}\nname: bete\nusername: ann\n"
                       "password: s3cr3t-pw\n")
    with pytest.raises(fw.LaunchPadError) as info:
        fw.load_launchpad(lp_file, timeout_s=0.5)
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}/bete" in message
    assert "s3cr3t-pw" not in message


def test_launchpad_file_expands_environment(mongomock_lp_file, monkeypatch):
    monkeypatch.setenv("BETE_TEST_LP_NAME", "from_env")
    mongomock_lp_file.write_text("host: localhost\nname: ${BETE_TEST_LP_NAME}\n")
    lp = fw.load_launchpad(mongomock_lp_file)
    assert lp.name == "from_env"
    mongomock_lp_file.write_text("host: localhost\nname: ${BETE_TEST_UNSET_VARIABLE}\n")
    with pytest.raises(fw.LaunchPadError, match="BETE_TEST_UNSET_VARIABLE is not set"):
        fw.load_launchpad(mongomock_lp_file)


def test_missing_launchpad_file():
    with pytest.raises(fw.LaunchPadError, match="does not exist"):
        fw.load_launchpad("/nonexistent/my_launchpad.yaml")


# offline -------------------------------------------------------------------------------
def _fake_sbatch(bin_dir: Path) -> Path:
    """An ``sbatch`` that records the script it was given and 'queues' it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "sbatch"
    script.write_text('#!/bin/sh\necho "$PWD/$1" >> "$(dirname "$0")/submitted"\n'
                      'echo "Submitted batch job $$"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir / "submitted"


def _qadapter(rocket_launch: str):
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

    return CommonAdapter("SLURM", rocket_launch=rocket_launch, nodes=1, ntasks=1,
                         walltime="00:10:00", job_name="bete")


def test_queue_launch_runs_generated_script(launchpad, mongomock_lp_file, tmp_path,
                                            monkeypatch, worker_env):
    bin_dir = tmp_path / "bin"
    submitted = _fake_sbatch(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}:{worker_env['PATH']}")
    fw.submit_flows(two_job_flow(1.0), launchpad,
                    resources={"make_*": {"walltime": "02:00:00", "cores": 4}})
    qadapter = _qadapter(f"bete launch rapidfire --launchpad {mongomock_lp_file}")
    fw.launch_queue(launchpad, qadapter, nlaunches=1, launch_dir=tmp_path / "blocks",
                    sleep_time_s=0)
    fw.close_launchpad(launchpad)  # mongomock: one process at a time
    [script] = submitted.read_text().split()
    text = Path(script).read_text()
    assert "#SBATCH --time=00:10:00" in text and "bete launch rapidfire" in text
    run = subprocess.run(["bash", script], cwd=Path(script).parent, env=worker_env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lp = fw.load_launchpad(mongomock_lp_file)
    assert [f["state"] for f in fw.workflow_status(lp)] == ["COMPLETED"]
    fw.close_launchpad(lp)


def test_offline_reservation_and_recovery(launchpad, mongomock_lp_file, tmp_path, monkeypatch,
                                          worker_env):
    bin_dir = tmp_path / "bin"
    submitted = _fake_sbatch(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}:{worker_env['PATH']}")
    fw.submit_flows(two_job_flow(1.0), launchpad,
                    resources={"make_*": {"walltime": "02:00:00", "cores": 4}})
    qadapter = _qadapter("bete launch singleshot")
    fw.launch_queue(launchpad, qadapter, nlaunches=1, launch_dir=tmp_path / "blocks",
                    offline=True, sleep_time_s=0)
    [script] = submitted.read_text().split()
    text = Path(script).read_text()
    # reservation mode: this Firework's own queue settings, one Firework per queue job
    assert "#SBATCH --time=02:00:00" in text and "#SBATCH --ntasks=4" in text
    assert "bete launch singleshot --offline --fw_id 2" in text
    assert (Path(script).parent / "FW_offline.json").is_file()
    assert launchpad.fireworks.find_one({"fw_id": 2})["state"] == "RESERVED"
    fw.close_launchpad(launchpad)
    # the compute node: no LaunchPad at all (drop the mongomock file from the environment)
    node_env = {k: v for k, v in worker_env.items() if k != "MONGOMOCK_SERVERSTORE_FILE"}
    run = subprocess.run(["bash", script], cwd=Path(script).parent, env=node_env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    offline = json.loads((Path(script).parent / "FW_offline.json").read_text())
    assert offline["state"] == "COMPLETED" and "fwaction" in offline
    lp = fw.load_launchpad(mongomock_lp_file)
    recovered, failed = fw.recover_offline(lp)
    assert (recovered, failed) == ([2], [])
    states = {d["name"]: d["state"] for d in lp.fireworks.find({})}
    assert states == {"make_spectrum": "COMPLETED", "integrate": "READY"}
    fw.close_launchpad(lp)


def test_reservation_needs_singleshot(launchpad):
    with pytest.raises(fw.LaunchPadError, match="singleshot"):
        fw.launch_queue(launchpad, _qadapter("bete launch rapidfire"), reserve=True)


def test_first_submission_initialises_an_empty_launchpad(mongomock_lp_file):
    lp = fw.load_launchpad(mongomock_lp_file)  # never reset
    assert lp.fw_id_assigner.find_one({}) is None
    [sub] = fw.submit_flows(two_job_flow(1.0), lp)
    assert sub.added and sub.fw_ids == [1, 2]
    assert not fw.ensure_initialized(lp)  # initialised once, never again
    fw.close_launchpad(lp)


@pytest.mark.mongo
def test_real_mongodb_launchpad_and_store(tmp_path, monkeypatch):
    import os

    uri = os.environ.get("BETE_TEST_MONGODB_URI")
    if not uri:
        pytest.skip("set BETE_TEST_MONGODB_URI=mongodb://host:port/db to run against MongoDB")
    from stores.config import load_job_store

    monkeypatch.delenv("MONGOMOCK_SERVERSTORE_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    lp_file = tmp_path / "my_launchpad.yaml"
    lp_file.write_text(f"host: '{uri}'\nuri_mode: true\nname: bete_test_fireworks\n")
    lp = fw.load_launchpad(lp_file)
    lp.reset("", require_password=False, max_reset_wo_password=1000)
    store = load_job_store(uri)
    store.connect()
    store.docs_store.remove_docs({})
    flow = two_job_flow(4.0)
    assert fw.submit_flows(flow, lp)[0].added
    assert not fw.submit_flows(two_job_flow(4.0), lp)[0].added
    fw.launch_rapidfire(lp, store=store, launch_dir=tmp_path / "runs")
    assert fw.workflow_status(lp)[0]["state"] == "COMPLETED"
    assert store.get_output(flow.jobs[1].uuid)["doc_type"] == "summary"


def test_embedded_store_travels_with_the_workflow(launchpad, job_store, tmp_path):
    flow = two_job_flow(6.0)
    fw.submit_flows(flow, launchpad, store=job_store)
    fw.launch_rapidfire(launchpad, launch_dir=tmp_path / "runs")  # no worker store given
    job_store.connect()
    assert job_store.get_output(flow.jobs[1].uuid)["doc_type"] == "summary"


@pytest.mark.qe
def test_real_al_dfpt_flow_through_fireworks(launchpad, job_store, tmp_path, require_qe,
                                            pslibrary_dir):
    """The DFPT flow (coarse fcc Al) submitted, deduplicated and run by a FireWorks worker."""
    from pymatgen.core import Lattice, Structure

    from workflows.qe.flows import ElphFlowMaker

    al = Structure(Lattice.cubic(4.04), ["Al"] * 4,
                   [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    coarse = {"k_grid": [4, 4, 4], "k_grid_dense": [8, 8, 8], "q_grid": [2, 2, 2],
              "ecutwfc": 25, "ecutrho": 200}

    def make():
        maker = ElphFlowMaker.from_preset("fast", coarse, str(pslibrary_dir),
                                          scratch_dir=str(tmp_path / "scratch"))
        return maker.make(al, source_id="al")

    resources = {"ph*": {"category": "big"}, "scf": {"category": "big"},
                 "*": {"category": "small"}}
    flow = make()
    [first] = fw.submit_flows(flow, launchpad, resources=resources)
    [again] = fw.submit_flows(make(), launchpad, resources=resources)
    assert first.added and not again.added and first.key == again.key
    fw.launch_rapidfire(launchpad, store=job_store, launch_dir=tmp_path / "runs")
    [status] = fw.workflow_status(launchpad)
    assert status["state"] == "COMPLETED", status
    assert {j["name"]: j["category"] for j in status["jobs"]}["ph"] == "big"
    job_store.connect()
    doc = job_store.get_output(flow.output.uuid, load=True)
    assert doc["status"] == "completed" and doc["dynamically_stable"]
    assert 0.2 < doc["lambda_"] < 1.5
    assert job_store.additional_stores["data"].count() >= 1
