"""``bete export``: the store's electron-phonon documents as a dataset folder (fast-v1 layout)."""

from __future__ import annotations

import argparse

from launchers.cli.common import (
    UserError,
    add_preset_argument,
    add_protocol_fingerprint_argument,
    open_store,
    progress,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bete export``."""
    p = sub.add_parser(
        "export", help="write the store's el-ph results as a dataset (fast-v1 JSON records)",
        description="Write completed, unstable and insulator task documents of one protocol "
        "as fast-v1-layout JSON records (one <id>.json each, id = the structure's source id), "
        "with their protocol identity, inputs and the code that computed them. "
        "`bete train --data OUT_DIR` then trains on the same rows as `--data STORE`.")
    p.add_argument("out_dir", metavar="OUT_DIR", help="dataset folder (created)")
    p.add_argument("--store", help="store directory or YAML spec (default: settings)")
    add_preset_argument(p, "only documents of this preset (fast, standard, accurate)",
                        default=None)
    add_protocol_fingerprint_argument(
        p, "protocol fingerprint (or prefix) to export; needed when the store holds several "
        "(`bete query` shows them)")
    p.add_argument("--format", choices=["fast-v1"], default="fast-v1",
                   help="record layout (fast-v1: shared/PROTOCOL-fast-v1.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, then print what was written and what was left out."""
    from stores.export import EXPORTED_STATUSES, export_records
    from stores.queries import iter_elph_documents

    criteria: dict = {"status": {"$in": list(EXPORTED_STATUSES)}}
    if args.preset:
        criteria["preset"] = args.preset
    store = open_store(args.store, write=False)
    try:
        docs = list(iter_elph_documents(store, criteria, load=True))
        summary = export_records(docs, args.out_dir,
                                 protocol_fingerprint=args.protocol_fingerprint)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    finally:
        store.close()
    for rid, why in sorted(summary.skipped.items()):
        progress(f"export: {rid} left out: {why}")
    print(f"protocol {summary.protocol_fingerprint} ({summary.label}): "
          f"{len(summary.written)} records written, {len(summary.unchanged)} unchanged, "
          f"{len(summary.skipped)} left out, in {args.out_dir}")
    return 0
