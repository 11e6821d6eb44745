"""Finding, checking and starting PySR and Julia for the PySR engine.

Everything here except :func:`start_julia` works without starting Julia or
importing PySR: the installed PySR is inspected by reading its source
(:func:`inspect_pysr`), and Julia is looked for on ``PATH`` and in juliapkg's
state (:func:`find_julia`).

Julia must be loaded before PyTorch: PySR's own ``__init__`` and PythonCall's
FAQ both warn that loading it after torch can corrupt the heap or clash over
``libstdc++``. :func:`start_julia` therefore imports PySR (which imports
``juliacall`` first thing) and warns, once, with
:class:`TorchBeforeJuliaWarning`, when torch is already loaded. This module
imports neither torch, PySR nor juliacall at import time.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from evomal_sr.errors import EngineUnavailableError

#: The PySR release this engine was read against in full; the floor in ``pyproject.toml``.
PYSR_FLOOR = "2.7.2"
_INSTALL = "run `pip install evomal-sr[pysr]` on a machine with internet access"
_UPGRADE = f'run `pip install -U "pysr>={PYSR_FLOOR}"`'
TORCH_FIRST_MESSAGE = (
    "torch was imported before Julia started: loading Julia after PyTorch can corrupt the heap or load "
    "clashing libstdc++ versions (PySR and PythonCall both require Julia to be loaded first), so the PySR "
    "search may crash; call evomal_sr.engines.pysr.start_julia() before anything imports torch "
    "(evomal_sr.Task, LossSearch.fit), as `evomal-sr search --engine pysr` does"
)


class TorchBeforeJuliaWarning(RuntimeWarning):
    """Julia is being started in a process that has already imported torch."""


@dataclass(frozen=True)
class PySRInstall:
    """What the installed PySR can do, read from its source without importing it.

    Attributes
    ----------
    version : str
        The distribution's version.
    source : Path
        The ``pysr/sr.py`` that was read.
    releases_gil : bool
        Whether ``PySRRegressor.fit`` calls ``equation_search._jl_call_nogil``,
        i.e. runs the search with Python's GIL released (PySR >= 2.2.0).
    parameters : frozenset of str
        Keyword names of ``PySRRegressor.__init__`` (empty when not found).
    """

    version: str
    source: Path
    releases_gil: bool
    parameters: frozenset[str]


def _calls_nogil_search(tree: ast.AST) -> bool:
    """Whether ``tree`` calls ``<anything>.equation_search._jl_call_nogil(...)``."""
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "_jl_call_nogil"
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "equation_search"
        ):
            return True
    return False


def _init_parameters(tree: ast.AST) -> frozenset[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "PySRRegressor":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    return frozenset(a.arg for a in args.posonlyargs + args.args + args.kwonlyargs) - {"self"}
    return frozenset()


def read_pysr_source(source: Path, version: str) -> PySRInstall:
    """The capabilities shown by one ``sr.py`` (missing or unparseable: none).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "sr.py"
    ...     _ = path.write_text("out = SymbolicRegression.equation_search._jl_call_nogil(X, y)")
    ...     read_pysr_source(path, "2.7.2").releases_gil
    True
    """
    try:
        tree = ast.parse(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return PySRInstall(version, Path(source), False, frozenset())
    return PySRInstall(version, Path(source), _calls_nogil_search(tree), _init_parameters(tree))


def inspect_pysr() -> PySRInstall | None:
    """The installed PySR's capabilities, or ``None`` if it is not installed (never imports it)."""
    spec = importlib.util.find_spec("pysr")  # a top-level package: found, not executed
    if spec is None or not spec.submodule_search_locations:
        return None
    version = _distribution_version("pysr") or "unknown"
    return read_pysr_source(Path(list(spec.submodule_search_locations)[0]) / "sr.py", version)


def describe_pysr(install: PySRInstall | None = None) -> str:
    """PySR's version and whether its search releases the GIL, for ``evomal-sr doctor``.

    Examples
    --------
    >>> describe_pysr(PySRInstall("2.1.0", Path("sr.py"), False, frozenset())).endswith("GIL: no, serial mode only")
    True
    """
    install = inspect_pysr() if install is None else install
    if install is None:
        return "not installed"
    version = f"{install.version} (juliacall {_distribution_version('juliacall') or 'not installed'})"
    if install.releases_gil:
        return f"{version}; search releases the GIL: yes"
    return f"{version}; search releases the GIL: no, serial mode only"


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def parallel_mode_problem(deterministic: bool, install: PySRInstall | None = None) -> str | None:
    """One sentence if the multithreaded mode cannot run with the installed PySR, else ``None``.

    Serial (deterministic) mode never needs the GIL released.
    """
    install = inspect_pysr() if install is None else install
    if deterministic or install is None or install.releases_gil:
        return None
    return (
        f"The installed pysr {install.version} runs its search holding Python's GIL, which can deadlock "
        f"the PySR engine's multithreaded mode: {_UPGRADE}, or run the serial mode "
        "(--deterministic, or engine option deterministic=True)."
    )


