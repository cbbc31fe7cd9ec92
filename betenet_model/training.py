"""Full-batch training with the tempered (epoch-wise double descent) schedule.

BETE-NET trains on the whole training set at once (one optimiser step per
epoch), minimising the mean squared error over the 51 spectrum bins with AdamW.
The stopping rule is *tempering* (Gibson et al., npj Comput. Mater. 11, 7
(2025)):

1. stage 1 — early stopping with patience 15 (the classical minimum);
2. stage 2 — keep training past the over-fitting peak: track the highest
   validation loss seen in stage 2 and leave once the validation loss has
   stayed *below* that peak for 500 consecutive epochs (a return to or above
   the peak resets the count);
3. stage 3 — early stopping with patience 5000; the weights kept are the best
   of stage 3.

The schedule is a pure state machine (:class:`TemperingSchedule`), so it can be
tested on a synthetic loss curve; :class:`EarlyStopping` is the plain mode.
:func:`train_model` runs the loop (a :class:`_TrainingRun` carries its state
from epoch to epoch), writes a checkpoint every ``checkpoint_every`` epochs
(model, optimiser, schedule, best weights, RNG states, config, versions:
``state_dict`` only, never a pickled module) and resumes from it, giving the
same final weights as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .targets import model_grid
from .tc import DEFAULT_MU_STAR, allen_dynes_tc, log_tc_loss, moment_loss
from .train_config import TrainConfig

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "bete-train-checkpoint-v1"
# --------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class ScheduleStep:
    """What the schedule decided after one epoch.

    Attributes
    ----------
    stage : int
        Stage after this epoch (1, 2, 3; plain early stopping is always 1).
    keep : bool
        These weights are the ones to keep (new best of the current keeping rule).
    stop : bool
        Training is finished.
    transition : bool
        The stage changed at this epoch.
    """

    stage: int
    keep: bool
    stop: bool
    transition: bool = False


@dataclass
class EarlyStopping:
    """Plain early stopping: stop after ``patience`` epochs without a new minimum.

    Examples
    --------
    >>> es = EarlyStopping(patience=2)
    >>> [es.update(e, v).stop for e, v in enumerate([3.0, 2.0, 2.5, 2.4])]
    [False, False, False, True]
    """

    patience: int = 15
    best: float = math.inf
    best_epoch: int = -1
    wait: int = 0
    done: bool = False

    @property
    def stage(self) -> int:
        """Always 1."""
        return 1

    def update(self, epoch: int, val_loss: float) -> ScheduleStep:
        """Record the validation loss of ``epoch`` and decide."""
        if self.done:
            return ScheduleStep(1, False, True)
        keep = val_loss < self.best
        if keep:
            self.best, self.best_epoch, self.wait = float(val_loss), int(epoch), 0
        else:
            self.wait += 1
        self.done = self.wait >= self.patience
        return ScheduleStep(1, keep, self.done)

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state for checkpoints."""
        return asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        for key, value in state.items():
            setattr(self, key, value)


