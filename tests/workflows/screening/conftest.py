"""Fixtures: a tiny ensemble, candidate folders, and a fake DFPT run at the local-runner seam."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from betenet_model.training import TrainConfig
from stores.datasets import load_fast_v1
from stores.schemas import A2FSpectrum, ElphTaskDocument
from workflows.common.physics import einstein_a2f, superconductivity
from workflows.qe.flows import ElphFlowMaker
from workflows.qe.local import run_flow_locally

TINY_NETWORK = {"mul": 4, "embed_dim": 8, "radial_neurons": 8}


def fcc(el: str, a: float) -> Structure:
    return Structure(Lattice.cubic(a), [el] * 4,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def bcc(el: str, a: float) -> Structure:
    return Structure(Lattice.cubic(a), [el] * 2, [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A 2-member ensemble trained for a few epochs on 8 fast-v1 records."""
    from workflows.ml.train import train_from_records

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("model") / "ens"
    train_from_records(load_fast_v1(None)[:8], out, members=2, seed=1,
                       training=TrainConfig(max_epochs=8, schedule="early_stopping",
                                            checkpoint_every=0),
                       network_options=TINY_NETWORK)
    torch.set_num_threads(threads)
    return out


@pytest.fixture
def candidate_dir(tmp_path):
    """Al (twice, in two cells), Cu, Nb, Li, a disordered cell and an unreadable file."""
    d = tmp_path / "cands"
    d.mkdir()
    fcc("Al", 4.04).to(filename=str(d / "Al.cif"))
    fcc("Al", 4.00).to(filename=str(d / "Al_again.json"))
    fcc("Cu", 3.61).to(filename=str(d / "Cu.cif"))
    bcc("Nb", 3.30).to(filename=str(d / "POSCAR"))
    bcc("Li", 3.44).to(filename=str(d / "Li.vasp"))
    Structure(Lattice.cubic(3.0), [{"Al": 0.5, "Mg": 0.5}], [[0, 0, 0]]).to(
        filename=str(d / "AlMg.cif"))
    (d / "broken.cif").write_text("this is not a CIF\n")
    return d


FAKE_TC = {"Al": (30.0, 0.45), "Cu": (25.0, 0.15), "Nb": (20.0, 1.0), "Li": (40.0, 0.4),
           "Pb": (6.0, 1.3), "V": (25.0, 0.9)}
"""Formula → (Einstein frequency meV, λ) of the fake DFPT results."""


_REAL_RUN_FLOW_LOCALLY = run_flow_locally


class FakeDFPT:
    """Replaces the local runner inside run_elph: writes a task document, counts runs.

    ``interrupt_after``: raise KeyboardInterrupt at the start of that many-th run (1-based).
    """

    def __init__(self, unstable: tuple[str, ...] = ()):
        self.calls: list[str] = []
        self.interrupt_at: int | None = None
        self.unstable = unstable

    def __call__(self, flow, store, verbose=False):
        if self.interrupt_at is not None and len(self.calls) + 1 == self.interrupt_at:
            self.interrupt_at = None
            raise KeyboardInterrupt
        last = flow.jobs[-1]
        if getattr(last.function, "__name__", "") != "task_document_job":
            # not an el-ph flow (screening, phonon-only): the real runner.  A module that
            # imported run_flow_locally while the fake was installed holds the fake.
            return _REAL_RUN_FLOW_LOCALLY(flow, store, verbose)
        structure, generator = last.function_args[0], last.function_args[1]
        source_id, key = last.function_args[6], last.function_args[7]
        self.calls.append(key)
        formula = structure.composition.reduced_formula
        w_e, lam = FAKE_TC.get(formula, (20.0, 0.3))
        freq = np.linspace(0.1, 60, 300)
        a2f = einstein_a2f(freq, w_e, lam, width_meV=2.0)
        sc = superconductivity(freq, a2f)
        stable = formula not in self.unstable
        identity = ElphFlowMaker(input_set_generator=generator).protocol_identity()
        doc = ElphTaskDocument(
            protocol_identity=identity, protocol_fingerprint=identity.fingerprint(),
            status="completed" if stable else "unstable",
            formula=formula, nsites=len(structure),
            elements=sorted(e.symbol for e in structure.composition.elements),
            chemsys=structure.composition.chemical_system, structure=structure.as_dict(),
            source_id=source_id, preset=str(generator.preset), parameters={}, input_hash=key,
            pseudopotentials={}, k_grid=[4, 4, 4], k_grid_dense=[8, 8, 8], q_grid=[2, 2, 2],
            ecutwfc_Ry=25, ecutrho_Ry=200, reference_sigma_Ry=0.02, lambda_=sc.lambda_,
            omega_log_K=sc.omega_log_K, omega_2_K=sc.omega_2_K,
            tc_allen_dynes_K=sc.tc_allen_dynes_K, tc_mcmillan_K=sc.tc_mcmillan_K,
            a2f_spectra=[A2FSpectrum(sigma_Ry=0.02, frequencies_meV=freq.tolist(),
                                     a2f=a2f.tolist())],
            dynamically_stable=stable, min_frequency_meV=0.1 if stable else -3.0)
        store.update({"uuid": last.uuid, "index": 1, "output": doc.model_dump(mode="json"),
                      "completed_at": f"2026-01-01T00:00:{len(self.calls):02d}",
                      "metadata": {}}, key=["uuid", "index"])
        return doc


@pytest.fixture
def fake_dfpt(monkeypatch):
    fake = FakeDFPT()
    monkeypatch.setattr("workflows.qe.local.run_flow_locally", fake)
    return fake
