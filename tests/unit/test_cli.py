import typer.main
from typer.testing import CliRunner

from ioc.cli import app

CLI = typer.main.get_command(app)


def test_every_subcommand_has_a_one_line_description():
    groups = [CLI, CLI.commands["infra"], CLI.commands["bridge"], CLI.commands["dlq"]]
    for group in groups:
        for name, command in group.commands.items():
            summary = command.get_short_help_str(limit=200)
            assert summary and "\n" not in summary, name
    assert {"infra", "worker", "api", "simulate", "demo"} <= set(CLI.commands)
    assert {"up", "down", "status", "fetch"} <= set(CLI.commands["infra"].commands)


def test_help_lists_the_subcommands():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("infra", "worker", "api", "simulate", "demo"):
        assert name in result.output