@dataclass
class TemperingSchedule:
    """The three-stage tempering rule as a state machine.

    Call :meth:`update` once per epoch with the validation loss; it returns a
    :class:`ScheduleStep`.  Weights to keep: the best of stage 1 until stage 2
    finds a lower loss (so a run capped by ``max_epochs`` still returns
    sensible weights), then, from the first stage-3 epoch on, only the best of
    stage 3.

    Parameters
    ----------
    patience : int
        Stage-1 patience (epochs without a new stage-1 minimum).
    peak_window : int
        Consecutive epochs below the stage-2 peak that end stage 2.
    patience_stage3 : int
        Stage-3 patience.

    Examples
    --------
    >>> s = TemperingSchedule(patience=1, peak_window=2, patience_stage3=1)
    >>> [s.update(e, v).stage for e, v in enumerate([3, 2, 2.5, 3, 2.8, 2.6, 1, 1.5])]
    [1, 1, 2, 2, 2, 3, 3, 3]
    >>> s.done, s.best_epoch
    (True, 6)
    """

    patience: int = 15
    peak_window: int = 500
    patience_stage3: int = 5000
    stage_: int = 1
    best: float = math.inf          # best of stage 1, then the kept best
    best_epoch: int = -1
    wait: int = 0                   # epochs without improvement (stages 1 and 3)
    peak: float = -math.inf         # highest validation loss seen in stage 2
    peak_epoch: int = -1
    below: int = 0                  # consecutive stage-2 epochs below the peak
    done: bool = False
    transitions: list[int] = field(default_factory=list)  # epochs that ended stages 1 and 2

    @property
    def stage(self) -> int:
        """Current stage (1, 2 or 3)."""
        return self.stage_

    def update(self, epoch: int, val_loss: float) -> ScheduleStep:
        """Record the validation loss of ``epoch`` and decide.

        Parameters
        ----------
        epoch : int
            Epoch number (only recorded).
        val_loss : float
            Validation loss after this epoch; NaN counts as no improvement.

        Returns
        -------
        ScheduleStep
        """
        if self.done:
            return ScheduleStep(self.stage_, False, True)
        v = float(val_loss)
        if self.stage_ == 1:
            keep = v < self.best
            if keep:
                self.best, self.best_epoch, self.wait = v, int(epoch), 0
            else:
                self.wait += 1
            if self.wait >= self.patience:
                self.stage_, self.wait = 2, 0
                self.transitions.append(int(epoch))
                return ScheduleStep(2, keep, False, True)
            return ScheduleStep(1, keep, False)
        if self.stage_ == 2:
            keep = v < self.best
            if keep:
                self.best, self.best_epoch = v, int(epoch)
            if not v < self.peak:          # a new (or equal) peak: count starts again
                self.peak, self.peak_epoch, self.below = v, int(epoch), 0
            else:
                self.below += 1
            if self.below >= self.peak_window:
                self.stage_, self.wait = 3, 0
                self.best, self.best_epoch = math.inf, -1   # keep the stage-3 best only
                self.transitions.append(int(epoch))
                return ScheduleStep(3, keep, False, True)
            return ScheduleStep(2, keep, False)
        keep = v < self.best
        if keep:
            self.best, self.best_epoch, self.wait = v, int(epoch), 0
        else:
            self.wait += 1
        self.done = self.wait >= self.patience_stage3
        return ScheduleStep(3, keep, self.done)

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state for checkpoints."""
        return asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        for key, value in state.items():
            setattr(self, key, list(value) if key == "transitions" else value)


def make_schedule(config: TrainConfig) -> TemperingSchedule | EarlyStopping:
    """The schedule a :class:`TrainConfig` asks for."""
    if config.schedule == "tempered":
        return TemperingSchedule(config.patience, config.peak_window, config.patience_stage3)
    return EarlyStopping(config.patience)


# --------------------------------------------------------------------------- training loop
@dataclass
class TrainResult:
    """Outcome of :func:`train_model` (the model holds the kept weights on return).

    Attributes
    ----------
    epochs : int
        Epochs run in total (including those before a resume).
    best_epoch : int
        Epoch whose weights were kept.
    best_val_loss : float
        Validation loss of the kept weights.
    final_stage : int
        Stage reached (1 for plain early stopping).
    stopped_by : str
        ``"schedule"`` or ``"max_epochs"``.
    transitions : list of int
        Epochs that ended stages 1 and 2 (tempered schedule).
    train_loss, val_loss : list of float
        Loss per epoch.
    resumed_from : int or None
        Epoch of the checkpoint the run resumed from.
    wall_s : float
        Seconds spent in this call.
    """

    epochs: int
    best_epoch: int
    best_val_loss: float
    final_stage: int
    stopped_by: str
    transitions: list[int]
    train_loss: list[float]
    val_loss: list[float]
    resumed_from: int | None
    wall_s: float

    def summary(self) -> dict[str, Any]:
        """JSON-able summary without the per-epoch curves."""
        out = asdict(self)
        out.pop("train_loss")
        out.pop("val_loss")
        out["final_train_loss"] = self.train_loss[-1] if self.train_loss else None
        return out


class TrainingInterrupted(RuntimeError):
    """Raised by a progress callback to stop training (tests simulate a kill with it)."""


def weighted_mse(pred: torch.Tensor, target: torch.Tensor,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over rows and bins, rows weighted by multiplicity.

    Parameters
    ----------
    pred, target : Tensor, shape (n, n_bins)
    weights : Tensor, shape (n,), optional
        Row multiplicities (a bootstrap resample); ``None`` = all ones.

    Returns
    -------
    Tensor
        Scalar Σ_i w_i |pred_i − target_i|² / (Σ_i w_i · n_bins).
    """
    err = ((pred - target) ** 2).mean(dim=1)
    if weights is None:
        return err.mean()
    return (weights * err).sum() / weights.sum()


