"""Errors raised by the QE part of the project, each naming the cause and the fix."""

from __future__ import annotations


class BeteInputError(ValueError):
    """Bad user input (structure, settings, pseudopotentials) detected before any QE run."""


class MissingPseudopotentialError(BeteInputError):
    """An element has no pseudopotential in the chosen family."""

    def __init__(self, element: str, family: str) -> None:
        self.element = element
        self.family = family
        super().__init__(
            f"no pseudopotential for {element} in family {family}; point --pseudos "
            f"(or BETE_PSEUDO_FAMILY) at a family that covers {element}, e.g. a pslibrary "
            "or SSSP directory"
        )


class QENotInstalledError(RuntimeError):
    """A QE executable is not on PATH (or not where the settings say)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        super().__init__(
            f"Quantum ESPRESSO executable {executable!r} not found; install it with "
            "'apt-get install -y quantum-espresso' (Debian/Ubuntu) or set BETE_PW_CMD/"
            "BETE_PH_CMD/BETE_Q2R_CMD/BETE_MATDYN_CMD to your cluster module's executables"
        )


class MPILauncherNotFoundError(QENotInstalledError):
    """The MPI launcher of the settings (``mpi_cmd``: srun, mpirun, ...) is not on PATH."""

    def __init__(self, launcher: str) -> None:
        self.executable = launcher
        RuntimeError.__init__(
            self,
            f"MPI launcher {launcher!r} (setting mpi_cmd) not found on this machine; set "
            "mpi_cmd to the launcher here (e.g. mpirun: BETE_MPI_CMD=mpirun or mpi_cmd in "
            "bete_settings.yaml), or to an empty string to run QE serially"
        )


class QEError(RuntimeError):
    """A QE run failed; ``error_line`` is QE's own message (or the reason it was judged failed)."""

    def __init__(self, executable: str, error_line: str, directory: str | None = None,
                 kind: str | None = None) -> None:
        self.executable = executable
        self.error_line = error_line
        self.directory = directory
        self.kind = kind
        where = f" in {directory}" if directory else ""
        super().__init__(f"{executable} failed{where}: {error_line}")
