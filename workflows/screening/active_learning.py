"""Active-learning rounds: train → screen → verify (DFPT) → ingest, resumable.

One round (:func:`run_round`) is one function per phase, recorded as an
:class:`~stores.schemas.ActiveLearningRound` document written twice: with its acquisitions
before any DFPT, and with its results at the end.  An interrupted round resumes where it
stopped:

1. **model** (:func:`model_phase`) — round 1 uses the given ensemble (default the shipped
   one; trained when absent); later rounds (:func:`retrain`) train on the initial data plus
   every completed, dynamically stable task document of the verification protocol in the
   store (:func:`round_training_rows`).  The ensemble folder is keyed by the training-set
   hash and the training options (``<models>/cso-<key>``), so a finished ensemble is never
   retrained and an interrupted one resumes its members.
2. **screen and verify** (:func:`screen_verify_phase`) — the workflow ``bete screen`` runs
   too (:func:`workflows.screening.screen_verify.screen_and_verify`): candidates are read,
   checked and de-duplicated against each other and the store, predicted in chunks and
   ranked; the top-k are recorded in the round document *before* any DFPT starts; each runs
   through the DFPT el-ph flow (:func:`workflows.qe.local.run_elph`, which returns a stored
   result instead of recomputing it, so a resumed round computes nothing twice) or is
   submitted; its screening document gets the computed λ, ω_log, Tc next to the predicted
   ones.  Dynamically unstable results are recorded as such.
3. **ingest** (:func:`ingest_phase`) — the task documents are in the store, so the next
   round's training set contains them; the round's metrics are written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from betenet_model.variants import DEFAULT_VARIANT, get_variant
from stores import records as rec
from stores.models import model_document
from stores.schemas import ActiveLearningRound
from workflows.common.physics import HIT_TC_K
from workflows.ml.mlip_dos import uses_mlip_dos
from workflows.mlip.potentials import DEFAULT_POTENTIAL
from workflows.screening.flows import ScreeningFlowMaker, model_manifest
from workflows.screening.prescreen import DEFAULT_PRESCREEN_THRESHOLD_MEV, StabilityPrescreen
from workflows.screening.screen_verify import (
    ScreenRequest,
    Submit,
    Verification,
    screen_and_verify,
)

logger = logging.getLogger(__name__)

Say = Callable[[str], None]

@dataclass
class ActiveLearningConfig:
    """Options of an active-learning campaign (``bete al run``).

    Attributes
    ----------
    candidates : list of str
        Candidate sources (see :func:`workflows.screening.candidates.read_candidates`).
    rounds, top_k : int
        Rounds to run (in total, counting finished ones) and DFPT verifications per round.
    preset : str
        DFPT preset of the verification (``fast`` ...); also the preset of the store
        documents used for training (of which only the verification's protocol is kept).
    model : str, optional
        Ensemble folder for round 1 (default: the shipped ensemble; trained when absent).
    overrides : dict
        Preset overrides of the DFPT flow.
    pseudos : str, optional
        Pseudopotential family (default: the settings, else Debian's LDA files).
    acquisition, kappa, threshold_K, max_per_chemsys, chunk_size
        Ranking (see :class:`ScreeningFlowMaker`).
    campaign : str
        Campaign name (rounds of different campaigns live side by side in one store).
    initial_data : str, optional
        Initial training data (fast-v1 folder, database.json, store); default the
        packaged fast-v1 records.
    members, max_epochs, seed, schedule, network
        Training of the retrained ensembles (tiny by default: this is a loop, not a paper
        model).
    models_dir : str, optional
        Where ensembles are written (default ``<store>/models`` for a directory store,
        else ``~/.bete/models``).
    max_atoms : int, optional
        Primitive-cell limit of candidates (default: the setting).
    scratch_dir : str, optional
        DFPT calculation directories (default: the setting).
    prescreen, prescreen_potential, prescreen_threshold_meV
        MLIP stability pre-screen of the acquired candidates
        (:mod:`workflows.screening.prescreen`): on by default.
    """

    candidates: list[str]
    rounds: int = 1
    top_k: int = 2
    preset: str = "fast"
    model: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    pseudos: str | None = None
    acquisition: str = "ucb"
    kappa: float = 1.0
    threshold_K: float = HIT_TC_K
    max_per_chemsys: int | None = None
    chunk_size: int = 500
    campaign: str = "default"
    initial_data: str | None = None
    members: int = 3
    max_epochs: int = 300
    seed: int = 0
    schedule: str = "tempered"
    network: dict[str, Any] = field(default_factory=dict)
    models_dir: str | None = None
    max_atoms: int | None = None
    scratch_dir: str | None = None
    prescreen: bool = True
    prescreen_potential: str = DEFAULT_POTENTIAL
    prescreen_threshold_meV: float = DEFAULT_PRESCREEN_THRESHOLD_MEV  # noqa: N815

    def __post_init__(self) -> None:
        if int(self.rounds) < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if int(self.top_k) < 1:
            raise ValueError(f"top-k must be >= 1, got {self.top_k}")
        if not self.candidates:
            raise ValueError("no candidate source given")


# --------------------------------------------------------------------------- helpers
def verification(config: ActiveLearningConfig) -> Verification:
    """How the campaign verifies: DFPT preset, overrides, family, limits, pre-screen."""
    return Verification(config.preset, dict(config.overrides), config.pseudos,
                        config.max_atoms, config.scratch_dir,
                        StabilityPrescreen(config.prescreen, config.prescreen_potential,
                                           config.prescreen_threshold_meV))


def default_models_dir(store_spec: str | None) -> Path:
    """``<store dir>/models`` for a directory store, else ``~/.bete/models``."""
    if store_spec and Path(store_spec).expanduser().is_dir():
        return Path(store_spec).expanduser().resolve() / "models"
    return Path("~/.bete/models").expanduser()


def initial_records(config: ActiveLearningConfig) -> list[Any]:
    """The initial training records (default: the packaged fast-v1 records).

    A source of several protocols gives the rows of the verification protocol (the
    only ones a round trains on); none of it is an error listing what the source holds.
    """
    from stores.datasets import MixedProtocolsError, load_fast_v1, load_records

    if config.initial_data in (None, "fast-v1"):
        return load_fast_v1(None)
    try:
        return load_records(config.initial_data, preset=config.preset)
    except MixedProtocolsError as mixed:
        fingerprint = verification_identity(config).fingerprint()
        if fingerprint not in mixed.groups:
            raise ValueError(f"the initial data {config.initial_data} holds no rows of the "
                             f"verification protocol {fingerprint} ({len(mixed.groups)} other "
                             "protocols); give initial data of that protocol, or verify with "
                             "theirs (--preset, --pseudos)") from None
        return list(mixed.groups[fingerprint])


def store_records(store: Any, preset: str) -> list[Any]:
    """Completed, dynamically stable task documents of ``preset`` as training records."""
    from stores.datasets import elph_task_criteria, task_document_record
    from stores.queries import iter_elph_documents

    docs = iter_elph_documents(store, elph_task_criteria(preset), load=True)
    return [task_document_record(d, source=f"store:{d.get('_job_uuid', '')}") for d in docs]


MIN_TRAINING_ROWS = 4
"""Fewer rows of the verification protocol than this: the round keeps the previous model."""


def verification_identity(config: ActiveLearningConfig) -> Any:
    """The protocol identity (:class:`stores.protocol.ProtocolIdentity`) DFPT verifies with."""
    return verification(config).maker().protocol_identity()


def protocol_notice(config: ActiveLearningConfig, model_fingerprint: str | None,
                    model_label: str) -> str | None:
    """What it means when the verification protocol is not the one the model learnt from.

    Returns None when both fingerprints agree.
    """
    identity = verification_identity(config)
    if model_fingerprint == identity.fingerprint():
        return None
    learnt = model_label.split(",")[0]
    return (f"the model learnt from {learnt} ({model_fingerprint or 'unknown'}), DFPT verifies "
            f"with {identity.label().split(',')[0]} ({identity.fingerprint()}): the model's "
            "error includes the pseudopotentials' difference, later rounds train on "
            f"{identity.fingerprint()} rows only, never on a mix (docs/"
            "pseudopotentials-and-presets.md)")


def training_records(config: ActiveLearningConfig, store: Any,
                     say: Say | None = None) -> list[Any]:
    """Initial records plus the store's verified documents, of the verification protocol only.

    Rows of any other protocol fingerprint (e.g. the packaged fast-v1 records when
    DFPT verifies with Debian's LDA files) are left out, and ``say`` tells so.
    """
    say = say or (lambda _m: None)
    target = verification_identity(config)
    fingerprint = target.fingerprint()
    rows = []
    seen: set[str] = set()
    left_out: dict[str, int] = {}
    for r in [*initial_records(config), *store_records(store, config.preset)]:
        if r.protocol_fingerprint != fingerprint:
            key = f"{r.protocol_fingerprint or 'unknown'} ({r.protocol_label})"
            left_out[key] = left_out.get(key, 0) + 1
            continue
        if r.id in seen:
            r.id = f"{r.id}@{r.source}"     # source = store:<job uuid>, unique
        if r.id in seen:
            continue
        seen.add(r.id)
        rows.append(r)
    say(f"training rows: {len(rows)} of the verification protocol {fingerprint} "
        f"({target.label()})" + ("; left out, never mixed in: " + "; ".join(
            f"{n} of {k}" for k, n in left_out.items()) if left_out else ""))
    return rows


FOLLOWED_TRAINING_KEYS = ("lr", "weight_decay", "moment_loss_weight", "tc_loss_weight",
                          "mu_star", "tc_head_weight")
"""Training options a retrained ensemble takes from the model it follows."""


def training_settings(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """How an ensemble was built: its *training settings*, read from its manifest.

    Variant, node features, network and loss options (``ensemble.json``, any version).
    Later rounds train with the settings of the previous round's model (round 1: the given
    or shipped ensemble), so a descriptor-input, anchored-head model is followed by one of
    the same kind, not by the paper's one-hot default.  Members, epochs, seed and schedule
    stay the loop's own (``--members``/``--max-epochs``), and ``--network`` overrides.
    ``None`` (no manifest): the defaults of ``bete train``.
    """
    if not manifest:
        return {"variant": DEFAULT_VARIANT, "node_features": "onehot_mass",
                "network": {}, "training": {}}
    config = manifest.get("config") or {}
    network = {k: v for k, v in (config.get("network") or {}).items()
               if k != "input_dim"}          # follows from variant and features
    training = config.get("training") or {}
    settings = {"variant": manifest.get("variant") or DEFAULT_VARIANT,
                "node_features": manifest.get("node_features") or "onehot_mass",
                "network": network,
                "training": {k: training[k] for k in FOLLOWED_TRAINING_KEYS if k in training}}
    if config.get("smoothing_window", 101) != 101:
        settings["smoothing_window"] = int(config["smoothing_window"])
    return settings


def tc_only_rows(manifest: dict[str, Any] | None, say: Say | None = None) -> list[Any]:
    """The Tc-only (jarvis-tc) rows a model was trained on, from the packaged jarvis-tc copy.

    A retrained ensemble keeps them, so round 2 does not learn from fewer rows than the model
    it follows (the shipped default saw 397 of them). Ids of the manifest that are neither
    there nor spectrum rows are named (they cannot be kept).
    """
    from stores.jarvis_tc import rows_by_id

    training = (manifest or {}).get("training_set") or {}
    if not training.get("n_tc_only"):
        return []
    rows, missing = rows_by_id(training.get("ids") or [])
    say = say or (lambda _m: None)
    say(f"training rows: + {len(rows)} Tc-only jarvis-tc rows of the previous model (packaged "
        "copy; a related protocol that teaches the ranking)")
    if len(rows) < int(training["n_tc_only"]):
        say(f"training rows: {int(training['n_tc_only']) - len(rows)} Tc-only rows of the "
            "previous model are not in the packaged jarvis-tc data and cannot be kept")
    return rows


def describe_training_settings(settings: dict[str, Any]) -> str:
    """One line: variant, node features and what differs from the network defaults."""
    from betenet_model.network_config import NetworkConfig

    defaults = NetworkConfig().to_dict()
    changed = [f"{k}={v}" for k, v in sorted(settings["network"].items())
               if defaults.get(k) != v]
    losses = [f"{k}={v}" for k, v in sorted(settings["training"].items())]
    return ", ".join([settings["variant"], settings["node_features"], *changed, *losses])


def _train_options(config: ActiveLearningConfig, settings: dict[str, Any]) -> dict[str, Any]:
    opts = {"members": int(config.members), "max_epochs": int(config.max_epochs),
            "seed": int(config.seed), "schedule": config.schedule,
            "variant": settings["variant"], "node_features": settings["node_features"],
            "training": dict(sorted(settings["training"].items())),
            "network": dict(sorted({**settings["network"], **config.network}.items()))}
    if "smoothing_window" in settings:          # keys of older settings stay as they were
        opts["smoothing_window"] = settings["smoothing_window"]
    return opts


def train_or_reuse_ensemble(config: ActiveLearningConfig, records: Sequence[Any], models_dir: Path,
                            say: Say, settings: dict[str, Any] | None = None,
                            store: Any = None) -> Path:
    """Train (or find, or resume) the ensemble of ``records``; returns its folder.

    ``settings`` (:func:`training_settings`): how to build it (default: ``bete train``'s
    defaults); mpd settings take each row's MLIP phonon DOS through ``store``.
    """
    from betenet_model.dataset import dataset_hash
    from betenet_model.training import TrainConfig
    from workflows.ml.data import records_to_samples
    from workflows.ml.mlip_dos import with_mlip_site_dos
    from workflows.ml.train import train_from_records

    settings = settings or training_settings(None)
    opts = _train_options(config, settings)
    variant = opts["variant"]
    if uses_mlip_dos(variant):
        records = with_mlip_site_dos(records, store, say=say)
    samples = records_to_samples(records, variant)
    data_hash = dataset_hash(samples)
    key = hashlib.sha256(json.dumps({"data": data_hash, **opts}, sort_keys=True).encode()
                         ).hexdigest()[:16]
    out = models_dir / f"{variant}-{key}"
    if (out / "ensemble.json").is_file() and model_manifest(out).get("member_files"):
        say(f"model: {out} already trained on these {len(records)} rows; reused")
        return out
    say(f"model: training {opts['members']} members on {len(records)} rows into {out} "
        f"({describe_training_settings({**settings, 'network': opts['network']})})")
    training = TrainConfig(max_epochs=opts["max_epochs"], schedule=opts["schedule"],
                           patience=min(15, opts["max_epochs"]),
                           peak_window=min(500, opts["max_epochs"]),
                           patience_stage3=min(5000, opts["max_epochs"]),
                           **opts["training"])
    train_from_records(records, out, variant=variant, members=opts["members"],
                       seed=opts["seed"], node_features=opts["node_features"],
                       training=training, network_options=opts["network"],
                       metadata={"source": "bete al run", "campaign": config.campaign},
                       smoothing_window=opts.get("smoothing_window", 101),
                       mlip_store=store, say=say)
    return out


def is_usable(row: dict[str, Any]) -> bool:
    """A completed, dynamically stable verification (counts for hits and errors)."""
    return row["status"] == "completed" and row.get("dynamically_stable") is not False \
        and row.get("tc_K_computed") is not None


def round_metrics(rows: Sequence[dict[str, Any]], previous_best: float | None,
                  threshold_K: float = HIT_TC_K) -> dict[str, Any]:
    """Hit rate, MAE of the predictions on the newly verified structures, best Tc so far.

    Parameters
    ----------
    rows : sequence of dict
        :func:`verification_row` results of the round.
    previous_best : float, optional
        Best verified Tc of the earlier rounds of the campaign (K).
    threshold_K : float
        Hit threshold (K).
    """
    final = [r for r in rows if r["status"] not in ("pending",)]
    usable = [r for r in final if is_usable(r)]
    hits = [r for r in usable if r["tc_K_computed"] > threshold_K]

    def mae(key: str) -> float | None:
        pairs = [(r[f"{key}_predicted"], r[f"{key}_computed"]) for r in usable
                 if r.get(f"{key}_predicted") is not None and r.get(f"{key}_computed") is not None]
        return float(sum(abs(p - c) for p, c in pairs) / len(pairs)) if pairs else None

    best_round = max((r["tc_K_computed"] for r in usable), default=None)
    best = max([b for b in (previous_best, best_round) if b is not None], default=None)
    return {
        "n_verified": len(final), "n_usable": len(usable),
        "n_unstable": sum(r["status"] == "unstable" or r.get("dynamically_stable") is False
                          for r in final),
        "n_insulator": sum(r["status"] == "insulator" for r in final),
        "n_failed": sum(r["status"] == "failed" for r in final),
        "hits_tc5": len(hits),
        "hit_rate": (len(hits) / len(final)) if final else None,
        "mae_tc_K_new": mae("tc_K"), "mae_lambda_new": mae("lambda"),
        "mae_omega_log_K_new": mae("omega_log_K"),
        "best_tc_K_round": best_round, "best_tc_K": best,
        "hit_threshold_K": threshold_K,
    }


# --------------------------------------------------------------------------- the loop
ACQUISITION_FIELDS = ("candidate_id", "formula", "rank", "score", "acquisition", "lambda_mean",
                      "lambda_std", "omega_log_K_mean", "omega_log_K_std", "tc_K_mean",
                      "tc_K_std", "prob_tc_above", "structure", "source", "prescreen")
"""What a round document keeps of each acquired candidate."""


def _load_round(store: Any, campaign: str, number: int) -> dict[str, Any] | None:
    for doc in rec.load_rounds(store, campaign):
        if int(doc["round"]) == number:
            return doc
    return None


def screening_maker(config: ActiveLearningConfig) -> ScreeningFlowMaker:
    """The ranking options of the campaign (the incumbent is set when screening)."""
    return ScreeningFlowMaker(acquisition=config.acquisition, chunk_size=config.chunk_size,
                              kappa=config.kappa, threshold_K=config.threshold_K,
                              max_per_chemsys=config.max_per_chemsys)


def _previous_best(store: Any, campaign: str, number: int) -> float | None:
    bests = [float(b) for d in rec.load_rounds(store, campaign) if int(d["round"]) < number
             and (b := (d.get("metrics") or {}).get("best_tc_K")) is not None]
    return max(bests) if bests else None


def run_round(config: ActiveLearningConfig, store: Any, number: int, *,
              store_spec: str | None = None, submit: Submit | None = None,
              say: Say | None = None, verbose: bool = False) -> dict[str, Any]:
    """Run (or finish) round ``number`` of the campaign; returns its document.

    One function per phase: :func:`model_phase` (train or reuse; writes the model document),
    :func:`screen_verify_phase` (writes the round with its acquisitions before any DFPT)
    and :func:`ingest_phase` (metrics; writes the round once more).  ``submit(flow)`` hands
    the DFPT flows to workers (None: they run here).

    Raises
    ------
    ValueError
        No usable candidate, a cpd/fpd model, an unreadable family, bad options.
    """
    say = say or (lambda _m: None)
    doc = open_round(config, store, number)
    if doc.status == "completed":
        say(f"round {number}: already completed (model {doc.model_id})")
        return doc.model_dump(mode="json")
    models_dir = Path(config.models_dir).expanduser() if config.models_dir else \
        default_models_dir(store_spec)
    model_path = model_phase(config, store, doc, models_dir, say)
    say(f"round {number}: model {doc.model_id} ({doc.n_training} training rows)")
    rows = screen_verify_phase(config, store, doc, model_path, submit, say, verbose)
    ingest_phase(config, store, doc, rows, say)
    return doc.model_dump(mode="json")


def open_round(config: ActiveLearningConfig, store: Any, number: int) -> ActiveLearningRound:
    """The stored round document, or a new one (nothing written)."""
    existing = _load_round(store, config.campaign, number)
    if existing:
        return ActiveLearningRound.model_validate(existing)
    return ActiveLearningRound(
        campaign=config.campaign, round=number, preset=config.preset,
        protocol_fingerprint=verification_identity(config).fingerprint(),
        acquisition=config.acquisition)


def model_phase(config: ActiveLearningConfig, store: Any, doc: ActiveLearningRound,
                models_dir: Path, say: Say) -> str:
    """The round's ensemble folder; its model document is stored.

    The folder the round recorded, else round 1's given (or shipped) ensemble or a later
    round's retrained one (:func:`retrain`).  The round document names it (not written here).
    """
    model_path = doc.metrics.get("model_path")
    if model_path and (Path(model_path) / "ensemble.json").is_file():
        return str(model_path)
    if doc.round == 1:
        model_path = _round_one_model(config, models_dir, say)
        query: dict[str, Any] = {"source": "given" if config.model
                                 else "shipped or initial data"}
    else:
        model_path, query = retrain(config, store, doc.round, models_dir, say)
    manifest = model_manifest(model_path)
    variant = manifest.get("variant")
    if get_variant(variant).takes_site_dos and not uses_mlip_dos(variant):
        raise ValueError(f"{model_path} is a {variant} model; active learning runs with "
                         f"{DEFAULT_VARIANT} or mpd models only (a DFPT site phonon DOS per "
                         "candidate is more than the flow makes alone)")
    mdoc = model_document(manifest, query, path=str(Path(model_path).resolve()))
    rec.write_model_document(store, mdoc)
    doc.model_id = mdoc.model_id
    doc.training_set_hash = mdoc.training_set_hash
    doc.training_ids = [str(i) for i in manifest["training_set"].get("ids", [])]
    doc.n_training = int(manifest["training_set"].get("n", len(doc.training_ids)))
    doc.metrics["model_path"] = str(model_path)
    doc.status = "trained"
    return str(model_path)


def retrain(config: ActiveLearningConfig, store: Any, number: int, models_dir: Path,
            say: Say) -> tuple[str, dict[str, Any]]:
    """A later round's ensemble folder and its training query.

    Trained (or reused) on :func:`round_training_rows` with the previous model's training
    settings, or the previous round's model kept when fewer than :data:`MIN_TRAINING_ROWS`
    α²F rows are there.
    """
    previous = (_load_round(store, config.campaign, number - 1) or {}).get(
        "metrics", {}).get("model_path")
    previous_manifest = model_manifest(previous) if previous and (
        Path(previous) / "ensemble.json").is_file() else None
    rows = round_training_rows(config, store, previous_manifest, say)
    fingerprint = verification_identity(config).fingerprint()
    query = {"initial": config.initial_data or "fast-v1", "store_preset": config.preset,
             "protocol_fingerprint": fingerprint, "status": "completed",
             "dynamically_stable": True}
    n_spectra = sum(1 for r in rows if r.has_spectrum)
    if n_spectra < MIN_TRAINING_ROWS and previous:
        say(f"round {number}: only {n_spectra} rows of protocol {fingerprint} (fewer "
            f"than {MIN_TRAINING_ROWS}); keeping the previous round's model")
        return str(previous), query
    return str(train_or_reuse_ensemble(config, rows, models_dir, say,
                                       training_settings(previous_manifest), store)), query


def round_training_rows(config: ActiveLearningConfig, store: Any,
                        previous_manifest: dict[str, Any] | None, say: Say) -> list[Any]:
    """What a later round's ensemble trains on (the training-data phase).

    The initial data and the store's verified task documents, of the verification protocol
    only (:func:`training_records`).

    ``previous_manifest`` is the model the round follows (None: none): its Tc-only rows are
    kept (:func:`tc_only_rows`).
    """
    return training_records(config, store, say) + tc_only_rows(previous_manifest, say)


def screen_verify_phase(config: ActiveLearningConfig, store: Any, doc: ActiveLearningRound,
                        model_path: str, submit: Submit | None, say: Say,
                        verbose: bool) -> list[dict[str, Any]]:
    """Screen with the round's model and verify its top-k (:func:`screen_and_verify`).

    The round, with its acquisitions, is written once, before any DFPT runs: a resumed
    round verifies the same candidates and does not screen again.
    """
    number = doc.round

    def record(screened: Any, acquired: list[dict[str, Any]]) -> None:
        acquisitions_of(doc, screened, acquired)
        rec.write_round(store, doc)
        say(f"round {number}: acquired " + ", ".join(
            f"{a['formula']} ({a['candidate_id']}, Tc {a['tc_K_mean']:.2f} ± "
            f"{a['tc_K_std']:.2f} K)" for a in doc.acquisitions))

    request = ScreenRequest(config.candidates, model_path, screening_maker(config),
                            config.top_k, verification(config), verify=True,
                            round_number=number, campaign=config.campaign,
                            incumbent_of_preset=True)
    done = {v["candidate_id"]: v for v in doc.verification if v["status"] != "pending"}
    result = screen_and_verify(request, store, submit=submit, say=say, verbose=verbose,
                               label=f"round {number}: ",
                               acquired=doc.acquisitions or None, done=done,
                               on_acquired=record)
    return result.verification


def acquisitions_of(doc: ActiveLearningRound, screened: Any,
                    acquired: list[dict[str, Any]]) -> None:
    """Put a screening's counts, rejections and acquired candidates into the round."""
    ranked = screened.ranked
    doc.n_screened = int(screened.summary["n_screened"])
    doc.n_rejected = len(screened.checked.rejected)
    doc.candidates = [r["candidate_id"] for r in ranked]
    doc.acquisitions = [{k: r.get(k) for k in ACQUISITION_FIELDS} for r in acquired]
    doc.submitted = [a["candidate_id"] for a in doc.acquisitions]
    doc.metrics["unverifiable"] = [r["candidate_id"] for r in ranked if r.get("unverifiable")]
    doc.metrics["prescreen_skipped"] = [r["candidate_id"] for r in ranked
                                        if r.get("prescreen") and not r["prescreen"]["passed"]]
    doc.metrics["incumbent_K"] = screened.incumbent_K
    doc.metrics["rejections"] = screened.checked.reasons()
    doc.status = "verifying"


def ingest_phase(config: ActiveLearningConfig, store: Any, doc: ActiveLearningRound,
                 rows: list[dict[str, Any]], say: Say) -> None:
    """The verification rows and metrics into the round, written once.

    ``completed``, or ``waiting`` for submitted calculations; the verified task documents
    are in the store, so the next round trains on them.
    """
    number = doc.round
    doc.verification = rows
    doc.verified = [r["candidate_id"] for r in rows if r["status"] != "pending"]
    metrics = round_metrics(rows, _previous_best(store, config.campaign, number),
                            config.threshold_K)
    doc.metrics.update(metrics)
    pending = [r["candidate_id"] for r in rows if r["status"] == "pending"]
    doc.status = "waiting" if pending else "completed"
    rec.write_round(store, doc)
    if pending:
        say(f"round {number}: waiting for {', '.join(pending)} (submitted); rerun the same "
            "command once the workers have finished")
    else:
        say(f"round {number}: {metrics['n_verified']} verified, {metrics['hits_tc5']} with "
            f"Tc > {config.threshold_K:g} K, best Tc so far "
            f"{_fmt(metrics['best_tc_K'])} K, MAE(Tc) on new {_fmt(metrics['mae_tc_K_new'])} K")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _round_one_model(config: ActiveLearningConfig, models_dir: Path, say: Say) -> str:
    if config.model:
        if not (Path(config.model) / "ensemble.json").is_file():
            raise ValueError(f"--model {config.model} holds no ensemble (ensemble.json)")
        return str(Path(config.model).resolve())
    from workflows.ml.predict import default_model_dir

    shipped = default_model_dir()
    if (shipped / "ensemble.json").is_file() and model_manifest(shipped).get("member_files"):
        say(f"model: the shipped ensemble {shipped}")
        return str(shipped)
    say("model: no shipped ensemble here; training one on the initial data")
    return str(train_or_reuse_ensemble(config, initial_records(config), models_dir, say))


def run_active_learning(config: ActiveLearningConfig, store: Any, *,
                        store_spec: str | None = None, submit: Submit | None = None,
                        say: Say | None = None, verbose: bool = False,
                        ) -> list[dict[str, Any]]:
    """Run rounds 1 … ``config.rounds`` (finished ones are skipped); returns their documents.

    Stops early (returning what exists) when a round waits for submitted calculations
    (``submit(flow)`` hands the DFPT flows to workers; None: they run here).  First checks
    the pseudopotential family and says, when it is so, that DFPT verifies with another
    protocol than the one of the initial data (:func:`protocol_notice`).
    """
    from stores.datasets import protocol_groups

    verification(config).family()

    groups = protocol_groups(initial_records(config))
    fingerprint, rows = next(iter(groups.items()))
    notice = protocol_notice(config, fingerprint, rows[0].protocol_label)
    if notice and say:
        say(f"protocol: {notice}")
    out = []
    for number in range(1, int(config.rounds) + 1):
        doc = run_round(config, store, number, store_spec=store_spec, submit=submit,
                        say=say, verbose=verbose)
        out.append(doc)
        if doc["status"] != "completed":
            break
    return out
