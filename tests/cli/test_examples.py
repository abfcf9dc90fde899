"""Every command line README's usage block and every ``--help`` example shows names options that exist, with
values their types accept, and queries that exist: docs cannot drift from the command lines.

This is the fast check (no model, no graph); tests/cli/test_examples_run.py runs every one of these lines.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from neurflow.cli.main import main
from neurflow.graph.named_queries import QueryError, load_query
from neurflow.ingest.cli import main as ingest_main

README = Path(__file__).parents[2] / "README.md"
COMMAND_LINE = re.compile(r"^([A-Z_]+=\S+\s+)*neurflow(-ingest)? ")  # VARIABLE=value before the command allowed


def readme_lines() -> list[str]:
    """The command lines of README's usage block (continuations joined, comments dropped)."""
    block = README.read_text().split("## Usage", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if COMMAND_LINE.match(line)]


def commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += commands(command, click.Context(command, parent=ctx), (*path, name))
    return found


def help_lines() -> list[str]:
    """The example lines of every command's help (after its ``Example:``)."""
    lines = []
    for _, command in [*commands(main, click.Context(main)), (("neurflow-ingest",), ingest_main)]:
        text = command.help or ""
        if "Example" in text:
            examples = re.sub(r"\\\n\s*", " ", text.split("Example", 1)[1])
            lines += [line.strip() for line in examples.splitlines() if COMMAND_LINE.match(line.strip())]
    return list(dict.fromkeys(lines))  # a group lists its commands' examples again


def check(line: str) -> None:
    """The line's command exists, each option is one of its own and each value converts (a path's existence
    excepted: the examples name folders of yours); a query NAME is a named query."""
    words = shlex.split(line)
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]  # VARIABLE=value before the command
    command: click.Command = ingest_main if words[0] == "neurflow-ingest" else main
    ctx = click.Context(command)
    args = words[1:]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(ctx, args[0])
        assert sub is not None, f"{line}: no command {args[0]!r}"
        command, args, ctx = sub, args[1:], click.Context(sub, parent=ctx)
    options = {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith("-") and word != "-":
            name, has_value, inline = word.partition("=")
            assert name in options or name == "--help", f"{line}: {command.name} has no option {name}"
            param = options.get(name)
            if param is None or isinstance(param, click.Option) and (param.is_flag or param.count):
                index += 1
                continue
            value = inline if has_value else args[index + 1]
            index += 1 if has_value else 2
            if not isinstance(param.type, click.Path):
                param.type.convert(value, param, ctx)  # a BadParameter fails the test with the reason
            continue
        if command.name == "query" and index == 0:
            load_query(word)  # a QueryError names the unknown query
        index += 1


@pytest.mark.parametrize("line", [line for line in readme_lines() if " | " not in line and "neurflow mask ..." not in line])
def test_readme_command_lines_are_the_cli(line: str) -> None:
    check(line)


@pytest.mark.parametrize("line", help_lines())
def test_help_examples_are_the_cli(line: str) -> None:
    check(line)


def test_the_examples_are_found_and_a_drifted_one_fails() -> None:
    assert len(readme_lines()) >= 25 and len(help_lines()) >= 15
    with pytest.raises(AssertionError, match="build has no option --max-image"):
        check("neurflow build --model resnet18 --max-image 3")
    with pytest.raises(click.BadParameter):
        check("neurflow build --model resnet18 --tau many")
    with pytest.raises(QueryError, match="no-such-query"):
        check("neurflow query no-such-query")
