"""Mock QE at exactly one seam: ``workflows.qe.run.run_qe``.

The fake checks chosen namelist keys of the input the flow wrote against the reference
input harvested with real QE (``tests/data/qe/al``), then copies that run's real outputs
in (renaming the reference prefix ``al`` to the flow's prefix).  Regenerate the reference
data with ``scripts/harvest_qe_testdata.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import DATA
from workflows.qe.inputs import QEInput
from workflows.qe.run import QERunResult

REFERENCE = DATA / "qe" / "al"

# step → (reference input, reference output, files to copy (reference name, flow name))
_OUTPUTS = {
    "scf_dense": ("scf_dense.in", "scf_dense.out",
                  [("data-file-schema.xml", "tmp/{p}.save/data-file-schema.xml")]),
    "scf": ("scf.in", "scf.out", [("data-file-schema.xml", "tmp/{p}.save/data-file-schema.xml")]),
    "ph": ("ph.in", "ph.out", [(f"al.dyn{i}", f"{{p}}.dyn{i}") for i in range(4)]
           + [("elph_dir", "elph_dir")]),
    "q2r": ("q2r.in", "q2r.out", [("al.fc", "{p}.fc")]),
    "matdyn": ("matdyn.in", "matdyn.out", [(f"a2F.dos{i}", f"a2F.dos{i}") for i in range(1, 11)]
               + [("lambda", "lambda"), ("al.phdos", "{p}.phdos")]),
}
CHECKED_KEYS = {
    "scf_dense": ["la2f", "ecutwfc", "ecutrho", "smearing", "degauss"],
    "scf": ["ecutwfc", "ecutrho", "smearing", "degauss"],
    "ph": ["electron_phonon", "el_ph_sigma", "el_ph_nsigma", "ldisp", "nq1", "nq2", "nq3"],
    "q2r": ["la2f"],
    "matdyn": ["la2f", "dos", "nk1", "deltae"],
}


class FakeQE:
    """Callable replacing ``run_qe``; records the steps it served."""

    def __init__(self, prefix: str = "bete") -> None:
        self.prefix = prefix
        self.calls: list[str] = []

    def __call__(self, code, input_file, directory=".", output_file=None, **_kw):
        directory = Path(directory)
        step = Path(input_file).stem
        key = "matdyn" if step.startswith("matdyn") else step
        ref_in, ref_out, files = _OUTPUTS[key]
        written = QEInput.from_file(directory / input_file)
        reference = QEInput.from_file(REFERENCE / ref_in)
        for name in CHECKED_KEYS[key]:
            if written.get(name) != reference.get(name):
                raise AssertionError(f"{step}: {name} = {written.get(name)!r}, the reference "
                                     f"run used {reference.get(name)!r}")
        self.calls.append(step)
        out = directory / (output_file or f"{step}.out")
        shutil.copy(REFERENCE / ref_out, out)
        for src, dst in files:
            target = directory / dst.format(p=self.prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            if (REFERENCE / src).is_dir():
                shutil.copytree(REFERENCE / src, target, dirs_exist_ok=True)
            else:
                shutil.copy(REFERENCE / src, target)
        return QERunResult(code, [code], directory, out, 0.01, 0)
