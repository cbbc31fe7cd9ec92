"""Where the FireWorks files are and what they hold: LaunchPad, FWorker, queue adapter.

``my_launchpad.yaml`` may name a mongomock data file (``mongomock_file``): FireWorks'
mongomock mode keeps the whole LaunchPad in one JSON file, written when the client is
garbage collected; :func:`close_launchpad` writes it explicitly.  It is for tests and demos
only: a single process at a time, and a killed process loses its work.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import yaml

from launchers.fireworks.patches import patch_mongoclient, remember_fw_classes
from stores.config import StoreConfigError, expand_env, mask_text

LAUNCHPAD_FILE = "my_launchpad.yaml"
FWORKER_FILE = "my_fworker.yaml"
QADAPTER_FILE = "my_qadapter.yaml"
DEFAULT_TIMEOUT_S = 5.0
#: Key of ``my_launchpad.yaml`` (bete's own) naming a mongomock data file.
MONGOMOCK_FILE_KEY = "mongomock_file"


class LaunchPadError(RuntimeError):
    """The LaunchPad (or its file) is unusable; the message is one masked line."""


def find_config_file(explicit: str | os.PathLike[str] | None, name: str,
                     fw_default: str | None = None) -> Path | None:
    """Which FireWorks config file to use.

    Parameters
    ----------
    explicit
        A path the user gave (must exist).
    name
        File name looked up in the working directory (``my_launchpad.yaml``).
    fw_default
        FireWorks' own lookup result (``fw_config.LAUNCHPAD_LOC`` ...).

    Returns
    -------
    pathlib.Path or None
        The explicit file, else ``./name`` if present, else FireWorks'
        default, else None.

    Raises
    ------
    LaunchPadError
        When an explicit file does not exist.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise LaunchPadError(f"{path} does not exist; run `bete config init DIR` for a "
                                 "template or give the right path")
        return path
    local = Path.cwd() / name
    if local.is_file():
        return local
    if fw_default:
        return Path(fw_default)
    return None


def _fw_config() -> Any:
    from fireworks import fw_config

    return fw_config


def using_mongomock(lp: Any) -> bool:
    """Whether a LaunchPad runs on FireWorks' mongomock file mode."""
    return "mongomock" in type(getattr(lp, "connection", None)).__module__


def use_mongomock_file(path: Path) -> None:
    """Switch FireWorks to its mongomock file mode with the data in ``path`` (created)."""
    path = path.expanduser().resolve()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    os.environ["MONGOMOCK_SERVERSTORE_FILE"] = str(path)
    patch_mongoclient()


def launchpad_address(lp: Any) -> str:
    """``host:port/name`` of a LaunchPad, masked."""
    if getattr(lp, "uri_mode", False):
        return mask_text(str(lp.host))
    return mask_text(f"{lp.host}:{lp.port}/{lp.name}", [lp.password or ""])


def load_launchpad(path: str | os.PathLike[str] | None = None, *,
                   check: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """The LaunchPad a file describes, checked to be reachable.

    Parameters
    ----------
    path
        ``my_launchpad.yaml``; None = ``./my_launchpad.yaml`` if present, else
        FireWorks' own lookup (``FW_CONFIG_FILE``, ``~/.fireworks``), else
        FireWorks' default (``localhost:27017/fireworks``).  ``${VAR}`` and
        ``${VAR:-default}`` in the file are expanded from the environment.
    check
        Ping the server first, giving up after ``timeout_s``.
    timeout_s
        Server-selection timeout of the check.

    Returns
    -------
    fireworks.LaunchPad

    Raises
    ------
    LaunchPadError
        One line with the address tried when the file is bad or the server
        cannot be reached.
    """
    from fireworks import LaunchPad

    patch_mongoclient()
    found = find_config_file(path, LAUNCHPAD_FILE, _fw_config().LAUNCHPAD_LOC)
    try:
        if found is None:
            lp = LaunchPad()
        else:
            settings = yaml.safe_load(found.read_text()) or {}
            if not isinstance(settings, dict):
                raise ValueError("it must hold a mapping (host, port, name, ...)")
            settings = expand_env(settings, source=str(found))
            mock = settings.pop(MONGOMOCK_FILE_KEY, None)
            if mock:
                use_mongomock_file(found.parent / str(mock))
            settings.setdefault("host", None)
            lp = LaunchPad.from_dict(settings)
    except StoreConfigError as exc:
        raise LaunchPadError(str(exc)) from None
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LaunchPadError(f"cannot read the LaunchPad file {found}: {mask_text(first)}"
                             ) from None
    if check:
        check_launchpad(lp, timeout_s=timeout_s)
    return lp


def check_launchpad(lp: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    """Ping a LaunchPad's server; raise :class:`LaunchPadError` (one line) if it fails."""
    if using_mongomock(lp):
        return
    from fireworks import LaunchPad

    settings = lp.to_dict()
    kwargs = dict(settings.get("mongoclient_kwargs") or {})
    kwargs["serverSelectionTimeoutMS"] = int(timeout_s * 1000)
    kwargs["connectTimeoutMS"] = int(timeout_s * 1000)
    settings["mongoclient_kwargs"] = kwargs
    settings["strm_lvl"] = "ERROR"
    probe = None
    try:
        probe = LaunchPad.from_dict(settings)
        probe.connection.admin.command("ping")
        probe.db.list_collection_names()  # needs authentication, unlike ping
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for cut in (" (configured timeouts", ", Timeout:", ", Topology Description"):
            reason = reason.split(cut)[0]
        raise LaunchPadError(
            f"cannot reach the LaunchPad at {launchpad_address(lp)} within {timeout_s:g} s "
            f"({type(exc).__name__}: {mask_text(reason, [lp.password or ''])}); check "
            "my_launchpad.yaml (host, port, credentials) and that MongoDB is reachable from here"
        ) from None
    finally:
        if probe is not None:
            probe.connection.close()


def close_launchpad(lp: Any) -> None:
    """Flush a mongomock-file LaunchPad to its file; close a real one's client.

    Idempotent: a second call does nothing (a stale copy must never be written
    over what another LaunchPad wrote in between).
    """
    if getattr(lp, "_bete_closed", False):
        return
    lp._bete_closed = True
    store = getattr(getattr(lp, "connection", None), "_store", None)
    if store is not None and hasattr(store, "_to_file") and getattr(store, "_filename", None):
        finalizer = getattr(store, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()  # a later garbage collection must not write stale data back
        store._to_file()
        return
    with contextlib.suppress(Exception):
        lp.connection.close()


def load_fworker(path: str | os.PathLike[str] | None = None) -> Any:
    """The FWorker a file describes (``./my_fworker.yaml``, FireWorks' lookup, or default)."""
    from fireworks import FWorker

    found = find_config_file(path, FWORKER_FILE, _fw_config().FWORKER_LOC)
    return FWorker.from_file(str(found)) if found is not None else FWorker()


def load_qadapter(path: str | os.PathLike[str] | None = None) -> Any:
    """The queue adapter a file describes (``./my_qadapter.yaml`` or FireWorks' lookup).

    Raises
    ------
    LaunchPadError
        When no queue adapter file can be found.
    """
    from fireworks.utilities.fw_serializers import load_object_from_file

    remember_fw_classes()
    found = find_config_file(path, QADAPTER_FILE, _fw_config().QUEUEADAPTER_LOC)
    if found is None:
        raise LaunchPadError("no queue adapter: give --qadapter FILE or put my_qadapter.yaml "
                             "in this directory (`bete config init DIR` writes one)")
    return load_object_from_file(str(found))
