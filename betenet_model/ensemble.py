"""Bootstrap ensembles of BETE-NET: independent members, saved as state_dicts + JSON.

Every member trains on a bootstrap resample of the training rows (drawn from
``SeedSequence([seed, member_index])``, so it does not depend on which
machine or in which order members run) and validates on its out-of-bag rows.
:func:`train_member` is one self-contained unit of work (a cluster can run the
members as separate jobs that share ``out_dir``); :func:`train_ensemble` runs
them here, in sequence or in parallel processes, and writes the manifest.
:class:`Ensemble` loads the result and predicts one spectrum per member.

Examples
--------
>>> # doctest: +SKIP
>>> ens = train_ensemble(samples, EnsembleConfig(network=NetworkConfig()), "run/cso")
>>> spectra = Ensemble.load("run/cso").predict_spectra(new_samples)   # (M, n, 51)
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from betenet_model import checkpoint as ckpt
from betenet_model.batch import GraphBatch, collate, make_sample
from betenet_model.dataset import (
    CrystalSample,
    dataset_hash,
    elements_seen,
    supervision_arrays,
)
from betenet_model.elements import descriptor_table_hash
from betenet_model.features import FOUNDATION_FEATURES, check_node_features, input_dim
from betenet_model.graph import build_graph
from betenet_model.network import BeteNet
from betenet_model.network_config import NetworkConfig
from betenet_model.targets import ModelGrid, model_grid
from betenet_model.tc import allen_dynes_tc, spectral_moments
from betenet_model.training import (
    TrainConfig,
    TrainingInterrupted,
    model_outputs,
    train_model,
    versions,
)
from betenet_model.variants import DEFAULT_VARIANT, get_variant

logger = logging.getLogger(__name__)

MemberCallback = Callable[[int, int, float, float, int], None]
"""``callback(member_index, epoch, train_loss, val_loss, stage)``."""


# --------------------------------------------------------------------------- model adapter
# The only place that knows the network's construction and input API.
def network_config_from_dict(data: Mapping[str, Any]) -> NetworkConfig:
    """``NetworkConfig`` from its JSON form."""
    return NetworkConfig.from_dict(dict(data))


def network_config_to_dict(config: NetworkConfig) -> dict[str, Any]:
    """JSON form of a ``NetworkConfig``."""
    return config.to_dict()


def build_model(config: NetworkConfig) -> BeteNet:
    """A fresh :class:`BeteNet` (weights from the current torch RNG state)."""
    return BeteNet(config)


def build_inputs(samples: Sequence[CrystalSample], config: NetworkConfig,
                 variant: str = DEFAULT_VARIANT,
                 dtype: torch.dtype = torch.float32, device: str = "cpu",
                 node_features: str = "onehot_mass",
                 feature_scaling: Mapping[str, Sequence[float]] | None = None) -> GraphBatch:
    """Graphs, node inputs and cached edge embeddings of ``samples``, collated into one batch.

    Parameters
    ----------
    samples : sequence of CrystalSample
        At least one; cpd/fpd samples carry ``site_dos`` (n, 51).
    config : NetworkConfig
        Cutoff and edge-embedding sizes.
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS`.
    dtype, device
        Floating dtype and device of the batch.
    node_features : str
        Species encoding of the node inputs (a foundation mode takes ``atom_features``).
    feature_scaling : dict, optional
        ``{"mean": [...], "std": [...]}`` standardising the atom features of a foundation
        mode (:func:`feature_scaling`; saved in the manifest).

    Raises
    ------
    ValueError
        A foundation mode without ``feature_scaling`` or a sample without atom features, or a
        ``dos`` head and a sample without ``phonon_dos`` on the grid.
    """
    takes_dos = get_variant(variant).takes_site_dos
    foundation = check_node_features(node_features) in FOUNDATION_FEATURES
    if foundation and feature_scaling is None:
        raise ValueError(f"the {node_features} node features need their feature_scaling")
    needs_phonon_dos = config.head == "dos"
    graph_samples = []
    for s in samples:
        extra = None
        if foundation:
            if s.atom_features is None:
                raise ValueError(f"{s.id}: the {node_features} node features need the atom "
                                 "features of the structure")
            extra = ((s.atom_features - np.asarray(feature_scaling["mean"]))  # type: ignore
                     / np.asarray(feature_scaling["std"]))  # type: ignore[index]
        if needs_phonon_dos and (s.phonon_dos is None or len(s.phonon_dos) != config.out_dim):
            raise ValueError(f"{s.id}: the dos head needs the phonon DOS of the structure on "
                             f"the {config.out_dim}-bin grid")
        graph = build_graph(s.lattice, s.positions, s.atomic_numbers, cutoff=config.cutoff)
        graph_samples.append(make_sample(graph, s.site_dos if takes_dos else None,
                                         variant, config=config, dtype=dtype,
                                         node_features=node_features, atom_features=extra,
                                         phonon_dos=s.phonon_dos if needs_phonon_dos else None))
    return collate(graph_samples, device=device, dtype=dtype)


def feature_scaling(samples: Sequence[CrystalSample]) -> dict[str, list[float]] | None:
    """Mean and standard deviation of every atom-feature column over all atoms of ``samples``.

    None when no sample has atom features; a constant column gets std 1.
    """
    rows = [s.atom_features for s in samples if s.atom_features is not None]
    if not rows:
        return None
    stacked = np.concatenate(rows)
    std = stacked.std(axis=0)
    std[std < 1e-8] = 1.0
    return {"mean": stacked.mean(axis=0).tolist(), "std": std.tolist()}


# --------------------------------------------------------------------------- configuration
@dataclass
class EnsembleConfig:
    """What to train: network, optimisation, member count and seeds.

    Attributes
    ----------
    network : NetworkConfig
        Architecture (input width, hidden sizes, cutoff ...).
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS` (which node inputs; must match
        ``network.input_dim``).
    training : TrainConfig
        Optimiser and schedule of every member (its ``seed`` is replaced per member).
    members : int
        Ensemble size M.
    seed : int
        Ensemble seed; member i draws from ``SeedSequence([seed, i])``.
    bootstrap : bool
        Train each member on a bootstrap resample (else on all rows, validated on all rows).
    keep_checkpoints : bool
        Keep each member's resumable checkpoint after it finished.
    node_features : str
        ``"onehot_mass"`` (the paper's species encoding) or ``"descriptors"`` (element
        descriptors, :mod:`betenet_model.elements`); must match ``network.input_dim``.
        A manifest without this key was trained with ``"onehot_mass"``.
    smoothing_window : int
        Savitzky–Golay window (points of 0.1 meV) that puts spectra on the model grid
        (:class:`betenet_model.targets.ModelGrid`; 101 = the paper's, left out of the manifest).
    """

    network: NetworkConfig
    variant: str = DEFAULT_VARIANT
    training: TrainConfig = field(default_factory=TrainConfig)
    members: int = 5
    seed: int = 0
    bootstrap: bool = True
    keep_checkpoints: bool = False
    node_features: str = "onehot_mass"
    smoothing_window: int = 101

    def __post_init__(self) -> None:
        ModelGrid(self.network.out_dim, int(self.smoothing_window))   # valid grid or error
        if int(self.members) < 1:
            raise ValueError(f"an ensemble needs at least one member, got {self.members}")
        self.variant = get_variant(self.variant).name
        self.node_features = check_node_features(self.node_features)
        expected = input_dim(self.variant, self.node_features)
        if self.network.input_dim != expected:
            raise ValueError(f"the {self.variant} variant with {self.node_features} node inputs "
                             f"needs NetworkConfig.input_dim = {expected}, "
                             f"got {self.network.input_dim}")

    @property
    def grid(self) -> ModelGrid:
        """The output grid and its resampling."""
        return ModelGrid(self.network.out_dim, int(self.smoothing_window))

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``smoothing_window`` only when not the paper's)."""
        out = {"network": network_config_to_dict(self.network), "variant": self.variant,
               "training": self.training.as_dict(), "members": int(self.members),
               "seed": int(self.seed), "bootstrap": bool(self.bootstrap),
               "keep_checkpoints": bool(self.keep_checkpoints),
               "node_features": self.node_features}
        if int(self.smoothing_window) != 101:
            out["smoothing_window"] = int(self.smoothing_window)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnsembleConfig:
        """Inverse of :meth:`as_dict`."""
        return cls(network=network_config_from_dict(data["network"]),
                   variant=str(data.get("variant", DEFAULT_VARIANT)),
                   training=TrainConfig.from_dict(data["training"]),
                   members=int(data["members"]), seed=int(data["seed"]),
                   bootstrap=bool(data.get("bootstrap", True)),
                   keep_checkpoints=bool(data.get("keep_checkpoints", False)),
                   node_features=str(data.get("node_features", "onehot_mass")),
                   smoothing_window=int(data.get("smoothing_window", 101)))


def member_seeds(seed: int, member_index: int) -> tuple[np.random.Generator, int]:
    """Bootstrap generator and weight-initialisation seed of one member."""
    ss = np.random.SeedSequence([int(seed), int(member_index)])
    boot_ss, init_ss = ss.spawn(2)
    return np.random.default_rng(boot_ss), int(init_ss.generate_state(1)[0] & 0x7FFFFFFF)


def bootstrap_counts(n: int, rng: np.random.Generator, max_tries: int = 1000) -> np.ndarray:
    """Multiplicity of each row in a bootstrap resample with at least one out-of-bag row.

    With one row there is no out-of-bag row (the member validates on its training row).
    """
    counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
    tries = 1
    while n > 1 and counts.min() > 0 and tries < max_tries:
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        tries += 1
    return counts


# --------------------------------------------------------------------------- manifest
def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_manifest(dataset: Sequence[CrystalSample], config: EnsembleConfig,
                  metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``ensemble.json`` content known before any member trains."""
    targets, tc = supervision_arrays(dataset)
    spectrum_rows = ~np.isnan(targets[:, 0])
    return {
        "format": ckpt.ENSEMBLE_FORMAT,
        "variant": config.variant,
        "node_features": config.node_features,
        "descriptor_table_sha256": (descriptor_table_hash()
                                    if config.node_features == "descriptors" else None),
        "members": int(config.members),
        "config": config.as_dict(),
        "versions": versions(),
        "training_set": {
            "hash": dataset_hash(dataset),
            "n": len(dataset),
            "n_spectrum": int(spectrum_rows.sum()),
            "n_tc_only": int((~spectrum_rows).sum()),
            "ids": [s.id for s in dataset],
            "elements_Z": elements_seen(dataset),
        },
        "baseline_spectrum": targets[spectrum_rows].mean(axis=0).tolist(),
        "grid_meV": model_grid(config.network.out_dim).tolist(),
        "grid": config.grid.describe(),
        **({"feature_scaling": scaling} if (scaling := feature_scaling(dataset)) else {}),
        "created": _utcnow(),
        "metadata": dict(metadata or {}),
    }


def write_manifest(dataset: Sequence[CrystalSample], config: EnsembleConfig,
                   out_dir: str | Path, metadata: Mapping[str, Any] | None = None,
                   ) -> dict[str, Any]:
    """Write (or check) ``ensemble.json`` before training.

    Raises
    ------
    ValueError
        ``out_dir`` already holds an ensemble of another training set or configuration.
    """
    path = Path(out_dir) / ckpt.MANIFEST
    manifest = make_manifest(dataset, config, metadata)
    if path.is_file():
        old = ckpt.read_json(path)
        same = (old.get("training_set", {}).get("hash") == manifest["training_set"]["hash"]
                and _same_config(old.get("config", {}), manifest["config"]))
        if not same:
            raise ValueError(f"{out_dir} already holds an ensemble trained on other data or "
                             "with other options; choose another output folder or delete it")
        old["metadata"] = {**old.get("metadata", {}), **manifest["metadata"]}
        manifest = {**manifest, **{k: old[k] for k in ("created",) if k in old},
                    "metadata": old["metadata"]}
        if "member_files" in old:
            manifest["member_files"] = old["member_files"]
            manifest["metrics"] = old.get("metrics", {})
    ckpt.write_json(path, manifest)
    return manifest


def _same_config(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def strip(c: Mapping[str, Any]) -> dict[str, Any]:
        try:   # fill keys added since the config was saved with their defaults
            c = EnsembleConfig.from_dict(c).as_dict()
        except (KeyError, TypeError, ValueError):
            c = dict(c)
        c["training"] = {k: v for k, v in dict(c.get("training", {})).items()
                         if k not in ("checkpoint_every", "device")}
        c.pop("keep_checkpoints", None)
        c.pop("members", None)     # more members may be added later
        return c
    return strip(a) == strip(b)


def finalize_manifest(out_dir: str | Path) -> dict[str, Any]:
    """Add the finished members and their metrics to ``ensemble.json``."""
    path = Path(out_dir) / ckpt.MANIFEST
    manifest = ckpt.read_json(path)
    infos = []
    for i in range(int(manifest["members"])):
        info_path = ckpt.member_info_path(out_dir, i)
        if info_path.is_file() and ckpt.member_weights_path(out_dir, i).is_file():
            infos.append(ckpt.read_json(info_path))
    manifest["member_files"] = [ckpt.member_weights_path(".", int(m["member_index"])).name
                                for m in infos]
    oob = [m["result"]["best_val_loss"] for m in infos if m.get("n_out_of_bag")]
    previous = manifest.get("metrics", {})
    manifest["metrics"] = {
        "members_finished": len(infos),
        "oob_mse_mean": float(np.mean(oob)) if oob else None,
        "oob_mse_per_member": oob,
        "epochs_per_member": [m["result"]["epochs"] for m in infos],
        "final_stage_per_member": [m["result"]["final_stage"] for m in infos],
        "train_wall_s_total": float(sum(m["result"]["wall_s"] for m in infos)),
    }
    if "evaluation" in previous:
        manifest["metrics"]["evaluation"] = previous["evaluation"]
    ckpt.write_json(path, manifest)
    return manifest


# --------------------------------------------------------------------------- training
def train_member(member_index: int, dataset: Sequence[CrystalSample], config: EnsembleConfig,
                 out_dir: str | Path, callback: MemberCallback | None = None) -> dict[str, Any]:
    """Train one ensemble member and write ``member_XXX.pt`` + ``member_XXX.json``.

    Self-contained: a cluster job can call it with the same ``dataset``,
    ``config`` and ``out_dir`` as the other members.  A member already
    finished on the same training set is not retrained; a killed one resumes
    from its checkpoint.

    Parameters
    ----------
    member_index : int
        0 … M−1; fixes the bootstrap resample and the initial weights.
    dataset : sequence of CrystalSample
        Training rows (with targets); identical for every member.
    config : EnsembleConfig
    out_dir : path
        Ensemble folder.
    callback : callable, optional
        ``callback(member_index, epoch, train_loss, val_loss, stage)`` each epoch.

    Returns
    -------
    dict
        The member record written to ``member_XXX.json``.
    """
    out = Path(out_dir)
    data_hash = dataset_hash(dataset)
    info_path = ckpt.member_info_path(out, member_index)
    weights_path = ckpt.member_weights_path(out, member_index)
    if info_path.is_file() and weights_path.is_file():
        info = ckpt.read_json(info_path)
        if info.get("training_set_hash") == data_hash and _same_config(
                info.get("config", {}), config.as_dict()):
            logger.info("member %d already trained in %s", member_index, out)
            return info
    rng, init_seed = member_seeds(config.seed, member_index)
    n = len(dataset)
    counts = bootstrap_counts(n, rng) if config.bootstrap else np.ones(n, dtype=np.int64)
    train_rows = [int(i) for i in np.nonzero(counts)[0]]
    val_rows = [int(i) for i in np.nonzero(counts == 0)[0]]
    tcfg = replace(config.training, seed=init_seed)
    dtype = tcfg.torch_dtype
    target_array, tc_array = supervision_arrays(dataset)
    targets = torch.as_tensor(target_array, dtype=dtype)
    tc_all = (torch.as_tensor(tc_array, dtype=dtype) if np.isnan(target_array[:, 0]).any()
              else None)           # None: every row has a spectrum, the plain α²F MSE
    train_samples = [dataset[i] for i in train_rows]
    scaling = feature_scaling(dataset)
    train_inputs = build_inputs(train_samples, config.network, config.variant, dtype=dtype,
                                device=tcfg.device, node_features=config.node_features,
                                feature_scaling=scaling)
    val_inputs = val_targets = None
    if len(val_rows):
        val_inputs = build_inputs([dataset[i] for i in val_rows], config.network,
                                  config.variant, dtype=dtype, device=tcfg.device,
                                  node_features=config.node_features, feature_scaling=scaling)
        val_targets = targets[torch.as_tensor(val_rows)]
    train_tc = None if tc_all is None else tc_all[torch.as_tensor(train_rows)]
    val_tc = None if tc_all is None or not val_rows else tc_all[torch.as_tensor(val_rows)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = build_model(config.network)
    if config.network.head == "anchored":
        model.set_anchor(torch.as_tensor(_in_bag_mean_spectrum(target_array, counts)))
    elif config.network.head == "dos":
        model.set_anchor(torch.as_tensor(_in_bag_coupling(dataset, target_array, counts)))
    if config.network.tc_head:
        model.set_tc_anchor(_in_bag_mean_log_tc(target_array, tc_array, counts,
                                                tcfg.mu_star))
    cb = None if callback is None else (
        lambda epoch, tl, vl, stage: callback(member_index, epoch, tl, vl, stage))
    result = train_model(
        model, train_inputs, targets[torch.as_tensor(train_rows)], val_inputs,
        val_targets if val_targets is not None else targets[torch.as_tensor(train_rows)],
        tcfg, train_weights=torch.as_tensor(counts[train_rows], dtype=dtype),
        train_tc=train_tc, val_tc=val_tc,
        checkpoint_path=ckpt.member_checkpoint_path(out, member_index), callback=cb)
    ckpt.save_state_dict(weights_path, model)
    info = {
        "member_index": int(member_index),
        "init_seed": init_seed,
        "training_set_hash": data_hash,
        "config": config.as_dict(),
        "versions": versions(),
        "n_train_unique": int(len(train_rows)),
        "n_out_of_bag": int(len(val_rows)),
        "bootstrap_ids": {dataset[i].id: int(counts[i]) for i in train_rows},
        "out_of_bag_ids": [dataset[i].id for i in val_rows],
        "result": result.summary(),
        "finished": _utcnow(),
    }
    ckpt.write_json(info_path, info)
    if not config.keep_checkpoints:
        ckpt.member_checkpoint_path(out, member_index).unlink(missing_ok=True)
    return info


def _in_bag_mean_spectrum(targets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean α²F of a member's in-bag spectrum rows, weighted by their bootstrap multiplicity."""
    has_spectrum = ~np.isnan(targets[:, 0])
    weights = counts * has_spectrum
    if weights.sum() == 0:
        raise ValueError("the anchored head needs at least one in-bag row with a spectrum")
    return (targets[has_spectrum] * weights[has_spectrum, None]).sum(axis=0) / weights.sum()


def _in_bag_coupling(dataset: Sequence[CrystalSample], targets: np.ndarray,
                     counts: np.ndarray) -> np.ndarray:
    """The ``dos`` head's starting coupling, one constant α² on every bin.

    It gives the in-bag spectrum rows their mean λ: ``Σ w λ(α²F) / Σ w λ(F)``
    (bootstrap-weighted).
    """
    grid = torch.as_tensor(model_grid(targets.shape[1]), dtype=torch.float64)
    rows = [i for i in range(len(dataset))
            if counts[i] and not np.isnan(targets[i, 0]) and dataset[i].phonon_dos is not None]
    if not rows:
        raise ValueError("the dos head needs at least one in-bag row with a spectrum and a "
                         "phonon DOS")
    w = torch.as_tensor(counts[rows], dtype=torch.float64)
    lam_true = spectral_moments(grid, torch.as_tensor(targets[rows]))[0]
    lam_dos = spectral_moments(grid, torch.as_tensor(
        np.stack([dataset[i].phonon_dos for i in rows])))[0]   # type: ignore[misc]
    value = float((w * lam_true).sum() / (w * lam_dos).sum().clamp(min=1e-12))
    return np.full(targets.shape[1], value)


def _in_bag_mean_log_tc(targets: np.ndarray, tc: np.ndarray, counts: np.ndarray,
                        mu_star: float) -> float:
    """Mean ln(1 + Tc/K) of the in-bag rows (the Tc head's offset).

    Tc labels and the Allen–Dynes Tc of target spectra, bootstrap-weighted.
    """
    grid = torch.as_tensor(model_grid(targets.shape[1]), dtype=torch.float64)
    values = np.where(np.isnan(targets[:, 0]), tc, np.nan)
    spec = ~np.isnan(targets[:, 0])
    if spec.any():
        values[spec] = allen_dynes_tc(grid, torch.as_tensor(targets[spec]), mu_star).numpy()
    keep = ~np.isnan(values) & (counts > 0)
    return float(np.sum(counts[keep] * np.log1p(values[keep])) / np.sum(counts[keep]))


def _member_job(member_index: int, dataset: Sequence[CrystalSample], config: EnsembleConfig,
                out_dir: str, callback: MemberCallback | None, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    return train_member(member_index, dataset, config, out_dir, callback)


def train_ensemble(dataset: Sequence[CrystalSample], config: EnsembleConfig,
                   out_dir: str | os.PathLike[str], *, jobs: int = 1,
                   callback: MemberCallback | None = None,
                   metadata: Mapping[str, Any] | None = None,
                   members: Sequence[int] | None = None) -> Ensemble:
    """Train (or finish) every member and write the ensemble folder.

    Parameters
    ----------
    dataset : sequence of CrystalSample
        Training rows with targets on the model grid.
    config : EnsembleConfig
    out_dir : path
        Output folder (created); rerunning the same call resumes.
    jobs : int
        Members trained at once in separate processes (1 = in this process).
        ``callback`` must then be picklable (a module-level function or object), and a
        script calling this needs the usual ``if __name__ == "__main__":`` guard
        (the workers are spawned).
    callback : callable, optional
        Per-epoch progress, see :data:`MemberCallback`.
    metadata : dict, optional
        Stored in the manifest (e.g. the command line, the data source).
    members : sequence of int, optional
        Train only these member indices (default: all).

    Returns
    -------
    Ensemble
        The finished members, loaded from ``out_dir``.
    """
    if len(dataset) == 0:
        raise ValueError("the training set is empty")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(dataset, config, out, metadata)
    todo = list(range(config.members)) if members is None else [int(i) for i in members]
    start = time.perf_counter()
    if jobs <= 1 or len(todo) <= 1:
        for i in todo:
            train_member(i, dataset, config, out, callback)
    else:
        threads = max(1, torch.get_num_threads() // jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_member_job, i, list(dataset), config, str(out), callback,
                                   threads) for i in todo]
            for fut in futures:
                fut.result()
    manifest = finalize_manifest(out)
    manifest.setdefault("metrics", {})["wall_s_last_run"] = time.perf_counter() - start
    ckpt.write_json(out / ckpt.MANIFEST, manifest)
    if config.training.checkpoint_every and not config.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return Ensemble.load(out, device=config.training.device)


# --------------------------------------------------------------------------- the ensemble
class Ensemble:
    """Trained members plus the manifest that describes them.

    Parameters
    ----------
    models : list of torch.nn.Module
        The members (evaluation mode).
    manifest : dict
        ``ensemble.json`` content (config, training set, baseline, metrics).
    device : str
        Where the members live.
    """

    def __init__(self, models: Sequence[torch.nn.Module], manifest: Mapping[str, Any],
                 device: str = "cpu", member_info: Sequence[Mapping[str, Any]] | None = None,
                 folder: str | Path | None = None) -> None:
        if not models:
            raise ValueError("an ensemble needs at least one trained member")
        self.models = list(models)
        self.manifest = dict(manifest)
        self.device = device
        self.member_info = [dict(m) for m in member_info] if member_info else []
        """Per-member records (bootstrap and out-of-bag ids, schedule result) when known."""
        self.config = EnsembleConfig.from_dict(self.manifest["config"])
        self.folder = None if folder is None else Path(folder)
        """The folder it was loaded from (None: built in memory)."""
        for m in self.models:
            m.eval()

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return (f"Ensemble(variant={self.variant!r}, members={len(self)}, "
                f"training_set={self.training_set_hash[:12]})")

    @property
    def variant(self) -> str:
        """Model variant (a name of :data:`betenet_model.variants.VARIANTS`)."""
        return str(self.manifest.get("variant", DEFAULT_VARIANT))

    @property
    def elements_seen(self) -> list[int]:
        """Atomic numbers present in the training set."""
        return [int(z) for z in self.manifest["training_set"]["elements_Z"]]

    @property
    def training_set_hash(self) -> str:
        """sha256 of the training set (:func:`betenet_model.dataset.dataset_hash`)."""
        return str(self.manifest["training_set"]["hash"])

    @property
    def baseline_spectrum(self) -> np.ndarray:
        """Mean training spectrum on the model grid, shape (n_bins,)."""
        return np.asarray(self.manifest["baseline_spectrum"], dtype=float)

    @property
    def grid(self) -> ModelGrid:
        """Output grid and resampling (older manifests: the paper's)."""
        return self.config.grid

    @property
    def grid_meV(self) -> np.ndarray:
        """Bin centres of the predicted spectra (meV).

        The manifest's ``grid_meV``, else the grid of ``network.out_dim`` (51 bins, the
        paper's, for ensembles written before).
        """
        if "grid_meV" in self.manifest:
            return np.asarray(self.manifest["grid_meV"], dtype=float)
        return model_grid(self.config.network.out_dim)

    @property
    def foundation_potential(self) -> str | None:
        """The universal potential whose atom features the node inputs take (None: none)."""
        from betenet_model.features import foundation_potential

        return foundation_potential(self.config.node_features)

    @property
    def needs_phonon_dos(self) -> bool:
        """Whether every structure needs its phonon DOS (the ``dos`` head)."""
        return self.config.network.head == "dos"

    @property
    def has_tc_head(self) -> bool:
        """Whether the members predict ln(1 + Tc) directly as well."""
        return bool(self.config.network.tc_head)

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype of the members."""
        return self.config.training.torch_dtype

    @classmethod
    def load(cls, directory: str | Path, device: str = "cpu") -> Ensemble:
        """Load an ensemble folder (weights with ``weights_only=True``).

        Raises
        ------
        FileNotFoundError
            No ``ensemble.json`` or no finished member.
        """
        folder = Path(directory)
        path = folder / ckpt.MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no ensemble ({ckpt.MANIFEST} is missing)")
        manifest = ckpt.read_json(path)
        if manifest.get("format") != ckpt.ENSEMBLE_FORMAT:
            raise ValueError(f"{path} is not a bete ensemble manifest ({manifest.get('format')})")
        config = EnsembleConfig.from_dict(manifest["config"])
        table = manifest.get("descriptor_table_sha256")
        if config.node_features == "descriptors" and table != descriptor_table_hash():
            raise ValueError(f"{folder} was trained with another element-descriptor table "
                             f"(sha256 {str(table)[:12]}, this package has "
                             f"{descriptor_table_hash()[:12]}); retrain it with this version")
        names = manifest.get("member_files") or sorted(p.name for p in folder.glob("member_*.pt"))
        models: list[torch.nn.Module] = []
        template = build_model(config.network)
        for name in names:
            model = copy.deepcopy(template)      # building an e3nn network is slow; copying not
            model.load_state_dict(ckpt.load_state_dict(folder / name, device=device))
            models.append(model.to(device=device, dtype=config.training.torch_dtype))
        if not models:
            raise FileNotFoundError(f"{folder} holds no finished member (member_*.pt)")
        infos = []
        for name in names:
            info = folder / name.replace(".pt", ".json")
            infos.append(ckpt.read_json(info) if info.is_file() else {})
        return cls(models, manifest, device=device,
                   member_info=infos if all(infos) else None, folder=folder)

    def save(self, directory: str | Path) -> None:
        """Write the manifest and one ``state_dict`` file per member."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for i, model in enumerate(self.models):
            ckpt.save_state_dict(ckpt.member_weights_path(folder, i), model)
            names.append(ckpt.member_weights_path(".", i).name)
        manifest = {**self.manifest, "member_files": names, "members": len(self.models)}
        ckpt.write_json(folder / ckpt.MANIFEST, manifest)

    def predict_spectra(self, samples: Sequence[CrystalSample], batch_size: int = 64,
                        ) -> np.ndarray:
        """Spectrum of every member for every sample.

        Parameters
        ----------
        samples : sequence of CrystalSample
            Structures (and site DOS for cpd/fpd); targets are ignored.
        batch_size : int
            Structures per forward pass.

        Returns
        -------
        ndarray, shape (M, n, n_bins)
            Non-negative α²F on the model grid.
        """
        return self.predict(samples, batch_size)[0]

    def predict(self, samples: Sequence[CrystalSample], batch_size: int = 64,
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Spectra ``(M, n, n_bins)`` and each member's direct Tc.

        The Tc is in K, ``(M, n)``, clipped at 0; None without a Tc head.
        """
        out, tcs = [], []
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            inputs = build_inputs(chunk, self.config.network, self.variant, dtype=self.dtype,
                                  device=self.device, node_features=self.config.node_features,
                                  feature_scaling=self.manifest.get("feature_scaling"))
            with torch.no_grad():
                pairs = [model_outputs(m, inputs) for m in self.models]
            out.append(np.stack([p.detach().cpu().double().numpy() for p, _ in pairs]))
            if self.has_tc_head:
                tcs.append(np.stack([np.expm1(t.detach().cpu().double().numpy()).clip(0)
                                     for _, t in pairs if t is not None]))
        if not out:
            return (np.zeros((len(self), 0, len(self.baseline_spectrum))),
                    np.zeros((len(self), 0)) if self.has_tc_head else None)
        return np.concatenate(out, axis=1), (np.concatenate(tcs, axis=1) if tcs else None)


__all__ = [
    "Ensemble",
    "EnsembleConfig",
    "TrainingInterrupted",
    "bootstrap_counts",
    "build_inputs",
    "build_model",
    "feature_scaling",
    "finalize_manifest",
    "member_seeds",
    "train_ensemble",
    "train_member",
    "write_manifest",
]