def supervised_loss(pred: torch.Tensor, target: torch.Tensor, tc: torch.Tensor | None = None,
                    weights: torch.Tensor | None = None, tc_loss_weight: float = 0.01,
                    mu_star: float = DEFAULT_MU_STAR,
                    moment_loss_weight: float = 0.0, log_tc_pred: torch.Tensor | None = None,
                    tc_head_weight: float = 0.0) -> torch.Tensor:
    """Mixed supervision: α²F MSE where a spectrum exists, a Tc loss where only Tc does.

    ``L = MSE_α²F(spectrum rows) + moment_loss_weight · L_mom(spectrum rows)
    + tc_loss_weight · L_Tc(Tc-only rows)``, each term a multiplicity-weighted mean over its
    own rows (0 when a term has no row), with ``L_Tc`` = :func:`betenet_model.tc.log_tc_loss`
    of the Allen–Dynes Tc of the predicted spectrum on the model grid
    (:func:`betenet_model.targets.model_grid` of ``n_bins``; μ* = ``mu_star``) and ``L_mom`` =
    :func:`betenet_model.tc.moment_loss` (λ and ln ω_log of prediction and target on that
    grid). With a direct head (``log_tc_pred``, ln(1 + Tc/K) per row) ``+ tc_head_weight ·``
    the weighted mean over all rows of ``(log_tc_pred − ln(1 + Tc))²``, Tc being the label of
    a Tc-only row and the Allen–Dynes Tc of the target spectrum of a spectrum row. Without
    ``tc``, ``log_tc_pred`` and with ``moment_loss_weight`` 0 this is exactly
    :func:`weighted_mse`.

    Parameters
    ----------
    pred : Tensor, shape (n, n_bins)
    target : Tensor, shape (n, n_bins)
        NaN rows for Tc-only rows.
    tc : Tensor, shape (n,), optional
        Tc labels (K), NaN for rows supervised by their spectrum.
    weights : Tensor, shape (n,), optional
        Row multiplicities.
    tc_loss_weight, mu_star : float
    """
    if tc is None and moment_loss_weight == 0 and log_tc_pred is None:
        return weighted_mse(pred, target, weights)
    w = pred.new_ones(pred.shape[0]) if weights is None else weights
    spectrum_rows = ~torch.isnan(target[:, 0])
    tc_rows = ~spectrum_rows & (torch.zeros_like(spectrum_rows) if tc is None else ~torch.isnan(tc))
    grid = torch.as_tensor(model_grid(pred.shape[-1]), dtype=pred.dtype, device=pred.device)
    loss = pred.new_zeros(())
    if bool(spectrum_rows.any()):
        loss = loss + weighted_mse(pred[spectrum_rows], target[spectrum_rows], w[spectrum_rows])
        if moment_loss_weight > 0:
            loss = loss + moment_loss_weight * moment_loss(
                grid, pred[spectrum_rows], target[spectrum_rows], w[spectrum_rows])
    if tc is not None and bool(tc_rows.any()) and tc_loss_weight > 0:
        tc_pred = allen_dynes_tc(grid, pred[tc_rows], mu_star)
        loss = loss + tc_loss_weight * log_tc_loss(tc_pred, tc[tc_rows], w[tc_rows])
    if log_tc_pred is not None and tc_head_weight > 0:
        true = torch.full_like(log_tc_pred, float("nan"))
        if bool(spectrum_rows.any()):
            true[spectrum_rows] = torch.log1p(allen_dynes_tc(grid, target[spectrum_rows],
                                                             mu_star))
        if bool(tc_rows.any()):
            true[tc_rows] = torch.log1p(tc[tc_rows])  # type: ignore[index]
        rows = ~torch.isnan(true)
        err = (log_tc_pred[rows] - true[rows]) ** 2
        loss = loss + tc_head_weight * (w[rows] * err).sum() / w[rows].sum()
    return loss


