"""The ``bete`` command line.

Every module in this package that defines ``register(subparsers)`` adds its
sub-commands; ``main()`` parses and dispatches to the ``func`` a sub-command
set.  Errors the user can fix (bad input, missing programs) print one line on
stderr and exit with status 2; nothing is printed on stdout in that case.

Logging: one handler on stderr prints every record once.  FireWorks and jobflow
attach console handlers of their own (on stdout) to some loggers; those are
removed before they print (:class:`OneConsole`), so their lines are not doubled
and stdout holds only the command's results (``--format json`` stays parseable).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import pkgutil
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from launchers.cli.common import UserError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Loggers that get a console handler of their own from FireWorks (``get_fw_logger``:
#: stdout at the LaunchPad's ``strm_lvl``) or jobflow (``initialize_logger``, run for
#: every job a FireWorks worker runs).
OWN_CONSOLE_LOGGERS = ("launchpad", "rocket.launcher", "queue.launcher", "rlaunch", "filepad",
                       "jobflow.core.job", "jobflow.managers.local")


#: Dependency warnings that tell a bete user nothing they can act on: (message regex,
#: category, module regex).  phonopy 4 warns on every cell whose 'auto' primitive matrix is
#: not the identity (a note for scripts written for phonopy 3; bete hands phonopy the
#: primitive cell QE used); jobflow's FutureWarnings concern its own API.
SILENCED_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (r"primitive_matrix defaulted to 'auto'", UserWarning, ""),
    ("", FutureWarning, "jobflow"),
)


#: The project's own packages: warnings raised from their files are always shown (data
#: warnings such as spectra beyond the model grid); other packages' only with ``--verbose``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("launchers", "workflows", "stores", "betenet_model")


def from_project(filename: str) -> bool:
    """Whether a warning's file belongs to one of :data:`PROJECT_PACKAGES`."""
    try:
        relative = Path(filename).resolve().relative_to(PROJECT_ROOT)
    except (ValueError, OSError):
        return False
    return relative.parts[:1] in [(name,) for name in PROJECT_PACKAGES]


@contextlib.contextmanager
def third_party_warnings(verbose: bool) -> Iterator[None]:
    """Show other packages' warnings only when ``verbose``; the project's own always.

    SevenNet's "No tensor product accelerator" on every run, and the like, tell a user
    nothing they can act on.  Undone on exit.
    """
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if verbose or from_project(filename):
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


class OneConsole(logging.Filter):
    """Remove a library's console handlers before they print a record.

    Set on the loggers of :data:`OWN_CONSOLE_LOGGERS`.  Console handlers
    (plain :class:`logging.StreamHandler`) of the record's logger and of the
    ancestors it propagates to are removed; file handlers (FireWorks' log
    directory) stay.  The record then reaches the ``bete`` handler on stderr.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Detach the console handlers on the record's way to the root; keep the record."""
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:
                    logger.removeHandler(handler)
            logger = logger.parent if logger.propagate else None
        return True


@contextlib.contextmanager
def console_logging(verbose: bool = False) -> Iterator[logging.Handler]:
    """Log every record once on stderr (DEBUG with ``verbose``, else INFO) while inside.

    Yields
    ------
    logging.Handler
        The stderr handler (removed again on exit, with the filters, so
        that ``main`` can be called repeatedly, e.g. by tests).
    """
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)  # records that propagate from DEBUG-level library loggers too
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    one_console = OneConsole()
    for name in OWN_CONSOLE_LOGGERS:
        logging.getLogger(name).addFilter(one_console)
    try:
        yield handler
    finally:
        for name in OWN_CONSOLE_LOGGERS:
            logging.getLogger(name).removeFilter(one_console)
        root.removeHandler(handler)
        root.setLevel(previous_level)


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows every option's default (where it has one and the text does not)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default in (None, False, argparse.SUPPRESS) or action.nargs == 0
                or "default" in text.lower() or not action.option_strings and not text):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})".lstrip()


def _finish(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """Default formatter and a description (the one-line help) on every sub-parser."""
    parser.formatter_class = HelpFormatter
    if parser.description is None and help_text:
        parser.description = help_text[0].upper() + help_text[1:] + "."
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                _finish(sub, helps.get(name))


def version() -> str:
    """The installed ``bete`` version (package metadata), or the source tree's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("bete")
    except PackageNotFoundError:
        return "unknown (not installed; run from a source tree)"


def build_parser() -> argparse.ArgumentParser:
    """Parser with every sub-command module of this package registered."""
    parser = argparse.ArgumentParser(
        prog="bete",
        description="DFT-to-ML pipeline for electron-phonon superconductors (QE DFPT + BETE-NET).",
    )
    parser.add_argument("--version", action="version", version=f"bete {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    _finish(parser)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the Ctrl-C path while a command runs.

    A background job (``nohup bete campaign ... &``) ignores SIGINT, and a batch system
    sends SIGTERM before its kill: either way the running QE processes are stopped, claims
    released, and the rerun resumes.  Only in the main thread; the old handler comes back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bete`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    for message, category, module in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    try:
        with (sigterm_as_interrupt(), console_logging(args.verbose),
              third_party_warnings(args.verbose)):
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"bete: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bete: interrupted; rerun the same command to continue.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
