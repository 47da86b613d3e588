"""What the CLI prints: messages as plain text, no ANSI codes in a pipe, flags shown as flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fsql
from fsql.cli import app
from fsql.errors import CompileError

runner = CliRunner()


def invoke(project: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--project-dir", str(project), *args])


def break_zones(project: Path, line: str) -> None:
    """Put `line` in zones.yml's first feature view, then a line that makes the file invalid YAML."""
    views = project / "definitions" / "zones.yml"
    text = views.read_text()
    assert "    tags: [zone, realtime]\n" in text
    views.write_text(text.replace("    tags: [zone, realtime]\n", f"{line}\n   broken: [x\n"))


def test_brackets_in_a_yaml_code_frame_are_printed_as_written(example_copy: Path) -> None:
    break_zones(example_copy, "    tags: [zone, realtime]")
    result = invoke(example_copy, "validate")
    assert result.exit_code == 2
    assert "invalid YAML" in result.stderr
    assert "tags: [zone, realtime]" in result.stderr  # Rich markup read '[zone, realtime]' as a style


def test_a_closing_tag_in_a_broken_file_is_text_not_a_markup_error(example_copy: Path) -> None:
    break_zones(example_copy, "    tags: [/x]")
    result = invoke(example_copy, "validate")
    assert result.exit_code == 2
    assert "tags: [/x]" in result.stderr
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr


def test_sqlglot_ansi_codes_never_reach_a_pipe(example_copy: Path) -> None:
    result = invoke(example_copy, "train", "--features", "driver_profile", "--spine", "SELECT +* FROM")
    assert result.exit_code == 2
    assert "SELECT +* FROM" in result.stderr  # sqlglot's message, underline removed
    assert "\x1b" not in result.stderr and "\x1b" not in result.stdout


def test_error_text_from_the_api_is_plain() -> None:
    with pytest.raises(CompileError) as raised:
        fsql.compile.spine_relation("SELECT +* FROM", "duckdb")
    assert "\x1b" not in str(raised.value)


@pytest.mark.parametrize(
    "command", [[], ["build"], ["compile"], ["train"], ["validate"]], ids=lambda c: c[0] if c else "fsql"
)
def test_help_shows_flags_as_flags(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "\x1b" not in result.stdout


def test_help_flags_are_accepted_as_shown() -> None:
    text = runner.invoke(app, ["build", "--help"]).stdout
    assert re.search(r"--full-refresh\s{2,}", text)  # no value after the flag
    assert "--full-feature-names / --short-feature-names" in runner.invoke(app, ["compile", "--help"]).stdout
    assert "--debug" in runner.invoke(app, ["--help"]).stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"fsql {fsql.__version__}\n"


def test_on_a_terminal_only_the_label_is_styled(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from fsql import console

    out = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=out, force_terminal=True, color_system="standard"))
    console.error("tags: [zone] [/x] near \x1b[4mFROM\x1b[0m")
    text = out.getvalue()
    assert text.startswith("\x1b[1;31mError: \x1b[0m")
    assert text.endswith("tags: [zone] [/x] near FROM\n")
