"""Starting Julia for the PySR engine: before torch, and only with a PySR that can run the search.

The import-order tests run the CLI and the Python API in a subprocess with a
stub ``juliacall`` module first on the path: it records whether torch was
already imported when it was imported, then refuses to start (no Julia here).
Nothing here starts a real Julia.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path

import pytest

from evomal_sr.engines import get_engine
from evomal_sr.engines.pysr import PySREngine
from evomal_sr.engines.pysr import engine as engine_module
from evomal_sr.engines.pysr import runtime as runtime
from evomal_sr.engines.pysr.runtime import (
    PYSR_FLOOR,
    PySRInstall,
    availability_problem,
    describe_pysr,
    find_julia,
    inspect_pysr,
    parallel_mode_problem,
    read_pysr_source,
    unsupported_arguments,
)
from evomal_sr.errors import ConfigError, EngineUnavailableError

REPO = Path(__file__).resolve().parents[1]
NOGIL_SOURCE = """
class PySRRegressor:
    def __init__(self, *, niterations=10, parallelism=None):
        pass

    def _run(self):
        out = SymbolicRegression.equation_search._jl_call_nogil(jl_X, jl_y, niterations=1)
"""
HOLDING_SOURCE = """
class PySRRegressor:
    def __init__(self, *, niterations=10, parallelism=None):
        pass

    def _run(self):
        # a later PySR calls equation_search._jl_call_nogil here
        note = "equation_search._jl_call_nogil"
        out = SymbolicRegression.equation_search(jl_X, jl_y, niterations=1)
