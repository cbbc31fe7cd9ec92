"""Runtime patches of FireWorks internals, each for one known defect or trap.

- :func:`patch_mongoclient`: an already-imported FireWorks picks mongomock only if
  ``MONGOMOCK_SERVERSTORE_FILE`` was set before its first import;
- :func:`remember_fw_classes`: FireWorks' ``load_object`` otherwise imports every module of
  its USER_PACKAGES (its own test modules included) to find ``CommonAdapter``;
- :func:`fix_offline_zopen`: FireWorks 2.1.4's offline mode calls ``zopen(path)``, which
  monty >= 2025 refuses (``mode`` became required).
"""

from __future__ import annotations

import os
from typing import Any


def mongoclient_class() -> Any:
    """The client class FireWorks uses now (honours ``MONGOMOCK_SERVERSTORE_FILE``)."""
    if os.environ.get("MONGOMOCK_SERVERSTORE_FILE"):
        import mongomock_persistence

        return mongomock_persistence.MongoClient
    import pymongo

    return pymongo.MongoClient


def patch_mongoclient() -> None:
    """Make an already-imported FireWorks use the client its settings ask for now.

    ``fireworks.fw_config`` picks mongomock only if ``MONGOMOCK_SERVERSTORE_FILE``
    was set before FireWorks was first imported; setting it later (tests, a
    demo shell) would silently talk to a real server on localhost.
    """
    from fireworks.core import launchpad as lp_module

    client = mongoclient_class()
    if lp_module.MongoClient is not client:
        if os.environ.get("MONGOMOCK_SERVERSTORE_FILE"):
            import mongomock.gridfs

            mongomock.gridfs.enable_gridfs_integration()
        lp_module.MongoClient = client


def remember_fw_classes(*objects: Any) -> None:
    """Tell FireWorks where its queue adapter classes live.

    ``load_object`` otherwise searches (and imports) every module of its
    USER_PACKAGES, FireWorks' own test modules included, the first time it
    meets ``_fw_name: CommonAdapter``.
    """
    from fireworks.utilities import fw_serializers

    known = {"CommonAdapter": "fireworks.user_objects.queue_adapters.common_adapter",
             "PBSAdapterNEWT": "fireworks.user_objects.queue_adapters.pbs_newt_adapter"}
    for obj in objects:
        known[getattr(obj, "_fw_name", type(obj).__name__)] = type(obj).__module__
    for name, module in known.items():
        fw_serializers.SAVED_FW_MODULES.setdefault(name, module)


def fix_offline_zopen() -> None:
    """Let FireWorks' offline mode run with a monty whose ``zopen`` needs a mode.

    FireWorks 2.1.4's ``Rocket`` reads ``FW_offline.json`` with ``zopen(path)``;
    monty >= 2025 made ``mode`` a required argument, so every offline launch
    fails with ``TypeError: zopen() missing 1 required positional argument``.
    The wrapper supplies FireWorks' intended default (text mode).
    """
    import inspect

    from fireworks.core import rocket

    current = rocket.zopen
    if getattr(current, "_bete_default_mode", False):
        return
    if inspect.signature(current).parameters["mode"].default is not inspect.Parameter.empty:
        return

    def zopen(filename: Any, mode: str = "rt", **kwargs: Any) -> Any:
        if "t" in mode:
            kwargs.setdefault("encoding", "utf-8")
        return current(filename, mode, **kwargs)

    zopen._bete_default_mode = True  # type: ignore[attr-defined]
    rocket.zopen = zopen
