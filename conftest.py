"""Run everything small and in one place: the smoke config, a temporary cache and work folder.

The variables are set before any test or notebook kernel starts, so the kernels that nbval and
the browser test start inherit them; a value already in the environment wins. The fixtures give
the tests the same smoke dataset and run as the notebooks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_made = tempfile.mkdtemp(prefix="frlib-tests-")
os.environ.setdefault("FRLIB_SMOKE", "1")
os.environ.setdefault("FRLIB_CACHE", os.path.join(_made, "cache"))
os.environ.setdefault("FRLIB_WORKDIR", os.path.join(_made, "work"))


def pytest_unconfigure(config) -> None:
    shutil.rmtree(_made, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def frlib_workdir() -> Path:
    """Every test runs in the temporary work folder (FRLIB_WORKDIR), as the notebooks do after
    frlib.notebook.setup(): relative data/ and runs/ paths, and a run's data specs, mean the
    same folder everywhere, and nothing lands in the checkout."""
    from frlib.config import workdir

    folder = workdir()
    folder.mkdir(parents=True, exist_ok=True)
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def smoke_data(frlib_workdir):
    """The smoke config's prepared dataset (synthetic, 64 px crops)."""
    from frlib.config import Config
    from frlib.data import prepare

    return prepare(Config.smoke(), progress=False)


@pytest.fixture(scope="session")
def smoke_run(frlib_workdir) -> Path:
    """The smoke run directory (absolute): the one 02_training.ipynb made, else trained once now."""
    from frlib.config import Config
    from frlib.train import ensure_run

    return ensure_run(Config.smoke(), verbose=0).resolve()
