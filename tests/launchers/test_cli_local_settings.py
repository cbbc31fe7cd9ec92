"""Every ``bete`` command reads ``./bete_settings.yaml``; worker jobs keep it in launcher dirs."""

from __future__ import annotations

import os

from jobflow import job

from launchers.cli import main


def test_query_uses_the_working_directory_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BETE_CONFIG_FILE", raising=False)
    monkeypatch.delenv("BETE_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bete_settings.yaml").write_text(f"store: {tmp_path / 'from-local-file'}\n")
    # reading commands never create a store: the error names the store the local file gives
    assert main(["query", "--format", "json"]) == 2
    assert str(tmp_path / "from-local-file") in capsys.readouterr().err
    assert not (tmp_path / "from-local-file").exists()
    assert not (tmp_path / "home" / ".bete").exists()
    # BETE_CONFIG_FILE still wins over the local file
    other = tmp_path / "other.yaml"
    other.write_text(f"store: {tmp_path / 'from-env-file'}\n")
    monkeypatch.setenv("BETE_CONFIG_FILE", str(other))
    assert main(["query", "--format", "json"]) == 2
    assert str(tmp_path / "from-env-file") in capsys.readouterr().err

@job
def settings_probe() -> dict:
    """What a job sees of the settings, and where it runs."""
    import os

    from stores.settings import get_settings

    return {"nprocs": get_settings().nprocs, "cwd": os.getcwd()}


def test_worker_jobs_keep_the_launch_directory_settings(launchpad, job_store, tmp_path,
                                                        monkeypatch):
    from launchers import fireworks as fw

    monkeypatch.delenv("BETE_CONFIG_FILE", raising=False)
    monkeypatch.delenv("BETE_NPROCS", raising=False)
    (tmp_path / "bete_settings.yaml").write_text("nprocs: 5\n")  # launchpad: cwd = tmp_path
    probe = settings_probe()
    fw.submit_flows(probe, launchpad, dedup_key=None)
    fw.launch_rapidfire(launchpad, store=job_store)
    job_store.connect()
    seen = job_store.get_output(probe.uuid)
    assert "launcher_" in seen["cwd"]  # FireWorks ran the job in a launcher_* directory
    assert seen["nprocs"] == 5
    assert "BETE_CONFIG_FILE" not in os.environ  # restored after the launch
