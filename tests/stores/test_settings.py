"""Where the settings come from: file lookup order, environment, overrides, call time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stores.settings import DEFAULT_CONFIG_FILE, config_file, get_settings, pinned_config_file


@pytest.fixture
def cwd_and_home(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """An empty working directory and HOME; no BETE_CONFIG_FILE, no BETE_* values."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("BETE_"):
            monkeypatch.delenv(name)
    return work, home


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_lookup_order_env_then_working_dir_then_home(cwd_and_home, monkeypatch, tmp_path):
    work, home = cwd_and_home
    user = _write(home / ".config" / "bete" / "settings.yaml", "nprocs: 3\n")
    assert config_file() == DEFAULT_CONFIG_FILE.expanduser() == user
    assert get_settings().nprocs == 3
    local = _write(work / "bete_settings.yaml", "nprocs: 5\n")
    assert config_file() == local
    assert get_settings().nprocs == 5
    explicit = _write(tmp_path / "elsewhere.yaml", "nprocs: 7\n")
    monkeypatch.setenv("BETE_CONFIG_FILE", str(explicit))
    assert config_file() == explicit
    assert get_settings().nprocs == 7
    # an explicit file that does not exist means "no file", not "look further"
    monkeypatch.setenv("BETE_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    assert get_settings().nprocs == 2
    monkeypatch.setenv("BETE_CONFIG_FILE", "")  # empty = not set
    assert config_file() == local


def test_no_file_anywhere_gives_defaults(cwd_and_home):
    assert not config_file().exists()
    settings = get_settings()
    assert (settings.nprocs, settings.mpi_cmd, settings.qe_max_seconds) == (2, "mpirun", None)


def test_environment_beats_file_and_overrides_beat_environment(cwd_and_home, monkeypatch):
    work, _ = cwd_and_home
    _write(work / "bete_settings.yaml", "nprocs: 5\nmpi_cmd: srun\nscratch_dir: /from/file\n")
    monkeypatch.setenv("BETE_NPROCS", "8")
    settings = get_settings()
    assert settings.nprocs == 8  # environment
    assert settings.mpi_cmd == "srun" and settings.scratch_dir == "/from/file"  # file
    settings = get_settings(nprocs=1, mpi_cmd=None)
    assert settings.nprocs == 1 and settings.mpi_cmd is None  # overrides
    assert settings.scratch_dir == "/from/file"


def test_settings_are_read_at_call_time(cwd_and_home, monkeypatch, tmp_path):
    work, _ = cwd_and_home
    local = _write(work / "bete_settings.yaml", "qe_max_seconds: 100\n")
    assert get_settings().qe_max_seconds == 100
    local.write_text("qe_max_seconds: 200\n")
    assert get_settings().qe_max_seconds == 200
    monkeypatch.setenv("BETE_QE_MAX_SECONDS", "5")
    assert get_settings().qe_max_seconds == 5
    monkeypatch.delenv("BETE_QE_MAX_SECONDS")
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)  # another working directory: its (absent) file
    assert get_settings().qe_max_seconds is None


def test_pinned_file_survives_a_change_of_directory(cwd_and_home, monkeypatch, tmp_path):
    work, _ = cwd_and_home
    local = _write(work / "bete_settings.yaml", "nprocs: 6\n")
    launcher = tmp_path / "launcher_1"
    launcher.mkdir()
    with pinned_config_file() as pinned:
        assert pinned == local.resolve()
        assert os.environ["BETE_CONFIG_FILE"] == str(local.resolve())
        monkeypatch.chdir(launcher)  # what a FireWorks rocket does
        assert get_settings().nprocs == 6
    assert "BETE_CONFIG_FILE" not in os.environ
    assert get_settings().nprocs == 2
    monkeypatch.setenv("BETE_CONFIG_FILE", "relative.yaml")
    with pinned_config_file() as pinned:
        assert pinned == launcher / "relative.yaml"
    assert os.environ["BETE_CONFIG_FILE"] == "relative.yaml"  # restored


def test_malformed_file_is_a_clear_error(cwd_and_home):
    work, _ = cwd_and_home
    _write(work / "bete_settings.yaml", "- just\n- a list\n")
    with pytest.raises(ValueError, match="bete_settings.yaml must hold a mapping"):
        get_settings()


def test_test_suite_isolation_still_points_at_a_private_file():
    # tests/conftest.py sets BETE_CONFIG_FILE: it wins over any ./bete_settings.yaml
    assert config_file() == Path(os.environ["BETE_CONFIG_FILE"])
    assert "bete-home" in str(config_file())
