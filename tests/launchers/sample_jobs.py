"""Tiny real jobflow jobs for the FireWorks tests (importable by worker processes)."""

from __future__ import annotations

import numpy as np
from jobflow import Flow, Response, job


@job(data=["a2f"])
def make_spectrum(scale: float) -> dict:
    """A fake α²F: an array routed to the ``data`` store."""
    omega = np.linspace(0.0, 50.0, 64)
    a2f = scale * np.exp(-(((omega - 20.0) / 5.0) ** 2))
    return {"doc_type": "elph_task", "scale": scale, "a2f": a2f}


@job
def integrate(spectrum: dict) -> dict:
    """Uses the array of the parent job (resolved from the data store)."""
    return {"doc_type": "summary", "total": float(np.sum(spectrum["a2f"]))}


@job
def fail_unless(path: str) -> str:
    """Fails until ``path`` exists (for rerun tests)."""
    import os

    if not os.path.exists(path):
        raise RuntimeError(f"{path} missing")
    return "ok"


@job
def spawn(n: int) -> Response:
    """A job that replaces itself by a new flow (dynamic workflows)."""
    return Response(replace=Flow([make_spectrum(float(n))]))


def two_job_flow(scale: float, key: str | None = "auto") -> Flow:
    """make_spectrum → integrate, with ``input_hash`` metadata."""
    first = make_spectrum(scale)
    second = integrate(first.output)
    metadata = {} if key is None else {"input_hash": f"hash-{scale}" if key == "auto" else key}
    return Flow([first, second], name=f"demo-{scale}", metadata=metadata)
