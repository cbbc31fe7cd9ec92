"""``bete train``, ``bete predict`` and ``bete evaluate``: the BETE-NET ensemble from the shell.

Examples
--------
Train 5 members on the packaged fast-v1 records, holding out 20 % (seeded)::

    bete train --data fast-v1 --variant cso --members 5 --out runs/cso --split train
    bete evaluate --model runs/cso --data fast-v1 --split test --format json --parity p.png
    bete predict POSCAR other.cif --model runs/cso

Put the trained ensemble into a store as well, then predict with it from there
(``store:MODEL_ID``; the id is printed by ``bete train --store`` and listed by
``bete model list``)::

    bete train --data fast-v1 --members 5 --out runs/cso --store ./mystore
    bete model list --store ./mystore
    bete predict Al.cif --model store:cso-0123456789ab-m5-a1b2c3 --store ./mystore

``--data`` is a folder of fast-v1 JSON records, a BETE-NET ``database.json``,
a store (directory or YAML spec), or ``fast-v1`` for the packaged records.
Each sub-command parses into a config dataclass and :func:`run` does the work,
so tests call ``run(cfg)`` in-process.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from betenet_model.features import NODE_FEATURES
from betenet_model.train_config import SCHEDULES, TrainConfig
from betenet_model.variants import (
    DEFAULT_VARIANT,
    VARIANTS,
    variants_help,
)
from launchers.cli.common import (
    UserError,
    add_format_argument,
    add_preset_argument,
    add_protocol_fingerprint_argument,
    format_rows,
    open_store,
    parse_network,
    progress,
    rounded,
)
from launchers.cli.train_progress import MemberBars
from stores.constants import DEFAULT_MU_STAR
from workflows.ml.budgets import BUDGETS
from workflows.ml.training_data import DataOptions


# --------------------------------------------------------------------------- configs
@dataclass
class TrainCommand:
    """Options of ``bete train``."""

    data: DataOptions
    out: str
    variant: str = DEFAULT_VARIANT
    members: int = 5
    seed: int = 0
    jobs: int = 1
    training: TrainConfig = field(default_factory=TrainConfig)
    """Schedule and optimiser of every member (its ``seed`` is set per member)."""
    progress_every: int = 10
    network: dict[str, Any] = field(default_factory=dict)
    store: str | None = None
    node_features: str = "onehot_mass"
    smoothing_window: int = 101
    budget: str = "paper"
    output: str = "bars"
    """``bars`` (a progress bar per member), ``lines`` (one line every ``progress_every``
    epochs, ``--verbose``) or ``quiet`` (only the summary)."""


@dataclass
class PredictCommand:
    """Options of ``bete predict``."""

    structures: list[str]
    model: str | None = None
    format: str = "table"
    spectra: bool = False
    mu_star: float = DEFAULT_MU_STAR
    store: str | None = None
    phonon_store: str | None = None


@dataclass
class EvaluateCommand:
    """Options of ``bete evaluate``."""

    model: str | None
    data: DataOptions
    format: str = "json"
    parity: str | None = None
    rows: bool = False
    held_out: bool = False
    out_of_bag: bool = False
    allow_overlap: bool = False
    mu_star: float = DEFAULT_MU_STAR
    store: str | None = None


@dataclass
class ModelListCommand:
    """Options of ``bete model list``."""

    store: str | None = None


# --------------------------------------------------------------------------- helpers
class EpochPrinter:
    """Per-epoch progress on stderr (picklable, so parallel members can use it)."""

    def __init__(self, members: int, every: int = 10) -> None:
        self.members = members
        self.every = max(1, every)
        self.stage: dict[int, int] = {}

    def __call__(self, member: int, epoch: int, train_loss: float, val_loss: float,
                 stage: int) -> None:
        """Print one line every ``every`` epochs and at each stage change."""
        changed = self.stage.get(member, 1) != stage
        self.stage[member] = stage
        if changed or epoch % self.every == 0 or epoch == 1:
            progress(f"member {member + 1}/{self.members} epoch {epoch} stage {stage} "
                     f"train_mse {train_loss:.4g} val_mse {val_loss:.4g}")


def canonical_command(cfg: TrainCommand) -> str:
    """The ``bete train`` command line that reproduces ``cfg``."""
    d = cfg.data
    parts = ["bete", "train", "--data", d.source]
    for more in d.more_sources:
        parts += ["--data", more]
    parts += ["--variant", cfg.variant,
             "--node-features", cfg.node_features, "--members", str(cfg.members),
             *(["--smoothing-window", str(cfg.smoothing_window)]
               if cfg.smoothing_window != 101 else []),
             "--out", cfg.out, "--seed", str(cfg.seed),
             "--schedule", cfg.training.schedule.replace("_", "-")]
    for name in TRAIN_CONFIG_OPTIONS:
        if name not in ("checkpoint_every", "device"):  # they do not change the result
            parts += [_flag(name), str(getattr(cfg.training, name))]
    if d.structures:
        parts += ["--structures", d.structures]
    if d.keep_unstable:
        parts.append("--keep-unstable")
    if d.split != "all":
        parts += ["--split", d.split]
        if d.split_files:
            parts += ["--split-files", *d.split_files]
        elif d.split_by == "element":
            parts += ["--split-by", "element", "--hold-out-element", str(d.hold_out_element)]
        else:
            parts += ["--test-fraction", str(d.test_fraction), "--split-seed", str(d.split_seed)]
            if d.split_by != "random":
                parts += ["--split-by", d.split_by]
    if cfg.training.device != "cpu":
        parts += ["--device", cfg.training.device]
    for key, value in cfg.network.items():
        parts += ["--network", f"{key}={json.dumps(value)}"]
    return shlex.join(parts)


# --------------------------------------------------------------------------- commands
def run_train(cfg: TrainCommand) -> dict[str, Any]:
    """Train an ensemble; returns its manifest."""
    from workflows.ml.train import train_from_data

    tcfg = cfg.training
    if cfg.members < 1 or cfg.jobs < 1:
        raise UserError("--members and --jobs must be at least 1")
    if cfg.store is not None:  # a bad --store fails now, not after the training
        open_store(cfg.store, write=True).close()
    start = time.perf_counter()
    metadata = {"command": canonical_command(cfg), "data_source": cfg.data.source,
                "split": asdict(cfg.data), "budget": cfg.budget}
    callback: MemberBars | EpochPrinter | None = None
    if cfg.output == "bars":
        callback = MemberBars(cfg.members, tcfg.max_epochs, tcfg.patience_stage3,
                              parallel=cfg.jobs > 1)
    elif cfg.output == "lines":
        callback = EpochPrinter(cfg.members, cfg.progress_every)
    try:
        ensemble = train_from_data(
            cfg.data, cfg.out, variant=cfg.variant, members=cfg.members, seed=cfg.seed,
            training=tcfg, network_options=cfg.network, jobs=cfg.jobs,
            callback=callback, metadata=metadata, node_features=cfg.node_features,
            smoothing_window=cfg.smoothing_window, say=progress)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc
    finally:
        if isinstance(callback, MemberBars):
            callback.close()
    m = ensemble.manifest.get("metrics", {})
    progress(f"done in {time.perf_counter() - start:.1f} s: {len(ensemble)} member(s), "
             f"mean out-of-bag MSE {rounded(m.get('oob_mse_mean'))}, written to {cfg.out}")
    if cfg.store is not None:
        model_id = put_model(cfg.out, cfg.store)
        progress(f"model id {model_id} (in the store; `bete predict --model store:{model_id}` "
                 "uses it, as do screen and evaluate)")
    return ensemble.manifest


def put_model(model_dir: str, store_spec: str | None) -> str:
    """Put an ensemble folder into the store ``store_spec``; returns the model id."""
    from stores.models import put_ensemble

    store = open_store(store_spec, write=True)
    try:
        return put_ensemble(store, model_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"cannot put {model_dir} into the store: {exc}") from exc
    finally:
        store.close()


def resolve_model(model: str | None, store_spec: str | None) -> str | None:
    """The folder of a ``--model`` value: ``store:MODEL_ID`` is fetched from the store.

    Anything else (a folder, or None for the shipped ensemble) is returned as given.
    ``store_spec`` (``--store``; None = the settings' store) is read only for
    ``store:`` values.
    """
    from stores.models import get_ensemble_dir, parse_model_ref

    try:
        model_id = parse_model_ref(model)
    except ValueError as exc:
        raise UserError(f"--model: {exc}") from exc
    if model_id is None:
        if model is not None and not Path(model).expanduser().exists():
            raise UserError(f"--model {model} does not exist; give an ensemble folder "
                            "(`bete train --out DIR` writes one) or store:MODEL_ID")
        return model
    store = open_store(store_spec, write=False)
    try:
        folder = get_ensemble_dir(store, model_id)
    except (OSError, ValueError) as exc:
        raise UserError(f"--model {model}: {exc}") from exc
    finally:
        store.close()
    progress(f"model {model_id} from the store, unpacked in {folder}")
    return str(folder)


def _load_model(path: str | None, store_spec: str | None = None) -> Any:
    from stores.models import STORE_PREFIX
    from workflows.ml.predict import load_ensemble

    if store_spec is not None and not str(path or "").startswith(STORE_PREFIX):
        progress("note: --store is read only for --model store:MODEL_ID")
    folder = resolve_model(path, store_spec)
    try:
        return load_ensemble(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"{exc}; train one with `bete train` or give --model DIR") from exc


def run_predict(cfg: PredictCommand) -> list[dict[str, Any]]:
    """Predict every structure file; returns the output rows."""
    from workflows.ml.predict import model_label, predict_files

    ensemble = _load_model(cfg.model, cfg.store)
    try:
        preds = predict_files(cfg.structures, ensemble, model=cfg.model,
                              phonon_store=cfg.phonon_store, mu_star=cfg.mu_star, say=progress)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc
    if preds and preds[0].calibrated:
        progress("± is the calibrated 1σ (member spread × the scale fitted out of bag, "
                 "ensemble.json → calibration)")
    label = model_label(cfg.model, ensemble)
    return [{**p.row(spectra=cfg.spectra), "model": label} for p in preds]


def _mlip_dos_of(structures: list[Any], ids: list[str], store_spec: str | None) -> list[Any]:
    """:func:`workflows.ml.predict.mlip_site_dos` with its errors as UserError."""
    from workflows.ml.predict import mlip_site_dos

    try:
        return mlip_site_dos(structures, ids, store_spec)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc


#: Resolution of each predicted quantity in the table (λ, ω in K, Tc in K).
TABLE_RESOLUTION = {"lambda": 0.001, "omega_log_K": 0.1, "omega_2_K": 0.1, "tc_K": 0.01}


def format_mean_std(mean: float, std: float, resolution: float) -> str:
    """``mean ± std`` rounded to the uncertainty (2 significant digits), never below ``resolution``.

    Examples
    --------
    >>> format_mean_std(1.09e-14, 2.4e-14, 0.01)
    '< 0.01'
    >>> format_mean_std(7.4312, 1.234, 0.01)
    '7.4 ± 1.2'
    >>> format_mean_std(0.41234, 0.0312, 0.001)
    '0.412 ± 0.031'
    """
    import math

    if abs(mean) < resolution and std < resolution:
        return f"< {resolution:g}"
    decimals = max(0, -math.floor(math.log10(resolution)))
    if std > 0:
        decimals = min(decimals, max(0, 1 - math.floor(math.log10(std))))
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def run_evaluate(cfg: EvaluateCommand) -> dict[str, Any]:
    """Score an ensemble on a data source; returns the metrics (rows under ``rows``)."""
    from betenet_model.pretrained import DEFAULT
    from workflows.ml.evaluate import evaluate_model

    ensemble = _load_model(cfg.model, cfg.store)
    try:
        found = evaluate_model(ensemble, cfg.data, held_out=cfg.held_out,
                               allow_overlap=cfg.allow_overlap, out_of_bag=cfg.out_of_bag,
                               parity=cfg.parity, mu_star=cfg.mu_star, say=progress)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from exc
    metrics = found.metrics
    metrics["model"] = str(cfg.model) if cfg.model else f"shipped:{DEFAULT}"
    metrics["data"] = cfg.data.source
    metrics["split"] = cfg.data.split
    metrics["rows_in_training_set"] = found.rows_in_training_set
    if cfg.rows:
        metrics["rows"] = found.rows
    return metrics


def run_model_list(cfg: ModelListCommand) -> list[dict[str, Any]]:
    """One row per model document of the store."""
    from stores.models import list_models

    store = open_store(cfg.store, write=False)
    try:
        docs = list_models(store)
    finally:
        store.close()
    rows = []
    for d in docs:
        metrics = d.get("metrics") or {}
        rows.append({"model_id": d.get("model_id"), "variant": d.get("variant"),
                     "n_members": d.get("n_members"),
                     "training_set_hash": str(d.get("training_set_hash", ""))[:12],
                     "oob_mse_mean": metrics.get("oob_mse_mean"),
                     "stored": "files" if d.get("blob_uuid") else f"folder {d.get('path')}",
                     "size_MB": round(sum(f.get("size_bytes") or 0
                                          for f in d.get("files") or []) / 1e6, 3),
                     "created_at": d.get("created_at"),
                     "training_query": d.get("training_query") or {}})
    return rows


def run(cfg: TrainCommand | PredictCommand | EvaluateCommand | ModelListCommand) -> Any:
    """Do what a parsed sub-command asks (in-process entry point)."""
    if isinstance(cfg, TrainCommand):
        return run_train(cfg)
    if isinstance(cfg, PredictCommand):
        return run_predict(cfg)
    if isinstance(cfg, EvaluateCommand):
        return run_evaluate(cfg)
    if isinstance(cfg, ModelListCommand):
        return run_model_list(cfg)
    raise TypeError(f"unknown command config {type(cfg).__name__}")


# --------------------------------------------------------------------------- argparse
def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="SOURCE", action="append",
                   help="fast-v1 JSON folder, jarvis-tc folder (records.jsonl: Tc-only rows), "
                        "database.json, store directory/YAML, 'fast-v1' or 'jarvis-tc' (the "
                        "packaged records); repeat to combine sources")
    p.add_argument("--structures", metavar="DIR",
                   help="CIF folder for database.json (structures/bete-net)")
    add_preset_argument(p, "store: preset of the task documents (default fast)")
    add_protocol_fingerprint_argument(
        p, "protocol fingerprint (or prefix) of the rows to use; needed when the source holds "
        "several (`bete query` shows them); rows of two are never mixed")
    p.add_argument("--keep-unstable", action="store_true",
                   help="keep dynamically unstable fast-v1 records (dropped by default)")
    p.add_argument("--split", choices=("all", "train", "test"), default="all",
                   help="use all rows or one side of a split (default all)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out fraction (0.2)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the split (0)")
    p.add_argument("--split-by", choices=("random", "chemsys", "element"), default="random",
                   help="random rows (default); whole chemical systems (chemsys); or leave one "
                        "element out (element, with --hold-out-element)")
    p.add_argument("--hold-out-element", metavar="SYMBOL",
                   help="the element whose rows form the test side (--split-by element)")
    p.add_argument("--split-files", nargs=2, metavar=("TRAIN_IDX", "TEST_IDX"),
                   help="the paper's index lists instead of a seeded split")
    p.add_argument("--phonon-store", metavar="STORE", help=PHONON_STORE_HELP)


def node_features_name(value: str) -> str:
    """An argparse ``type``: the canonical node-feature name (``-`` read as ``_``)."""
    from betenet_model.features import check_node_features

    try:
        return check_node_features(value)
    except ValueError:
        return value  # argparse's choices message lists the names


def _data_options(args: argparse.Namespace) -> DataOptions:
    return DataOptions(source=args.data[0], more_sources=tuple(args.data[1:]),
                       split_by=args.split_by, hold_out_element=args.hold_out_element,
                       structures=args.structures, preset=args.preset,
                       keep_unstable=args.keep_unstable, split=args.split,
                       test_fraction=args.test_fraction, split_seed=args.split_seed,
                       split_files=tuple(args.split_files) if args.split_files else None,
                       protocol_fingerprint=args.protocol_fingerprint,
                       phonon_store=args.phonon_store)


def budget_values(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """:class:`TrainConfig` values and network options: flags > ``--budget`` > defaults."""
    from workflows.ml.budgets import get_budget

    try:
        chosen = get_budget(args.budget)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    defaults = TrainConfig()
    values = {}
    for name in TRAIN_CONFIG_OPTIONS:
        given = getattr(args, name)
        values[name] = (given if given is not None
                        else chosen.training.get(name, getattr(defaults, name)))
    return values, {**chosen.network, **parse_network(args.network)}


#: ``bete train`` options that set a :class:`TrainConfig` field (field → help); their type
#: and default come from the dataclass, a ``--budget`` sets those not given.
TRAIN_CONFIG_OPTIONS = {
    "lr": "AdamW learning rate",
    "weight_decay": "AdamW weight decay",
    "patience": "stage-1 (or plain early-stopping) patience",
    "peak_window": "stage 2 ends after this many consecutive epochs below its peak",
    "patience_stage3": "stage-3 patience",
    "max_epochs": "hard cap per member",
    "checkpoint_every": "epochs between checkpoints",
    "tc_loss_weight": "weight of the Tc term for rows with a Tc label but no α²F "
                      "(loss = α²F MSE + weight × mean [ln(1+Tc_pred/K) − ln(1+Tc/K)]²)",
    "mu_star": "μ* of the Allen–Dynes Tc in that term",
    "moment_loss_weight": "weight of a loss on λ and ln ω_log of predicted vs true α²F "
                          "(+ weight × mean [(Δλ)² + (Δ ln ω_log)²]; 0 = α²F MSE only)",
    "tc_head_weight": "weight of the loss of the direct ln(1+Tc) head (--network "
                      "tc_head=true) on every row: Tc labels, Allen–Dynes Tc of α²F rows",
    "device": "torch device for training, e.g. cuda (weights are saved for the CPU)",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_config_options(p: argparse.ArgumentParser) -> None:
    """One option per :data:`TRAIN_CONFIG_OPTIONS` field, typed and defaulted by TrainConfig."""
    defaults = TrainConfig()
    for name, text in TRAIN_CONFIG_OPTIONS.items():
        default = getattr(defaults, name)
        budgets = [f"{b.name} {b.training[name]}" for b in BUDGETS.values()
                   if name in b.training]
        shown = f"default {default}" + (f"; budget {', '.join(budgets)}" if budgets else "")
        p.add_argument(_flag(name), type=type(default), help=f"{text} ({shown})")


def _cmd_train(args: argparse.Namespace) -> int:
    if args.quiet and args.epoch_lines:
        raise UserError("--quiet and --verbose exclude each other")
    values, network = budget_values(args)
    if args.quiet:  # library INFO records too (``main`` restores the level afterwards)
        logging.getLogger().setLevel(logging.WARNING)
    output = "quiet" if args.quiet else "lines" if args.epoch_lines or args.verbose else "bars"
    try:
        training = TrainConfig(schedule=args.schedule.replace("-", "_"), **values)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    cfg = TrainCommand(
        data=_data_options(args), out=args.out, variant=args.variant, members=args.members,
        seed=args.seed, jobs=args.jobs, training=training,
        progress_every=args.progress_every, network=network, store=args.store,
        node_features=args.node_features, smoothing_window=args.smoothing_window,
        budget=args.budget, output=output)
    run(cfg)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    cfg = PredictCommand(structures=args.structures, model=args.model, format=args.format,
                         spectra=args.spectra, mu_star=args.mu_star, store=args.store,
                         phonon_store=args.phonon_store)
    rows = run(cfg)
    if cfg.format == "table":
        cols = ["id", "formula"]
        table = []
        keys = ("lambda", "omega_log_K", "omega_2_K", "tc_K")
        for r in rows:
            t = {"id": r["id"], "formula": r["formula"], "warnings": r["warnings"]}
            t.update({key: format_mean_std(r[key], r[f"{key}_std"], TABLE_RESOLUTION[key])
                      for key in keys})
            table.append(t)
        print(format_rows(table, "table", columns=[*cols, *keys, "warnings"]))
    else:
        print(format_rows(rows, cfg.format))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = EvaluateCommand(model=args.model, data=_data_options(args), format=args.format,
                          parity=args.parity, rows=args.rows, held_out=args.held_out,
                          out_of_bag=args.out_of_bag, allow_overlap=args.allow_overlap,
                          mu_star=args.mu_star,
                          store=args.store)
    metrics = run(cfg)
    if cfg.format == "json":
        print(json.dumps(metrics, indent=1))
    else:
        flat = [{"metric": k, "value": v} for k, v in metrics.items() if k != "rows"]
        print(format_rows(flat, "table"))
    return 0


def _cmd_model_list(args: argparse.Namespace) -> int:
    rows = run(ModelListCommand(store=args.store))
    if args.format == "json":
        print(format_rows(rows, "json"))
    else:
        if not rows:
            progress("no model in the store; put one with `bete train ... --store STORE`")
        print(format_rows(rows, "table", ["model_id", "variant", "n_members",
                                          "training_set_hash", "oob_mse_mean", "size_MB",
                                          "created_at", "stored"]))
    return 0


MODEL_HELP = ("ensemble folder, or store:MODEL_ID for an ensemble in --store "
              "(default: the shipped ensemble)")
STORE_HELP = ("store of a --model store:MODEL_ID: directory, mongodb:// URI or YAML spec "
              "(default: settings)")


PHONON_STORE_HELP = ("store of the MLIP documents a model reads: phonon DOS (mpd, the dos head) "
                     "and atom features (sevennet-* node features); reused, missing ones are "
                     "computed and added (default: settings)")


def register(subparsers: Any) -> None:
    """Add ``train``, ``predict``, ``evaluate`` and ``model list``."""
    p = subparsers.add_parser(
        "train", help="train a BETE-NET bootstrap ensemble",
        description="Train a bootstrap ensemble (tempered schedule) and write it to --out. "
                    "Rerunning the same command resumes unfinished members.")
    _add_data_args(p)
    p.add_argument("--variant", choices=tuple(VARIANTS), default=DEFAULT_VARIANT,
                   help=f"model inputs: {variants_help()}")
    p.add_argument("--node-features", choices=NODE_FEATURES, type=node_features_name,
                   default=NODE_FEATURES[0],
                   help="species encoding (- is read as _): the paper's one-hot × mass "
                        "(default); standardised "
                        "element descriptors (group, row, block, electronegativity, radii, "
                        "valence electrons, mass, ...), which give elements unseen in training "
                        "a meaningful input; or descriptors + the per-atom features of a "
                        "universal potential's last interaction layer (sevennet-l3i5, ...; "
                        "computed once per structure and kept in --phonon-store)")
    p.add_argument("--smoothing-window", type=int, default=101, metavar="POINTS",
                   help="Savitzky–Golay window (points of 0.1 meV) putting spectra on the "
                        "model grid: 101 (10 meV, the paper's, default) or e.g. 31 (3 meV; "
                        "moves fast-v1 λ by 0.01 instead of 0.06)")
    p.add_argument("--members", type=int, default=5, help="ensemble size (5)")
    p.add_argument("--out", required=True, metavar="DIR", help="ensemble folder")
    p.add_argument("--seed", type=int, default=0,
                   help="ensemble seed (member i: bootstrap resample and weights from seed, i)")
    p.add_argument("--jobs", type=int, default=1, help="members trained in parallel processes")
    p.add_argument("--schedule", choices=tuple(x.replace("_", "-") for x in SCHEDULES),
                   default=TrainConfig().schedule.replace("_", "-"),
                   help="the paper's three-stage tempering, or plain early stopping")
    p.add_argument("--budget", choices=tuple(BUDGETS), default="paper",
                   help="schedule and network size: "
                        + "; ".join(f"{b.name}: {b.description}" for b in BUDGETS.values())
                        + ". Options below override it")
    add_train_config_options(p)
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("--quiet", action="store_true",
                      help="no progress bars; only the start and summary lines")
    talk.add_argument("--verbose", dest="epoch_lines", action="store_true",
                      help="one progress line every --progress-every epochs instead of bars")
    p.add_argument("--progress-every", type=int, default=10,
                   help="epochs between --verbose progress lines")
    p.add_argument("--network", action="append", metavar="KEY=VALUE",
                   help="NetworkConfig override, e.g. --network mul=8 (repeatable)")
    p.add_argument("--store", metavar="STORE",
                   help="also put the finished ensemble into this store (directory, "
                        "mongodb:// URI or YAML spec) and print its model id; --out stays "
                        "the folder members train and resume in")
    p.set_defaults(func=_cmd_train)

    p = subparsers.add_parser("predict", help="predict α²F, λ, ω_log, ω₂, Tc with ± σ",
                              description="Predict with an ensemble (default: the shipped "
                                          "fast-v1 CSO ensemble).")
    p.add_argument("structures", nargs="+", metavar="STRUCTURE",
                   help="structure files (CIF, POSCAR, pymatgen JSON)")
    p.add_argument("--model", metavar="DIR|store:ID", help=MODEL_HELP)
    p.add_argument("--store", metavar="STORE", help=STORE_HELP)
    add_format_argument(p)
    p.add_argument("--spectra", action="store_true", help="include the mean α²F and its σ")
    p.add_argument("--phonon-store", metavar="STORE", help=PHONON_STORE_HELP)
    p.add_argument("--mu-star", type=float, default=DEFAULT_MU_STAR,
                   help=f"μ* of the Tc ({DEFAULT_MU_STAR})")
    p.set_defaults(func=_cmd_predict)

    p = subparsers.add_parser("evaluate", help="score an ensemble against labelled data",
                              description="Score every usable row of --data; prints one JSON "
                                          "object of metrics next to the mean-spectrum baseline.")
    p.add_argument("--model", metavar="DIR|store:ID", help=MODEL_HELP)
    p.add_argument("--store", metavar="STORE", help=STORE_HELP)
    _add_data_args(p)
    add_format_argument(p, ("json", "table"), default="json")
    p.add_argument("--parity", metavar="PNG", help="write a parity plot")
    p.add_argument("--rows", action="store_true", help="include per-row results")
    p.add_argument("--held-out", action="store_true",
                   help="score only rows the ensemble was not trained on")
    p.add_argument("--out-of-bag", action="store_true",
                   help="also score training rows with only the members that left them out")
    p.add_argument("--allow-overlap", action="store_true",
                   help="score rows of the model's training set anyway (in-sample; by default "
                        "such rows are refused)")
    p.add_argument("--mu-star", type=float, default=DEFAULT_MU_STAR,
                   help=f"μ* of the Tc ({DEFAULT_MU_STAR})")
    p.set_defaults(func=_cmd_evaluate)

    p = subparsers.add_parser("model", help="ensembles in a store: list",
                              description="Ensembles put into a store by `bete train --store`; "
                                          "load one with --model store:MODEL_ID.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    q = actions.add_parser("list", help="one row per stored model")
    q.add_argument("--store", metavar="STORE", help="directory, mongodb:// URI or YAML spec "
                   "(default: settings)")
    add_format_argument(q, ("table", "json"))
    q.set_defaults(func=_cmd_model_list)

