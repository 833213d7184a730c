"""The notebooks' shape: committed without outputs, one Setup section, Colab-ready, short cells.

nbval runs them (pytest's testpaths include notebooks/); these checks cover what running
cannot see.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from frlib.notebook import colab_badge, install_line

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_data_exploration.ipynb", "02_training.ipynb", "03_metrics.ipynb", "04_predict.ipynb"]
MAX_LINES = 15


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def headings(notebook, level: str) -> list[str]:
    return [
        line
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith(level + " ")
    ]


def test_the_four_notebooks_are_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name):
    for cell in load(name).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: strip outputs (Kernel > Restart and Clear Outputs)"
            assert cell.execution_count is None, f"{name}: execution counts left in"


@pytest.mark.parametrize("name", NAMES)
def test_opens_with_a_title_a_colab_badge_and_an_overview(name):
    first = load(name).cells[0]
    assert first.cell_type == "markdown"
    lines = first.source.splitlines()
    assert lines[0].startswith("# ") and len(headings(load(name), "#")) == 1
    # The badge is built from frlib.config.REPO_URL: tools/notebook_badges.py rewrites it.
    assert colab_badge(name) in first.source, f"{name}: run python tools/notebook_badges.py"
    overview = [line for line in lines[1:] if line and line != colab_badge(name)]
    assert 1 <= len(overview) <= 2


@pytest.mark.parametrize("name", NAMES)
def test_one_setup_section_installs_frlib_only_on_colab(name):
    notebook = load(name)
    assert headings(notebook, "##").count("## Setup") == 1
    assert headings(notebook, "##")[0] == "## Setup"
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    installs = [s for s in code if "%pip" in s]
    assert len(installs) == 1 and installs[0] == code[0]
    assert 'if "google.colab" in sys.modules:' in installs[0]
    assert install_line() in installs[0], f"{name}: run python tools/notebook_badges.py"
    # Colab's own TensorFlow must stay: no upgrade, no reinstall, no TensorFlow pin.
    (pip,) = [line for line in installs[0].splitlines() if "%pip" in line]
    for word in ("tensorflow", "--upgrade", "-U ", "--force-reinstall"):
        assert word not in pip
    setup = code[1]
    assert "import" in setup and "setup(" in setup


@pytest.mark.parametrize("name", NAMES)
def test_cells_are_short_and_never_patch_sys_path(name):
    for cell in load(name).cells:
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= MAX_LINES, f"{name}: move logic into frlib"
            assert "sys.path" not in cell.source
            assert "chdir" not in cell.source  # frlib.notebook.setup() picks the folder


def test_training_notebook_asks_for_a_gpu_and_takes_parameters():
    notebook = load("02_training.ipynb")
    assert notebook.metadata["accelerator"] == "GPU"
    assert notebook.metadata["colab"]["gpuType"]
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for parameter in ("data", "backbone", "image_size", "epochs", "batch_size"):
        assert f"\n{parameter} = " in "\n" + tagged[0].source
    assert any("setup(gpu=True)" in c.source for c in notebook.cells)