"""


def holding_install(tmp_path) -> PySRInstall:
    path = tmp_path / "sr.py"
    path.write_text(HOLDING_SOURCE, encoding="utf-8")
    return read_pysr_source(path, "2.1.0")


# ------------------------------------------------------------------ availability
def test_engine_is_registered():
    assert get_engine("pysr") is PySREngine and PySREngine.name == "pysr"


def assert_one_sentence(message: str):
    assert "\n" not in message and message.endswith(".")
    assert re.search(r"[.!?]\s+[A-Z]", message) is None, message
    assert "pip install evomal-sr[pysr]" in message


def test_check_available_raises_one_sentence_here():
    if find_julia() is not None and importlib.util.find_spec("pysr") is not None:
        pytest.skip("Julia and pysr are installed here")
    with pytest.raises(EngineUnavailableError) as info:
        PySREngine.check_available()
    assert_one_sentence(str(info.value))
    ok, message = PySREngine.status()
    assert ok is False and message == str(info.value)


@pytest.mark.parametrize("missing", ["pysr", "juliacall"])
def test_missing_package_message(monkeypatch, missing):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        runtime.importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a)
    )
    message = availability_problem()
    assert f"`{missing}`" in message
    assert_one_sentence(message)


def test_missing_julia_message(monkeypatch):
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(runtime, "find_julia", lambda: None)
    assert "needs Julia" in availability_problem()
    assert_one_sentence(availability_problem())


def test_find_julia_honours_pythons_juliapkg_exe(monkeypatch, tmp_path):
    fake = tmp_path / "julia"
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(fake))
    assert find_julia() == str(fake)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(tmp_path / "absent"))
    assert find_julia() is None


def test_importing_the_engine_starts_no_julia_and_no_torch():
    code = (
        "import sys, evomal_sr, evomal_sr.engines.pysr, evomal_sr.cli.main; "
        "from evomal_sr.engines import get_engine; get_engine('pysr').status(); "
        "loaded = {'pysr', 'juliacall', 'torch'} & set(sys.modules); assert not loaded, sorted(loaded)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_run_refuses_resume_and_missing_julia():
    from test_pysr_engine import make_context

    context = make_context()
    context.resume = True
    with pytest.raises(ConfigError, match="resume"):
        PySREngine().run(context)
    if availability_problem() is None:
        pytest.skip("Julia and pysr are installed here")
    with pytest.raises(EngineUnavailableError):
        PySREngine().run(make_context())


# ------------------------------------------------------------------ the GIL-release capability
def test_capability_present_in_a_source_that_calls_the_nogil_search(tmp_path):
    path = tmp_path / "sr.py"
    path.write_text(NOGIL_SOURCE, encoding="utf-8")
    install = read_pysr_source(path, "2.2.0")
    assert install.releases_gil is True
    assert install.parameters == {"niterations", "parallelism"}
    assert "search releases the GIL: yes" in describe_pysr(install)


def test_capability_absent_when_the_search_is_called_holding_the_gil(tmp_path):
    install = holding_install(tmp_path)  # the name only in a comment and a string: not a call
    assert install.releases_gil is False
    assert describe_pysr(install).endswith("search releases the GIL: no, serial mode only")


@pytest.mark.parametrize("content", [None, "def broken(:\n", b"\xff\xfe\x00"])
def test_capability_absent_when_the_source_is_missing_or_unreadable(tmp_path, content):
    path = tmp_path / "sr.py"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        path.write_bytes(content)
    install = read_pysr_source(path, "9.9")
    assert install.releases_gil is False and install.parameters == frozenset()


def test_installed_pysr_is_read_without_importing_it():
    install = inspect_pysr()
    if install is None:
        pytest.skip("pysr is not installed")
    assert "pysr" not in sys.modules
    assert install.source.name == "sr.py" and install.source.is_file()
    assert install.releases_gil is True, f"pysr {install.version} no longer calls _jl_call_nogil"
    assert {"loss_function", "parallelism", "guesses"} <= install.parameters


def test_inspect_pysr_finds_a_stand_in_package(monkeypatch, tmp_path):
    package = tmp_path / "pysr"
    package.mkdir()
    (package / "sr.py").write_text(HOLDING_SOURCE, encoding="utf-8")
    spec = types.SimpleNamespace(submodule_search_locations=[str(package)])
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name, *a: spec if name == "pysr" else None)
    monkeypatch.setattr(runtime, "_distribution_version", lambda name: "2.1.0" if name == "pysr" else None)
    install = inspect_pysr()
    assert install.version == "2.1.0" and install.releases_gil is False
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name, *a: None)
    assert inspect_pysr() is None and describe_pysr() == "not installed"


def test_multithreaded_mode_is_refused_in_one_sentence_without_the_capability(tmp_path):
    install = holding_install(tmp_path)
    message = parallel_mode_problem(False, install)
    assert message and "\n" not in message and message.endswith(".")
    assert re.search(r"[.!?]\s+[A-Z]", message) is None, message
    assert "2.1.0" in message and "GIL" in message and f"pysr>={PYSR_FLOOR}" in message
    assert "--deterministic" in message
    assert parallel_mode_problem(True, install) is None  # serial mode needs no released GIL


def test_unsupported_keyword_arguments_are_named(tmp_path):
    install = holding_install(tmp_path)
    assert unsupported_arguments({"niterations": 3}, install) is None
    message = unsupported_arguments({"niterations": 3, "guesses": [], "input_stream": "devnull"}, install)
    assert "guesses, input_stream" in message and message.endswith(".")


# ------------------------------------------------------------------ prepare() and run() without the capability
@pytest.fixture
def gil_holding_pysr(monkeypatch, tmp_path):
    """PySR and Julia 'found', the PySR one whose search holds the GIL; records start_julia calls."""
    started = []
    monkeypatch.setattr(engine_module, "availability_problem", lambda: None)
    monkeypatch.setattr(engine_module, "inspect_pysr", lambda: holding_install(tmp_path))
    monkeypatch.setattr(engine_module, "start_julia", lambda threads=None: started.append(threads) or "pysr")
    return started


def test_prepare_refuses_multithreading_before_starting_julia(gil_holding_pysr):
    with pytest.raises(EngineUnavailableError, match="holding Python's GIL"):
        PySREngine.prepare({"threads": 4})
    assert gil_holding_pysr == []


def test_prepare_starts_julia_for_the_serial_mode(gil_holding_pysr):
    assert PySREngine.prepare({"deterministic": True, "threads": 2}) == "pysr"
    assert gil_holding_pysr == [2]


def test_serial_search_runs_with_a_gil_holding_pysr(monkeypatch, tmp_path, gil_holding_pysr):
    from test_pysr_engine import FakeEvaluator, SimulatedJulia, make_context, simulate_julia

    simulate_julia(monkeypatch, tmp_path, SimulatedJulia(threads=1))
    old_pysr = PySRInstall("2.1.0", tmp_path / "sr.py", releases_gil=False, parameters=frozenset())
    monkeypatch.setattr(engine_module, "inspect_pysr", lambda: old_pysr)
    context = make_context(deterministic=True)
    context.evaluator = FakeEvaluator()
    result = PySREngine().run(context)
    assert result.hall_of_fame.entries()
    with pytest.raises(EngineUnavailableError, match="GIL"):
        PySREngine().run(make_context())


def test_status_says_which_modes_can_run(monkeypatch, tmp_path):
    monkeypatch.setattr(engine_module, "availability_problem", lambda: None)
    monkeypatch.setattr(engine_module, "find_julia", lambda: "/opt/julia/bin/julia")
    monkeypatch.setattr(engine_module, "inspect_pysr", lambda: holding_install(tmp_path))
    assert PySREngine.status() == (True, "Julia at /opt/julia/bin/julia; modes: serial only.")


def test_doctor_reports_the_pysr_version_and_the_gil():
    from clihelpers import invoke

    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("engine     pysr: "))
    install = inspect_pysr()
    if install is None:
        assert line.endswith("[pysr not installed]")
    else:
        assert f"[pysr {install.version} (juliacall " in line
        assert line.endswith("search releases the GIL: yes]" if install.releases_gil else "serial mode only]")


# ------------------------------------------------------------------ import order: Julia before torch
STUB_JULIACALL = textwrap.dedent('''
    """Stand-in juliacall: records whether torch came first, then refuses to start."""
    import json
    import os
    import sys

    with open(os.environ["EVOMAL_JULIACALL_RECORD"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"torch_loaded": "torch" in sys.modules}) + "\\n")
    raise ImportError("stub juliacall: no Julia in this test")
''')


@pytest.fixture
def stub_env(tmp_path):
    """Environment for a subprocess whose `juliacall` is the stub and whose Julia 'exists'."""
    if importlib_spec("pysr") is None:
        pytest.skip("the import-order tests go through the installed pysr")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "juliacall.py").write_text(STUB_JULIACALL, encoding="utf-8")
    julia = tmp_path / "julia"
    julia.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    julia.chmod(0o755)
    record = tmp_path / "record.jsonl"
    env = {key: value for key, value in __import__("os").environ.items() if not key.startswith("PYTHON_JULIA")}
    env.update(
        PYTHONPATH=str(stubs),
        PYTHON_JULIAPKG_EXE=str(julia),
        EVOMAL_JULIACALL_RECORD=str(record),
        OMP_WAIT_POLICY="PASSIVE",
    )
    return env, record


def importlib_spec(name):
    import importlib.util

    return importlib.util.find_spec(name)


def run_python(code: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def records(path: Path) -> list[dict]:
    assert path.is_file(), "juliacall was never imported"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("extra", [[], ["--deterministic"], ["--threads", "2"]])
def test_cli_imports_juliacall_before_torch(stub_env, tmp_path, extra):
    env, record = stub_env
    done = run_python(
        "from evomal_sr.cli.main import main; main()",
        env,
        "search",
        "--dataset",
        "iris",
        "--engine",
        "pysr",
        "--preset",
        "tiny",
        "--out",
        str(tmp_path / "run"),
        *extra,
    )
    assert done.returncode == 2, done.stderr
    assert "stub juliacall" in done.stderr and "Traceback" not in done.stderr
    assert records(record) == [{"torch_loaded": False}]
    assert not (tmp_path / "run").exists()


def test_python_api_start_julia_imports_juliacall_before_torch(stub_env):
    env, record = stub_env
    code = textwrap.dedent("""
        import sys, warnings
        import evomal_sr
        from evomal_sr.engines.pysr import start_julia
        from evomal_sr.errors import ConfigError, EngineUnavailableError
        warnings.simplefilter("error")  # no warning expected: torch is not loaded yet
        try:
            start_julia(threads=2)
        except EngineUnavailableError as exc:
            assert "stub juliacall" in str(exc), exc
        else:
            raise SystemExit("the stub should have refused to start")
    """)
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr
    assert records(record) == [{"torch_loaded": False}]


def test_starting_julia_after_torch_warns_naming_the_risk(stub_env):
    env, record = stub_env
    code = textwrap.dedent("""
        import warnings
        import torch
        from evomal_sr.engines.pysr import TorchBeforeJuliaWarning, start_julia
        from evomal_sr.errors import ConfigError, EngineUnavailableError
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                start_julia()
            except EngineUnavailableError:
                pass
        ours = [w for w in caught if issubclass(w.category, TorchBeforeJuliaWarning)]
        assert len(ours) == 1, [str(w.message) for w in caught]
        print(ours[0].message)
    """)
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr
    assert "torch was imported before Julia" in done.stdout
    assert "libstdc++" in done.stdout and "start_julia()" in done.stdout
    assert records(record) == [{"torch_loaded": True}]


def test_the_torch_warning_comes_once_per_process(monkeypatch):
    import torch  # noqa: F401  (the situation under test: torch first)

    monkeypatch.delitem(sys.modules, "juliacall", raising=False)
    monkeypatch.setattr(runtime, "availability_problem", lambda: None)

    def fake_import(threads=None):  # starting Julia leaves juliacall imported
        monkeypatch.setitem(sys.modules, "juliacall", types.ModuleType("juliacall"))
        return "pysr"

    monkeypatch.setattr(runtime, "import_pysr", fake_import)
    with pytest.warns(runtime.TorchBeforeJuliaWarning):
        assert runtime.start_julia() == "pysr"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert runtime.start_julia() == "pysr"  # Julia is running: nothing more to warn about
