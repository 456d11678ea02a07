"""Keep the README honest: the two set-up commands, every setting and every CLI command."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer.main

from gtmsync.cli import app
from gtmsync.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _commands(group: click.Command, prefix: str = "gtmsync") -> list[str]:
    if isinstance(group, click.Group):
        found: list[str] = []
        for name, command in group.commands.items():
            if getattr(command, "hidden", False):
                continue
            found += _commands(command, f"{prefix} {name}")
        return found
    return [prefix]


class TestReadme:
    def test_exactly_two_setup_commands_at_the_top(self) -> None:
        first_block = re.search(r"```sh\n(.*?)```", README, re.S)
        assert first_block is not None
        assert README.index("```sh") < README.index("\n## ")
        commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
        assert [c for c in commands if c] == ["make demo", "make test"]

    def test_ci_runs_the_readme_test_command(self) -> None:
        ci = (ROOT / ".ci" / "run").read_text()
        assert re.search(r"^make test$", ci, re.M)

    def test_makefile_targets_exist_for_both_commands(self) -> None:
        makefile = (ROOT / "Makefile").read_text()
        assert re.search(r"^demo: install", makefile, re.M)
        assert re.search(r"^test: install", makefile, re.M)

    def test_every_setting_is_documented(self) -> None:
        for name, field in Settings.model_fields.items():
            assert field.description, f"Settings.{name} has no description"
            assert f"`GTMSYNC_{name.upper()}`" in README, f"GTMSYNC_{name.upper()} not in README"

    def test_every_cli_command_is_documented(self) -> None:
        for command in _commands(typer.main.get_command(app)):
            assert f"`{command}" in README, f"{command} is not in the README's command table"