def unsupported_arguments(kwargs: dict, install: PySRInstall | None = None) -> str | None:
    """One sentence naming the keyword arguments the installed ``PySRRegressor`` lacks, else ``None``."""
    install = inspect_pysr() if install is None else install
    if install is None or not install.parameters:
        return None
    unknown = sorted(set(kwargs) - install.parameters)
    if not unknown:
        return None
    return f"The installed pysr {install.version} does not accept {', '.join(unknown)}: {_UPGRADE}."


# -- Julia -----------------------------------------------------------------------------------
def find_julia() -> str | None:
    """Path of a Julia (or juliaup) that juliacall would use, without starting it."""
    override = os.environ.get("PYTHON_JULIAPKG_EXE") or sys._xoptions.get("juliapkg-exe")
    if override:
        return shutil.which(override) or (override if Path(override).is_file() else None)
    for name in ("julia", "juliaup"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from juliapkg.state import STATE  # pure Python: reads paths from the environment
    except Exception:  # juliapkg missing or changed: nothing more to look at
        return None
    for candidate in (Path(STATE["install"]) / "bin" / "julia", _meta_executable(STATE.get("meta"))):
        if candidate is not None and candidate.is_file():
            return str(candidate)
    return None


def _meta_executable(meta_path) -> Path | None:
    try:
        with open(meta_path, encoding="utf-8") as handle:
            return Path(json.load(handle)["executable"])
    except (OSError, TypeError, ValueError, KeyError):
        return None


def availability_problem() -> str | None:
    """One sentence saying what the PySR engine lacks here, or ``None`` (never starts Julia)."""
    for module in ("pysr", "juliacall"):
        if importlib.util.find_spec(module) is None:
            return f"The PySR engine needs the `{module}` package, which is not installed: {_INSTALL}."
    if find_julia() is None:
        return (
            "The PySR engine needs Julia, which is not installed (no `julia` or `juliaup` on PATH, "
            f'no PYTHON_JULIAPKG_EXE): {_INSTALL}, then run `python -c "import pysr"` once so that '
            "PySR installs Julia."
        )
    return None


def julia_started() -> bool:
    """Whether this process has imported juliacall (and so started Julia)."""
    return "juliacall" in sys.modules


def start_julia(threads: int | None = None):
    """Start Julia (by importing PySR) with ``threads`` Julia threads; returns the ``pysr`` module.

    Call it before anything imports torch. Julia starts once per process: a
    later call returns at once (warning if ``threads`` differs). Warns with
    :class:`TorchBeforeJuliaWarning` when torch was imported first.

    Raises
    ------
    EngineUnavailableError
        If PySR, juliacall or Julia is missing, or Julia fails to start.
    """
    problem = availability_problem()
    if problem:
        raise EngineUnavailableError(problem)
    if not julia_started() and "torch" in sys.modules:
        warnings.warn(TORCH_FIRST_MESSAGE, TorchBeforeJuliaWarning, stacklevel=2)
    return import_pysr(threads)


def import_pysr(threads: int | None = None):
    """Import PySR (which starts Julia) with ``threads`` Julia threads; returns the module.

    The thread count is read once, when Julia starts; later calls only warn if
    it differs.
    """
    if threads is not None:
        if julia_started():
            if os.environ.get("PYTHON_JULIACALL_THREADS") != str(threads):
                warnings.warn(
                    "Julia is already running, so the number of Julia threads cannot be changed", stacklevel=3
                )
        else:
            os.environ["PYTHON_JULIACALL_THREADS"] = str(threads)
    try:
        with warnings.catch_warnings():  # PySR warns whenever the thread count is not "auto"
            warnings.filterwarnings("ignore", message="PYTHON_JULIACALL_THREADS")
            import pysr
    except Exception as exc:  # Julia failed to start or to install its packages
        detail = " ".join(str(exc).split())  # Julia's errors span lines; the CLI prints one
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        raise EngineUnavailableError(
            f"PySR could not start Julia ({type(exc).__name__}: {detail}); {_INSTALL} and try again."
        ) from exc
    return pysr


def julia_threads(jl) -> int | None:
    """``Threads.nthreads()`` of the running Julia, or ``None`` if it cannot be read."""
    try:
        return int(jl.Threads.nthreads())
    except Exception:  # a Julia (or stand-in) without Threads: not worth failing a search over
        return None