def model_outputs(model: torch.nn.Module, inputs: Any,
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Spectra and the direct ln(1 + Tc) (None without a Tc head) of a model's forward pass."""
    predict = getattr(model, "predict", None)
    return predict(inputs) if predict is not None else (model(inputs), None)


def versions() -> dict[str, str]:
    """Versions of the libraries that shape a checkpoint."""
    out = {"torch": str(torch.__version__)}
    try:
        import e3nn

        out["e3nn"] = str(e3nn.__version__)
    except ImportError:  # pragma: no cover - e3nn is a dependency
        pass
    try:
        from importlib.metadata import version

        out["bete"] = version("bete")
    except Exception:  # pragma: no cover - not installed
        pass
    return out


def _state_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _resume_compatible(saved: Mapping[str, Any], config: TrainConfig) -> bool:
    ignore = {"max_epochs", "checkpoint_every", "device"}
    now = config.as_dict()
    try:
        saved = TrainConfig.normalized_dict(saved)
    except (TypeError, ValueError):
        return False
    return all(saved.get(k) == v for k, v in now.items() if k not in ignore)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with the configured learning rate and weight decay (fused where available)."""
    if config.fused_optimizer:
        try:
            return torch.optim.AdamW(model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - no fused kernel for this device
            logger.info("fused AdamW is not available here; using the for-loop version")
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``)."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a bete training checkpoint; delete it to start afresh")
    return data


@dataclass
class _Rows:
    """Inputs, targets, Tc labels and row weights of one side (training or validation)."""

    inputs: Any
    targets: torch.Tensor
    tc: torch.Tensor | None = None
    weights: torch.Tensor | None = None

    def to(self, device: str, dtype: torch.dtype) -> _Rows:
        """The tensors on ``device`` in ``dtype`` (the inputs stay as given)."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        return _Rows(self.inputs, self.targets.to(device=device, dtype=dtype), move(self.tc),
                     move(self.weights))


