"""Train a BETE-NET ensemble from training records (the flows' side of training).

Turns :class:`stores.datasets.TrainingRecord` rows into model samples (α²F and
site DOS on the model grid), builds the network configuration for a variant
and hands over to :func:`betenet_model.ensemble.train_ensemble`.
:func:`train_from_data` is ``bete train``'s one call: the rows of ``--data`` sources
(:func:`workflows.ml.training_data.load_training_data`), then :func:`train_from_records`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from betenet_model.ensemble import Ensemble, EnsembleConfig, MemberCallback, train_ensemble
from betenet_model.features import foundation_potential
from betenet_model.network_config import NetworkConfig
from betenet_model.training import TrainConfig
from betenet_model.variants import DEFAULT_VARIANT
from stores.datasets import TrainingRecord
from workflows.ml.data import check_variant, records_to_samples
from workflows.ml.mlip_inputs import MLIPNeeds, mlip_inputs, open_mlip_store, report_dropped
from workflows.ml.training_data import DataOptions, load_training_data


def network_config(variant: str = DEFAULT_VARIANT, options: Mapping[str, Any] | None = None,
                   node_features: str = "onehot_mass") -> NetworkConfig:
    """``NetworkConfig`` for a variant (its input width), with field overrides.

    Parameters
    ----------
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS`.
    options : dict, optional
        ``NetworkConfig`` field values, e.g. ``{"mul": 8}`` for a smaller network.
    node_features : {"onehot_mass", "descriptors"}
        Species encoding of the node inputs (fixes the input width with the variant).

    Raises
    ------
    ValueError
        An option that ``NetworkConfig`` does not have, or an invalid value.
    """
    names = {f.name for f in fields(NetworkConfig)}
    opts = dict(options or {})
    unknown = sorted(set(opts) - names)
    if unknown:
        raise ValueError(f"unknown network option(s) {unknown}; known: {sorted(names)}")
    if "input_dim" in opts:
        raise ValueError("input_dim follows from the variant and node features; do not set it")
    return NetworkConfig.for_variant(check_variant(variant), node_features, **opts)


def train_from_records(
    records: Sequence[TrainingRecord],
    out_dir: str | os.PathLike[str],
    *,
    variant: str = DEFAULT_VARIANT,
    members: int = 5,
    seed: int = 0,
    training: TrainConfig | None = None,
    network_options: Mapping[str, Any] | None = None,
    jobs: int = 1,
    callback: MemberCallback | None = None,
    metadata: Mapping[str, Any] | None = None,
    node_features: str = "onehot_mass",
    smoothing_window: int = 101,
    mlip_store: Any = None,
    stored_only: bool = False,
    say: Callable[[str], None] | None = None,
    calibrate_sigma: bool = True,
) -> Ensemble:
    """Train an ensemble on ``records`` and write it to ``out_dir``.

    Parameters
    ----------
    records : sequence of TrainingRecord
    out_dir : path
        Ensemble folder; rerunning the same call resumes unfinished members.
    variant : str
        A name of :data:`betenet_model.variants.VARIANTS`.
    members, seed : int
        Ensemble size and seed.
    training : TrainConfig, optional
        Optimiser and schedule (default: the paper's).
    network_options : dict, optional
        ``NetworkConfig`` overrides.
    jobs : int
        Members trained in parallel processes.
    callback : callable, optional
        Per-epoch progress ``callback(member, epoch, train_loss, val_loss, stage)``.
    metadata : dict, optional
        Stored in ``ensemble.json`` (data source, command line ...).
    node_features : str
        The paper's one-hot × mass species encoding, element descriptors
        (:mod:`betenet_model.elements`; an element unseen in training is not blank), or a
        foundation mode (descriptors + a universal potential's atom features).
    smoothing_window : int
        Savitzky–Golay window (points of 0.1 meV) putting the α²F targets on the grid
        (:class:`betenet_model.targets.ModelGrid`; 101 = the paper's 10 meV).
    mlip_store : JobStore, optional
        Where the atom features and phonon DOS a foundation mode or the ``dos`` head need are
        reused from and stored (:func:`workflows.ml.mlip_inputs.mlip_inputs`); rows whose
        inputs cannot be had are left out with a line to ``say``.
    stored_only : bool
        Take only stored MLIP documents (rows without one are left out).
    calibrate_sigma : bool
        Fit the σ scale on the out-of-bag rows and save it in the manifest
        (:func:`workflows.ml.evaluate.calibrate`; needs a bootstrap ensemble of ≥ 2 members).
    """
    if not records:
        raise ValueError("no training records")
    net = network_config(variant, network_options, node_features)
    config = EnsembleConfig(network=net, variant=check_variant(variant),
                            training=training or TrainConfig(), members=members, seed=seed,
                            node_features=node_features, smoothing_window=smoothing_window)
    needs = MLIPNeeds.of_config(config)
    inputs = None
    if needs:
        (say or (lambda _m: None))(f"training needs {needs.describe()} of {len(records)} rows "
                                   "(stored documents reused, missing ones computed)")
        rows = mlip_inputs([(r.id, r.structure) for r in records], needs, mlip_store,
                           stored_only, say)
        report_dropped([r.id for r in records], rows, "training", say or (lambda _m: None))
        keep = [k for k, row in enumerate(rows) if "error" not in row]
        records, inputs = [records[k] for k in keep], [rows[k] for k in keep]
        if not records:
            raise ValueError(f"no training row has {needs.describe()}")
    samples = records_to_samples(records, variant, config.grid, inputs)
    ensemble = train_ensemble(samples, config, out_dir, jobs=jobs, callback=callback,
                              metadata={"formulas": [r.formula for r in records],
                                        **dict(metadata or {})})
    if calibrate_sigma and config.members > 1 and config.bootstrap:
        from workflows.ml.evaluate import calibrate

        calibrate(ensemble, records, samples, config.training.mu_star)
    return ensemble


def train_from_data(
    data: DataOptions,
    out_dir: str | os.PathLike[str],
    *,
    variant: str = DEFAULT_VARIANT,
    members: int = 5,
    network_options: Mapping[str, Any] | None = None,
    node_features: str = "onehot_mass",
    say: Callable[[str], None] | None = None,
    **options: Any,
) -> Ensemble:
    """Read the rows ``data`` names and train an ensemble on them (what ``bete train`` does).

    Parameters
    ----------
    data : DataOptions
        Sources, protocol and split side (:func:`workflows.ml.training_data.load_training_data`);
        ``data.phonon_store`` is the MLIP document store, opened only when the model takes
        atom features (a foundation mode) or a phonon DOS (the ``dos`` head).
    out_dir, variant, members, network_options, node_features
        As for :func:`train_from_records`.
    say : callable, optional
        Progress lines: the rows read, what is trained on them, MLIP inputs.
    **options
        The other keywords of :func:`train_from_records` (``seed``, ``training``, ``jobs``,
        ``callback``, ``metadata``, ``smoothing_window`` ...).

    Raises
    ------
    ValueError
        An unknown variant, node features or network option, or rows that cannot be read
        (the message names the source and the fix).
    OSError
        A source or the MLIP store cannot be opened.
    """
    variant = check_variant(variant)
    tell = say or (lambda _m: None)
    records = load_training_data(data, variant, tell)
    formulas = [r.formula for r in records]
    shown = ", ".join(formulas[:20]) + (f", ... ({len(formulas) - 20} more)"
                                        if len(formulas) > 20 else "")
    tell(f"training {members} {variant} member(s) on {len(records)} structures ({shown}) "
         f"-> {out_dir}")
    takes_mlip = (foundation_potential(node_features)
                  or dict(network_options or {}).get("head") == "dos")
    mlip_store = open_mlip_store(data.phonon_store) if takes_mlip else None
    try:
        return train_from_records(records, out_dir, variant=variant, members=members,
                                  network_options=network_options, node_features=node_features,
                                  mlip_store=mlip_store, say=say, **options)
    finally:
        if mlip_store is not None:
            mlip_store.close()
