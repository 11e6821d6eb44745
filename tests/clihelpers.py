"""Helpers shared by the CLI tests: run `evomal-sr` in-process and check one-line errors.

Import as ``from clihelpers import invoke, assert_one_line_error``.
"""

from __future__ import annotations

from click.testing import CliRunner

from evomal_sr.cli.main import cli


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into output unless told not to
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps stderr separate
        return CliRunner()


def invoke(*args):
    """Run ``evomal-sr ARGS...`` with Click's runner; stdout and stderr kept apart."""
    return _runner().invoke(cli, [str(a) for a in args], prog_name="evomal-sr")


def assert_one_line_error(result, *fragments):
    """Exit status 2, exactly one ``Error: ...`` line on stderr holding ``fragments``, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr + result.stdout
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
