"""Weights of an e3nn ``gate_points_2101`` network (the paper's code) loaded into BeteNet."""

from __future__ import annotations

from typing import cast

import torch

from .species_product import ScalarAttrTensorProduct

__all__ = ["load_reference_state_dict"]


def load_reference_state_dict(net: torch.nn.Module, state_dict: dict) -> None:
    """Load weights of an e3nn ``gate_points_2101`` network with the same hyper-parameters.

    Accepts the state dict of ``shared/bench/reference_gate_points.py``'s ``ReferenceNet``
    (keys ``embed.*``, ``layers.{k}.first.{sc,lin1,fc,lin2}.*`` and ``layers.{last}.*``); e3nn
    buffers (``output_mask``, tabulated Wigner symbols) are ignored.

    Raises
    ------
    ValueError
        A parameter is missing or has another shape.
    """
    mapped = {}
    last = len(cast(torch.nn.ModuleList, net.layers)) - 1
    for key, value in state_dict.items():
        if (
            "output_mask" in key
            or "_compiled" in key
            or key.endswith("tp.weight")
            or ".second." in key
        ):
            continue
        parts = key.split(".")
        if parts[0] == "layers":
            k = int(parts[1])
            rest = parts[3:] if parts[2] == "first" else parts[2:]
            new = ["layers", str(k)] + (["conv"] if k != last else []) + rest
            mapped[".".join(new)] = value
        else:
            mapped[key] = value
    tps = {
        name: mod for name, mod in net.named_modules() if isinstance(mod, ScalarAttrTensorProduct)
    }
    flats = {}
    for name, mod in tps.items():
        flat = mapped.pop(f"{name}.weight", None)
        if flat is None or tuple(flat.shape) != (mod.weight_numel,):
            raise ValueError(
                f"The reference weight {name}.weight is missing or has another shape: "
                "not the same architecture."
            )
        flats[name] = flat
    own = {k: v for k, v in net.named_parameters() if k.rsplit(".", 1)[0] not in tps}
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise ValueError(f"The reference weights lack {missing}: not the same architecture.")
    for key, value in mapped.items():
        if key not in own:
            raise ValueError(f"Unexpected reference weight {key!r}: not the same architecture.")
        if tuple(own[key].shape) != tuple(value.shape):
            raise ValueError(
                f"Weight {key!r} has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)}: not the same architecture."
            )
    with torch.no_grad():
        for key, value in mapped.items():
            own[key].copy_(value)
    for name, flat in flats.items():
        tps[name].load_e3nn_weight(flat)
