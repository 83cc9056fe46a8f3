"""docs/cli.md lists every command and option `hpcopt --help` shows, and the exit
statuses the help lists; the README links it (issue 15.10)."""

import argparse
import re

import pytest

from hpctest import REPO
from hpcopt import cli

CLI_MD = (REPO / "docs" / "cli.md").read_text()


def parsers(parser=None, path=("hpcopt",)):
    """(command path, parser) for the program and every (sub)command."""
    parser = parser or cli.build_parser()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, path + (name,))


ALL = list(parsers())


def in_code(text: str) -> bool:
    """`text` appears inside a `code` span (or an indented code line) of docs/cli.md."""
    word = rf"(?<![\w-]){re.escape(text)}(?![\w-])"
    spans = re.findall(r"`[^`\n]+`", CLI_MD) + [l for l in CLI_MD.splitlines()
                                                  if l.startswith("    ")]
    return any(re.search(word, s) for s in spans)


@pytest.mark.parametrize("path, parser", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_command_and_option_is_documented(path, parser):
    assert in_code(" ".join(path)), path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        for option in action.option_strings:
            assert in_code(option), (path, option)


def test_the_exit_statuses_of_the_help_are_in_the_table():
    listed = {int(n) for n in re.findall(r"(?:^|, |: )(\d+) ", cli.EPILOG.replace("\n", " "))}
    assert {0, 1, 2, 3} <= listed
    table = {int(n) for n in re.findall(r"^\| (\d+) \|", CLI_MD, re.M)}
    assert listed <= table


def test_n_is_documented_before_and_after_the_command():
    assert "hpcopt -n 4 sweep fit.toml" in CLI_MD and "hpcopt sweep fit.toml -n 4" in CLI_MD
    sweep = dict(ALL)[("hpcopt", "sweep")]
    assert "-n" in {o for a in sweep._actions for o in a.option_strings}


def test_parameter_ranges_help_and_docs_agree():
    sweep = dict(ALL)[("hpcopt", "sweep")]
    text = next(a.help for a in sweep._actions if "--parameter-ranges" in a.option_strings)
    assert 'count for [search] method = "grid" only' in text
    assert "random, sobol and lhs use min:max as bounds" in text
    for page in ("cli.md", "sweep.md"):
        doc = " ".join((REPO / "docs" / page).read_text().split())
        assert "random, sobol and lhs use min:max as bounds" in doc, page


def test_readme_links_the_cli_page():
    assert "(docs/cli.md)" in (REPO / "README.md").read_text()
