"""Training and evaluation rows from ``--data`` sources: read, one protocol, split, MLIP DOS.

The one function :func:`load_training_data` is what ``bete train`` and ``bete evaluate``
(and a script) call to turn :class:`DataOptions` into :class:`stores.datasets.TrainingRecord`
rows: each source read (a fast-v1 or jarvis-tc folder, a BETE-NET ``database.json``, a store,
or the packaged ``fast-v1`` / ``jarvis-tc`` copies), the α²F rows of one protocol fingerprint
kept, the chosen side of a split taken, and the MLIP site DOS attached for the ``mpd`` variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from betenet_model.variants import DEFAULT_VARIANT, SITE_DOS_MLIP, get_variant

if TYPE_CHECKING:  # the CLI imports this module at start: stores.datasets loads when used
    from stores.datasets import TrainingRecord

PACKAGED_DATA = "fast-v1"
PACKAGED_JARVIS = "jarvis-tc"


@dataclass
class DataOptions:
    """Where rows come from and which of them to use."""

    source: str
    structures: str | None = None
    preset: str | None = "fast"
    keep_unstable: bool = False
    split: str = "all"
    test_fraction: float = 0.2
    split_seed: int = 0
    split_files: tuple[str, str] | None = None
    more_sources: tuple[str, ...] = ()
    """Further ``--data`` values whose rows are added (e.g. Tc-only jarvis-tc rows)."""
    split_by: str = "random"
    hold_out_element: str | None = None
    protocol_fingerprint: str | None = None
    phonon_store: str | None = None
    """Store of the MLIP phonon documents the ``mpd`` variant reads and adds (None = settings)."""


def _quiet(_message: str) -> None:
    """A ``say`` that says nothing."""


def load_training_data(opts: DataOptions, variant: str = DEFAULT_VARIANT,
                       say: Callable[[str], None] = _quiet) -> list[TrainingRecord]:
    """Rows of ``opts``' sources after the chosen split, with their MLIP site DOS for ``mpd``.

    Raises
    ------
    ValueError
        A source cannot be read, a row id occurs in two sources, the rows hold several
        protocols and none is chosen, or the chosen side of the split is empty (the message
        names the source and the fix).
    """
    records = read_sources(opts, variant, say)
    chosen = choose_rows(records, opts, say)
    if get_variant(variant).site_dos == SITE_DOS_MLIP:
        return with_mlip_dos(chosen, opts.phonon_store, say)
    return chosen


def read_sources(opts: DataOptions, variant: str, say: Callable[[str], None]
                 ) -> list[TrainingRecord]:
    """Every row of ``opts.source`` and ``opts.more_sources``; row ids must not repeat."""
    records: list[TrainingRecord] = []
    for source in (opts.source, *opts.more_sources):
        try:
            rows = read_source(source, opts, variant, say)
        except (ValueError, OSError, KeyError) as exc:
            raise ValueError(f"cannot read training data from {source}: {exc}") from exc
        n_tc = sum(1 for r in rows if not r.has_spectrum)
        say(f"data: {len(rows)} rows from {source}"
            + (f" ({n_tc} with a Tc label only)" if n_tc else ""))
        records += rows
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"row ids {repeated[:5]} occur in more than one --data source; "
                         "give each source once")
    return records


def read_source(source: str, opts: DataOptions, variant: str, say: Callable[[str], None]
                ) -> list[TrainingRecord]:
    """The rows of one ``--data`` value (the packaged names first, then a path or store)."""
    from stores.datasets import (
        SITE_DOS_FULL,
        SITE_DOS_SOURCES,
        load_fast_v1,
        load_records,
        packaged_fast_v1_dir,
    )
    from stores.jarvis_tc import packaged_jarvis_tc_dir

    if source == PACKAGED_DATA and not Path(source).exists():
        say(f"data: packaged fast-v1 records ({packaged_fast_v1_dir()})")
        return load_fast_v1(None, drop_unstable=not opts.keep_unstable, report=say)
    if source == PACKAGED_JARVIS and not Path(source).exists():
        say(f"data: packaged jarvis-tc rows ({packaged_jarvis_tc_dir()})")
        return load_records(packaged_jarvis_tc_dir(), report=say)
    dos_source = get_variant(variant).site_dos
    return load_records(source, structures_dir=opts.structures, preset=opts.preset,
                        drop_unstable=not opts.keep_unstable,
                        site_dos=dos_source if dos_source in SITE_DOS_SOURCES else SITE_DOS_FULL,
                        report=say, protocol_fingerprint=opts.protocol_fingerprint)


def choose_rows(records: Sequence[TrainingRecord], opts: DataOptions,
                say: Callable[[str], None]) -> list[TrainingRecord]:
    """The α²F rows of one protocol (Tc-only rows all kept), then ``opts.split``'s side."""
    from stores.datasets import grouped_split, select_protocol, split_by_index_files

    try:
        spectra = select_protocol([r for r in records if r.has_spectrum],
                                  opts.protocol_fingerprint, "the --data rows with α²F")
        if spectra:
            say(f"data: {len(spectra)} α²F rows of protocol "
                f"{spectra[0].protocol_fingerprint or 'unknown'} ({spectra[0].protocol_label})")
        keep = {id(r) for r in spectra}
        records = [r for r in records if not r.has_spectrum or id(r) in keep]
        if opts.split == "all":
            return records
        if opts.split_files:
            train, test = split_by_index_files(records, *opts.split_files)
        else:
            train, test = grouped_split(records, opts.split_by, opts.test_fraction,
                                        opts.split_seed, opts.hold_out_element)
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(f"cannot use the data of {opts.source}: {exc}") from exc
    chosen = train if opts.split == "train" else test
    if not chosen:
        raise ValueError(f"the {opts.split} split of {opts.source} is empty; change "
                         "--test-fraction or the split files")
    return chosen


def with_mlip_dos(records: list[TrainingRecord], store_spec: str | None,
                  say: Callable[[str], None]) -> list[TrainingRecord]:
    """Records carrying their MLIP site DOS (mpd), documents reused from or added to the store."""
    from workflows.ml.mlip_dos import with_mlip_site_dos
    from workflows.ml.mlip_inputs import open_mlip_store

    store = open_mlip_store(store_spec)
    try:
        say(f"mpd: MLIP phonon DOS of {len(records)} rows (stored documents reused, "
            "missing ones computed)")
        return with_mlip_site_dos(records, store, say=say)
    finally:
        store.close()
