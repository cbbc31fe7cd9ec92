"""``bete config init``, ``store check``, ``dfpt submit``, ``launch``, ``status``, ``rerun``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from launchers import fireworks as fw
from launchers.cli import main
from launchers.configs import CONFIG_FILES, load_resources
from tests.launchers.conftest import closed_port
from tests.launchers.sample_jobs import fail_unless, two_job_flow

SECRET = "pa55-w0rd-xyz"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what earlier steps printed (jobflow logs to stdout)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# (h) config init ---------------------------------------------------------------------
def test_config_init_writes_parseable_templates(tmp_path, capsys, monkeypatch):
    from stores.config import describe_store_spec
    from stores.settings import get_settings

    target = tmp_path / "cluster"
    code, out, err = _run(capsys, "config", "init", target, "--name", "mycluster")
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == sorted(CONFIG_FILES)
    for name in CONFIG_FILES:
        text = (target / name).read_text()
        assert isinstance(yaml.safe_load(text), dict), name
        assert text.lstrip().startswith("#"), f"{name} has no explanatory comments"
        assert "@CONFIG_DIR@" not in text
    # the files are what FireWorks and bete read
    qadapter = fw.load_qadapter(target / "my_qadapter.yaml")
    assert qadapter.q_type == "SLURM"
    script = qadapter.get_script_str(str(tmp_path))
    assert f"bete launch rapidfire --launchpad {target}/my_launchpad.yaml" in script
    assert f"export BETE_CONFIG_FILE={target}/bete_settings.yaml" in script
    assert fw.load_qadapter(target / "my_qadapter_pbs.yaml").q_type == "PBS"
    assert yaml.safe_load((target / "my_fworker.yaml").read_text())["name"] == "mycluster"
    for env in ("BETE_DB_HOST", "BETE_DB_USER", "BETE_DB_PASSWORD"):
        monkeypatch.delenv(env, raising=False)
    described = describe_store_spec(target / "bete_store.yaml")
    assert described["address"] == "mongodb://localhost:27017/bete"
    assert described["stores"]["data"]["type"] == "GridFSStore"
    monkeypatch.setenv("BETE_CONFIG_FILE", str(target / "bete_settings.yaml"))
    monkeypatch.delenv("BETE_STORE", raising=False)
    settings = get_settings()
    assert (settings.mpi_cmd, settings.mpi_np_flag) == ("srun", "-n")
    assert settings.store == str(target / "bete_store.yaml")
    for spec in load_resources(target / "bete_resources.yaml").values():
        fw.resources_to_spec(spec)
    assert oct((target / "my_launchpad.yaml").stat().st_mode & 0o777) == "0o600"


def test_config_init_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "cluster"
    assert _run(capsys, "config", "init", target)[0] == 0
    (target / "my_launchpad.yaml").write_text("host: edited\n")
    code, out, err = _run(capsys, "config", "init", target)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--force" in err
    assert (target / "my_launchpad.yaml").read_text() == "host: edited\n"
    code, _, _ = _run(capsys, "config", "init", target, "--force", "--scheduler", "pbs")
    assert code == 0
    assert "host: edited" not in (target / "my_launchpad.yaml").read_text()
    assert yaml.safe_load((target / "my_qadapter.yaml").read_text())["_fw_q_type"] == "PBS"


# (g) store check -----------------------------------------------------------------------
def test_store_check_table_and_json(tmp_path, capsys):
    from jobflow import run_locally

    from stores.config import embedded_store

    run_locally(two_job_flow(1.0), store=embedded_store(tmp_path / "db"), ensure_success=True)
    code, out, err = _run(capsys, "store", "check", "--store", tmp_path / "db", "--format",
                          "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["reachable"] and report["kind"] == "embedded"
    assert report["counts"] == {"elph_task": 1, "summary": 1}
    assert report["blobs"] == {"data": 1}
    code, out, _ = _run(capsys, "store", "check", "--store", tmp_path / "db")
    assert code == 0 and "reachable: yes" in out and "elph_task" in out


def test_store_check_unreachable_is_one_line_exit_2(capsys):
    port = closed_port()
    code, out, err = _run(capsys, "store", "check", "--timeout", "0.5", "--store",
                          f"mongodb://ann:{SECRET}@127.0.0.1:{port}/bete")
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("bete: error")]
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in err and SECRET not in err


def test_store_check_uses_local_settings_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("BETE_CONFIG_FILE", raising=False)
    monkeypatch.delenv("BETE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bete_settings.yaml").write_text(f"store: {tmp_path / 'here'}\n")
    code, out, _ = _run(capsys, "store", "check", "--format", "json")
    assert code == 0 and json.loads(out)["address"] == str(tmp_path / "here")


# (f) unreachable LaunchPad ---------------------------------------------------------------
def test_status_with_unreachable_launchpad(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MONGOMOCK_SERVERSTORE_FILE", raising=False)
    port = closed_port()
    lp_file = tmp_path / "lp.yaml"
    lp_file.write_text(f"host: 127.0.0.1\nport: {port}\nname: bete\npassword: {SECRET}\n")
    code, out, err = _run(capsys, "status", "--launchpad", lp_file, "--timeout", "0.5")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"LaunchPad at 127.0.0.1:{port}/bete" in err and SECRET not in err


# (d), (e) and launch through the CLI ------------------------------------------------------
def test_launch_status_rerun_cycle(launchpad, mongomock_lp_file, tmp_path, capsys):
    marker = tmp_path / "fixed"
    fw.submit_flows([two_job_flow(1.0), fail_unless(str(marker))], launchpad)
    fw.close_launchpad(launchpad)
    store_dir = tmp_path / "results"
    code, _, err = _run(capsys, "launch", "rapidfire", "--store", store_dir,
                        "--launch-dir", tmp_path / "runs")
    assert code == 0, err
    code, out, _ = _run(capsys, "status", "--format", "json")
    flows = {f["name"]: f for f in json.loads(out)}
    assert flows["demo-1.0"]["state"] == "COMPLETED"
    assert [j["state"] for j in flows["fail_unless"]["jobs"]] == ["FIZZLED"]
    assert {j["name"] for j in flows["demo-1.0"]["jobs"]} == {"make_spectrum", "integrate"}
    code, out, _ = _run(capsys, "status")
    assert "FIZZLED" in out and "2 COMPLETED" in out
    assert _run(capsys, "rerun")[0] == 2  # nothing asked for
    marker.write_text("")
    code, out, _ = _run(capsys, "rerun", "--fizzled")
    assert code == 0 and json.loads(out) == {"rerun": [flows["fail_unless"]["wf_id"]]}
    assert _run(capsys, "launch", "rapidfire", "--store", store_dir,
                "--launch-dir", tmp_path / "runs")[0] == 0
    code, out, _ = _run(capsys, "status", "--format", "json", "--state", "COMPLETED")
    assert len(json.loads(out)) == 2
    code, out, _ = _run(capsys, "store", "check", "--store", store_dir, "--format", "json")
    assert json.loads(out)["counts"] == {"(no doc_type)": 1, "elph_task": 1, "summary": 1}


# dfpt submit ---------------------------------------------------------------------------
@pytest.fixture
def al_cif(tmp_path) -> Path:
    from pymatgen.core import Lattice, Structure

    path = tmp_path / "Al.cif"
    Structure(Lattice.cubic(4.05), ["Al"] * 4,
              [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).to(filename=str(path))
    return path


def test_dfpt_submit_twice_adds_one_workflow(launchpad, mongomock_lp_file, al_cif, capsys,
                                             tmp_path):
    pytest.importorskip("workflows.qe.flows")
    from launchers.configs import template_text

    fw.close_launchpad(launchpad)
    (tmp_path / "bete_resources.yaml").write_text(template_text("bete_resources.yaml"))
    code, out, err = _run(capsys, "dfpt", "submit", al_cif, "--format", "json")
    assert code == 0, err
    [first] = json.loads(out)
    assert first["added"] and len(first["key"]) == 64
    code, out, err = _run(capsys, "dfpt", "submit", al_cif, "--format", "json")
    [second] = json.loads(out)
    assert not second["added"] and second["fw_ids"] == first["fw_ids"]
    assert "0 workflow(s) added, 1 already" in err
    lp = fw.load_launchpad(mongomock_lp_file)
    assert lp.workflows.count_documents({}) == 1
    specs = {d["name"]: d["spec"] for d in lp.fireworks.find({})}
    assert specs["ph"]["_category"] == "big" and specs["ph"]["_queueadapter"]["queue"] == "big"
    assert specs["elph_task_document"]["_category"] == "small"
    fw.close_launchpad(lp)


def test_dfpt_submit_refuses_to_embed_credentials(tmp_path, al_cif, capsys, monkeypatch):
    pytest.importorskip("workflows.qe.flows")
    code, out, err = _run(capsys, "dfpt", "submit", al_cif, "--store",
                          f"mongodb://ann:{SECRET}@db.example.org/bete")
    assert code == 2 and "holds credentials" in err and SECRET not in err


def test_dfpt_submit_dry_run_lists_queues(tmp_path, al_cif, capsys):
    pytest.importorskip("workflows.qe.flows")
    resources = tmp_path / "res.yaml"
    resources.write_text("'ph*': {category: big, queue: long}\n'*': {category: small}\n")
    code, out, err = _run(capsys, "dfpt", "submit", al_cif, "--dry-run", "--resources",
                          resources, "--format", "json")
    assert code == 0, err
    rows = {r["job"]: r for r in json.loads(out)}
    assert rows["ph"]["queue"] == "long" and rows["scf"]["category"] == "small"


def test_launch_queue_and_offline_commands(launchpad, mongomock_lp_file, tmp_path, capsys,
                                           monkeypatch):
    import stat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text('#!/bin/sh\necho "Submitted batch job 7"\n')
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    fw.submit_flows(two_job_flow(1.0), launchpad)
    fw.close_launchpad(launchpad)
    assert _run(capsys, "config", "init", tmp_path / "cfg")[0] == 0
    code, _, err = _run(capsys, "launch", "queue", "--qadapter", tmp_path / "cfg" /
                        "my_qadapter.yaml", "--nlaunches", "1", "--launch-dir",
                        tmp_path / "blocks", "--sleep", "0")
    assert code == 0, err
    [script] = list((tmp_path / "blocks").rglob("FW_submit.script"))
    assert "bete launch rapidfire" in script.read_text()
    # offline needs a single-Firework rocket_launch: the template's default is refused
    code, _, err = _run(capsys, "launch", "queue", "--offline", "--qadapter",
                        tmp_path / "cfg" / "my_qadapter.yaml", "--launch-dir",
                        tmp_path / "blocks")
    assert code == 2 and "singleshot" in err
    code, _, err = _run(capsys, "launch", "singleshot", "--offline", "--launch-dir",
                        tmp_path / "empty")
    assert code == 2 and "FW_offline.json" in err
    code, out, _ = _run(capsys, "launch", "recover-offline")
    assert code == 0 and json.loads(out) == {"recovered": [], "failed": []}
