"""Files of a trained ensemble: ``state_dict`` weights plus JSON, never pickled modules.

Layout of an ensemble directory::

    ensemble.json          manifest: variant, network and training config, member count,
                           seed, versions, training-set hash and ids, elements seen,
                           baseline (mean training spectrum), metrics
    member_000.pt          state_dict of member 0 (torch.save, loadable with weights_only)
    member_000.json        member 0: bootstrap rows, out-of-bag rows, schedule result
    checkpoints/           resumable training checkpoints (removed when a member finishes)

Writes are atomic (temporary file + rename), so a killed job never leaves a
half-written file behind under a final name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

MANIFEST = "ensemble.json"
ENSEMBLE_FORMAT = "bete-ensemble-v1"


def member_stem(index: int) -> str:
    """File stem of member ``index`` (``member_007``)."""
    return f"member_{index:03d}"


def member_weights_path(directory: str | os.PathLike[str], index: int) -> Path:
    """Path of a member's ``state_dict`` file."""
    return Path(directory) / f"{member_stem(index)}.pt"


def member_info_path(directory: str | os.PathLike[str], index: int) -> Path:
    """Path of a member's JSON record."""
    return Path(directory) / f"{member_stem(index)}.json"


def member_checkpoint_path(directory: str | os.PathLike[str], index: int) -> Path:
    """Path of a member's resumable training checkpoint."""
    return Path(directory) / "checkpoints" / f"{member_stem(index)}.ckpt.pt"


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write JSON atomically (indented, keys in insertion order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text())


def save_state_dict(path: str | os.PathLike[str], module: torch.nn.Module) -> None:
    """Save ``module.state_dict()`` (tensors moved to CPU) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state_dict(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load a ``state_dict`` file with ``weights_only=True`` (no code is unpickled)."""
    return torch.load(path, map_location=device, weights_only=True)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
