"""Hyper-parameters of one training run: :class:`TrainConfig`, without importing torch.

Its own module so that the command line derives its training options (types, defaults)
from the dataclass without loading torch; :mod:`betenet_model.training` uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DEFAULT_MU_STAR = 0.10
"""μ* of every Tc of the model package unless chosen otherwise (this package cannot import
``stores.constants.DEFAULT_MU_STAR``; tests/betenet_model/test_tc.py asserts they are equal)."""
SCHEDULES = ("tempered", "early_stopping")
DTYPES = ("float32", "float64")
"""Parameter and input dtypes (names of torch dtypes)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (one ensemble member).

    Attributes
    ----------
    lr : float
        AdamW learning rate.
    weight_decay : float
        AdamW weight decay (0 in the paper).
    schedule : str
        ``"tempered"`` (three stages) or ``"early_stopping"`` (plain).
    patience : int
        Stage-1 patience (tempered) or the patience of plain early stopping, epochs.
    peak_window : int
        Stage 2 ends once the validation loss has stayed below the stage-2 peak for
        this many consecutive epochs.
    patience_stage3 : int
        Stage-3 early-stopping patience, epochs.
    max_epochs : int
        Hard cap on the number of epochs, whatever the schedule says.
    checkpoint_every : int
        Write a resumable checkpoint every this many epochs (0 = never).
    seed : int
        Seed of the weight initialisation (and of the torch/Python RNGs in training).
    dtype : str
        ``"float32"`` or ``"float64"`` for the parameters and inputs.
    device : str
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    fused_optimizer : bool
        Use AdamW's fused implementation where torch has one (same update rule, faster;
        rounding differs from the for-loop version). A saved configuration without this key
        was trained without it.
    tc_loss_weight : float
        Weight of the Tc term for rows with a Tc label but no spectrum (see
        :func:`supervised_loss`); unused when every row has a spectrum.
    mu_star : float
        μ* of the Allen–Dynes Tc in that term.
    moment_loss_weight : float
        Weight of a loss on λ and ln ω_log of the predicted against the target spectrum, for
        rows with a spectrum (0, the paper: α²F MSE only; see :func:`supervised_loss`).
    tc_head_weight : float
        Weight of the loss of a network's direct ln(1 + Tc) head (``NetworkConfig.tc_head``)
        on every row: the Tc label of a Tc-only row, the Allen–Dynes Tc of the target spectrum
        of a spectrum row.
    """

    lr: float = 5e-3
    weight_decay: float = 0.0
    schedule: str = "tempered"
    patience: int = 15
    peak_window: int = 500
    patience_stage3: int = 5000
    max_epochs: int = 20000
    checkpoint_every: int = 100
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    fused_optimizer: bool = True
    tc_loss_weight: float = 0.01
    mu_star: float = DEFAULT_MU_STAR
    moment_loss_weight: float = 0.0
    tc_head_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is unknown; use one of {SCHEDULES}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is unknown; use float32 or float64")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight decay must be >= 0, got {self.weight_decay}")
        for name in ("patience", "peak_window", "patience_stage3", "max_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (self.tc_loss_weight >= 0 and math.isfinite(self.tc_loss_weight)):
            raise ValueError(f"tc_loss_weight must be a finite number >= 0, "
                             f"got {self.tc_loss_weight}")
        for name in ("moment_loss_weight", "tc_head_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 <= self.mu_star < 1:
            raise ValueError(f"mu_star must be in [0, 1), got {self.mu_star}")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by :attr:`dtype`."""
        import torch

        return getattr(torch, self.dtype)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dictionary.

        ``tc_head_weight`` only when used, so the configurations of earlier ensembles keep
        their form and model-id digests.
        """
        data = asdict(self)
        if data["tc_head_weight"] == 0.0:
            del data["tc_head_weight"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from :meth:`as_dict` output (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}")
        return cls(**{"fused_optimizer": False, **dict(data)})

    @classmethod
    def normalized_dict(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`as_dict` of :meth:`from_dict`: a saved config with today's defaults filled in."""
        return cls.from_dict(data).as_dict()
