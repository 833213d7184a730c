"""Packaging: environment.yml, pyproject.toml, the README's two commands and CI agree."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _pip_list(text: str) -> list[str]:
    """Entries of the `- pip:` block of a conda environment file."""
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(r"\s*- pip:\s*$", line):
            inside = True
        elif inside and re.match(r"\s{4,}- ", line):
            lines.append(line.split("- ", 1)[1].strip())
        elif inside and line.strip() and not line.strip().startswith("#"):
            inside = False
    return lines


def test_environment_pip_list_equals_package_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = (ROOT / "environment.yml").read_text()
    assert sorted(_pip_list(env)) == sorted(deps)
    assert re.search(r"^\s*- python=3\.11\s*$", env, re.M)
    assert re.search(r"^\s*- pip\s*$", env, re.M)


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_licence_is_mit():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_readme_colab_badges_point_at_the_repository():
    from frlib.notebook import colab_badge

    readme = (ROOT / "README.md").read_text()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert colab_badge(notebook.name) in readme, notebook.name
