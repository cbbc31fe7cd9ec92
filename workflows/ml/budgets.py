"""Training budgets: named schedule and network sizes for ``bete train --budget``.

``paper`` is the published BETE-NET set-up (the :class:`~betenet_model.training.TrainConfig`
and network defaults: stage-3 patience 5000, cap 20 000 epochs, 2.46 M parameters), made for
~800 α²F spectra; on tens of records each member runs for tens of minutes.  ``small`` is the
set-up of the earlier shipped ``fast-v1-cso`` ensemble for small data sets: a reduced network and a
shortened tempering schedule.  Measured on 2 shared cores (``bete train --data fast-v1
--members 5 --budget small``, see docs/model.md): a few minutes per ensemble.

Explicit command-line options (``--max-epochs``, ``--network mul=...``) override a budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["TrainingBudget", "BUDGETS", "get_budget"]


@dataclass(frozen=True)
class TrainingBudget:
    """A named set of training-schedule and network overrides.

    Attributes
    ----------
    name : str
    description : str
        One line for ``--help``.
    training : Mapping
        :class:`~betenet_model.training.TrainConfig` field → value.
    network : Mapping
        ``NetworkConfig`` option → value (as ``--network KEY=VALUE``).
    """

    name: str
    description: str
    training: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] = field(default_factory=dict)


BUDGETS: Mapping[str, TrainingBudget] = MappingProxyType({
    "paper": TrainingBudget(
        "paper", "the published set-up (stage-3 patience 5000, cap 20000 epochs, full network); "
        "for hundreds of records, tens of minutes per member"),
    "small": TrainingBudget(
        "small", "small data (tens of records): peak window 100, stage-3 patience 300, cap 2000 "
        "epochs, network mul=8 embed_dim=32 radial_neurons=64 (the earlier fast-v1-cso "
        "demo's set-up); minutes per ensemble",
        training=MappingProxyType({"peak_window": 100, "patience_stage3": 300,
                                   "max_epochs": 2000}),
        network=MappingProxyType({"mul": 8, "embed_dim": 32, "radial_neurons": 64})),
})
"""Every budget by name."""


def get_budget(name: str) -> TrainingBudget:
    """The budget ``name``; a ``ValueError`` naming the choices for an unknown one."""
    try:
        return BUDGETS[name]
    except KeyError:
        raise ValueError(f"unknown training budget {name!r}; choose one of "
                         f"{', '.join(BUDGETS)}") from None