@dataclass
class _TrainingRun:
    """The state one training run carries from epoch to epoch (all of it is checkpointed)."""

    model: torch.nn.Module
    config: TrainConfig
    optimizer: torch.optim.Optimizer
    schedule: TemperingSchedule | EarlyStopping
    best_state: dict[str, torch.Tensor]
    torch_rng: torch.Generator
    py_rng: random.Random
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch: int = 0
    resumed_from: int | None = None

    @classmethod
    def start(cls, model: torch.nn.Module, config: TrainConfig) -> _TrainingRun:
        """A fresh run: optimiser, schedule and RNGs from ``config``, the model's weights kept."""
        return cls(model=model, config=config, optimizer=make_optimizer(model, config),
                   schedule=make_schedule(config), best_state=_state_copy(model),
                   torch_rng=torch.Generator().manual_seed(config.seed),  # for stochastic layers
                   py_rng=random.Random(config.seed))

    def resume(self, path: str | os.PathLike[str]) -> None:
        """Continue from the checkpoint at ``path`` if it exists and ``config`` allows it."""
        if not Path(path).is_file():
            return
        ckpt = load_checkpoint(path)
        if not _resume_compatible(ckpt["config"], self.config):
            logger.warning("checkpoint %s was written with other options; starting afresh", path)
            return
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.best_state = ckpt["best_state"]
        self.train_loss, self.val_loss = list(ckpt["train_loss"]), list(ckpt["val_loss"])
        self.torch_rng.set_state(ckpt["rng"]["torch_generator"])
        torch.set_rng_state(ckpt["rng"]["torch_global"])
        self.py_rng.setstate(_as_tuple(ckpt["rng"]["python"]))
        self.epoch = self.resumed_from = int(ckpt["epoch"])
        logger.info("resumed from %s at epoch %d", path, self.epoch)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the run's state to the checkpoint at ``path``."""
        save_checkpoint(path, {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best_state": self.best_state,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "rng": {"torch_generator": self.torch_rng.get_state(),
                    "torch_global": torch.get_rng_state(),
                    "python": self.py_rng.getstate()},
            "config": self.config.as_dict(),
            "versions": versions(),
        })

    def loss(self, rows: _Rows) -> torch.Tensor:
        """:func:`supervised_loss` of the model on ``rows`` under the run's options."""
        c = self.config
        pred, log_tc = model_outputs(self.model, rows.inputs)
        return supervised_loss(pred, rows.targets, rows.tc, rows.weights,
                               c.tc_loss_weight, c.mu_star, c.moment_loss_weight, log_tc,
                               c.tc_head_weight)

    def step(self, train: _Rows, val: _Rows) -> ScheduleStep:
        """One epoch: one optimiser step on ``train``, validation on ``val``, the schedule."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(train)
        loss.backward()
        self.optimizer.step()
        self.model.eval()
        with torch.no_grad():
            val_loss = float(self.loss(val))
        self.epoch += 1
        self.train_loss.append(float(loss.detach()))
        self.val_loss.append(val_loss)
        step = self.schedule.update(self.epoch, val_loss)
        if step.keep:
            self.best_state = _state_copy(self.model)
        if step.transition:
            logger.info("epoch %d: tempering stage %d", self.epoch, step.stage)
        return step

    def result(self, done: bool, start: float) -> TrainResult:
        """Load the kept weights into the model and say how the run went."""
        self.model.load_state_dict(self.best_state)
        return TrainResult(
            epochs=self.epoch,
            best_epoch=int(self.schedule.best_epoch),
            best_val_loss=float(self.schedule.best),
            final_stage=int(self.schedule.stage),
            stopped_by="schedule" if done else "max_epochs",
            transitions=list(getattr(self.schedule, "transitions", [])),
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            resumed_from=self.resumed_from,
            wall_s=time.perf_counter() - start,
        )


def train_model(
    model: torch.nn.Module,
    train_inputs: Any,
    train_targets: torch.Tensor,
    val_inputs: Any,
    val_targets: torch.Tensor,
    config: TrainConfig,
    *,
    train_weights: torch.Tensor | None = None,
    train_tc: torch.Tensor | None = None,
    val_tc: torch.Tensor | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    callback: Callable[[int, float, float, int], None] | None = None,
) -> TrainResult:
    """Full-batch training of ``model`` under ``config``'s schedule.

    One epoch = one forward pass on all training rows, one AdamW step, one
    validation pass.  On return the model holds the kept weights (the stage-3
    best for the tempered schedule).

    Parameters
    ----------
    model : torch.nn.Module
        Module whose ``forward(inputs)`` returns a Tensor of shape (n, n_bins);
        already initialised (seeded) by the caller.
    train_inputs, val_inputs : Any
        Whatever ``model`` consumes (e.g. a collated graph batch); reused every epoch.
        ``val_inputs=None`` validates on the training rows (logged as a warning).
    train_targets, val_targets : Tensor, shape (n, n_bins)
    config : TrainConfig
    train_weights : Tensor, shape (n_train,), optional
        Row multiplicities (bootstrap resample).
    train_tc, val_tc : Tensor, shape (n,), optional
        Tc labels (K) of rows without a spectrum (their target rows are NaN), NaN elsewhere;
        the loss is then :func:`supervised_loss` (training and validation alike).
    checkpoint_path : path, optional
        Where to write checkpoints; if a compatible one exists there, training
        resumes from it.
    callback : callable, optional
        ``callback(epoch, train_loss, val_loss, stage)`` after every epoch; may raise
        :class:`TrainingInterrupted` to stop (the last checkpoint stays).

    Returns
    -------
    TrainResult
    """
    start = time.perf_counter()
    if val_inputs is None:
        logger.warning("no validation rows: the schedule watches the training loss")
        val_inputs, val_targets, val_tc = train_inputs, train_targets, train_tc
    model.to(device=config.device, dtype=config.torch_dtype)
    train = _Rows(train_inputs, train_targets, train_tc, train_weights).to(
        config.device, config.torch_dtype)
    val = _Rows(val_inputs, val_targets, val_tc).to(config.device, config.torch_dtype)
    run = _TrainingRun.start(model, config)
    if checkpoint_path is not None:
        run.resume(checkpoint_path)
    saving = checkpoint_path is not None and bool(config.checkpoint_every)
    epoch0 = run.epoch
    done = bool(getattr(run.schedule, "done", False))
    while not done and run.epoch < config.max_epochs:
        step = run.step(train, val)
        done = step.stop
        if saving and (run.epoch % config.checkpoint_every == 0 or done):
            run.save(checkpoint_path)  # type: ignore[arg-type]
        if callback is not None:
            callback(run.epoch, run.train_loss[-1], run.val_loss[-1], step.stage)
    if saving and run.epoch > epoch0:
        run.save(checkpoint_path)  # type: ignore[arg-type]
    return run.result(done, start)


def _as_tuple(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value
