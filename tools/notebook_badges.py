"""Point every notebook's "Open in Colab" badge and Colab install line at frlib.config.REPO_URL.

    python tools/notebook_badges.py          # rewrite the notebooks that are out of date
    python tools/notebook_badges.py --check  # list them and exit 1 instead (tests/test_notebooks.py checks too)

Run it after changing REPO_URL: the URL then lives in one place, frlib/config.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from frlib.notebook import colab_badge, install_line

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
INSTALL = re.compile(r'%pip install -q "frlib @ git\+[^"]*"')


def updated(path: Path) -> nbformat.NotebookNode:
    """The notebook with its badge and install line rebuilt from REPO_URL."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        source = BADGE.sub(lambda _: colab_badge(path.name), cell.source)
        cell.source = INSTALL.sub(lambda _: install_line(), source)
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list stale notebooks")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = updated(path)
        if notebook != nbformat.read(path, as_version=4):
            stale.append(path)
            if not args.check:
                nbformat.write(notebook, path)
    verb = "out of date" if args.check else "updated"
    for path in stale:
        print(f"{path.name}: badge or install line {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
