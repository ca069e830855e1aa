"""The README is where a newcomer starts: short, and everything it names exists — each command
and option it shows, each file and folder, each link of it and of the pages in docs/."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from cnnviz.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _commands() -> dict[str, set[str]]:
    command = typer.main.get_command(app)
    return {name: {opt for param in sub.params for opt in param.opts}
            for name, sub in command.commands.items()}


def test_the_readme_is_short_and_says_what_the_field_calls_it():
    assert len(README.splitlines()) <= 250
    for words in ("feature visualization", "activation maximization", "Activation maps",
                  "Attribution", "optimal input pattern"):
        assert words.lower() in README.lower(), words


def test_every_command_and_option_the_readme_shows_exists():
    commands = _commands()
    shown = re.findall(r"(?:^|`|&& )cnnviz ([a-z]+)((?: [^`\n#|]*)?)", README, re.MULTILINE)
    assert len(shown) >= 20
    for name, rest in shown:
        assert name in commands, name
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            assert option in commands[name], (name, option)


def test_every_file_and_link_named_exists():
    """Paths in backticks that name a file or folder of this repository, and every relative
    link (images too) of the README and of docs/*.md, with the heading an anchor points to."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                missing.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                heads = {_slug(h) for h in re.findall(r"^#+ (.*)", file.read_text(),
                                                      flags=re.MULTILINE)}
                if anchor not in heads:
                    missing.append(f"{page.name}: {target} (no such heading)")
    for name in re.findall(r"`((?:cnnviz|docs|benchmarks|scripts|notebooks|gallery|tests)/"
                           r"[\w./-]*)`", README):
        if "<" not in name and not (ROOT / name).exists():
            missing.append(f"README.md: {name}")
    assert not missing


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
