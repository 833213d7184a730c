"""Notebook helpers: setup, the Colab badge and install line, runs kept on Google Drive."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from frlib.config import DATATURKS_URL, REPO_URL, Config, smoke_mode, workdir

COLAB_BRANCH = "main"
COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
DRIVE = Path("/content/drive")
DRIVE_RUNS = DRIVE / "MyDrive" / "frlib_runs"


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules


def colab_url(notebook: str) -> str:
    """The "Open in Colab" address of notebooks/`notebook` in the repository at REPO_URL."""
    repo = REPO_URL.removeprefix("https://github.com/").removesuffix(".git")
    return (
        f"https://colab.research.google.com/github/{repo}/blob/{COLAB_BRANCH}/notebooks/{notebook}"
    )


def colab_badge(notebook: str) -> str:
    """The Markdown "Open in Colab" button of notebooks/`notebook`."""
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(notebook)})"


def install_line() -> str:
    """The Colab setup cell's install: Colab's TensorFlow satisfies tensorflow>=2.16, so pip keeps it."""
    return f'%pip install -q "frlib @ git+{REPO_URL}"'


def setup(*, gpu: bool = False) -> None:
    """Move into frlib's work folder (see `frlib.config.workdir`: where data/ and runs/ go) and
    say how this notebook runs.

    Args:
        gpu: also set GPU memory growth and report the devices (do it before anything trains).
    """
    folder = workdir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    import frlib

    mode = "smoke mode (FRLIB_SMOKE=1: tiny data and epochs)" if smoke_mode() else "full mode"
    place = "Google Colab" if in_colab() else "this machine"
    print(f"frlib {frlib.__version__}, {mode}, on {place}; working in {folder}")
    if gpu:
        from frlib.scale import describe_devices

        print(describe_devices())


def config_from_params(**params) -> Config:
    """`Config.from_env()` with the papermill parameters that are set (None keeps the default).

    On Colab (and not in smoke mode) `data=None` means `colab_data()`: real faces.
    """
    if params.get("data") is None and in_colab() and not smoke_mode():
        params["data"] = colab_data()
    return Config.from_env(**{k: v for k, v in params.items() if v is not None})


FER2013_HINT = (
    "For emotion, get fer2013.csv from Kaggle's 'Challenges in Representation Learning: Facial "
    "Expression Recognition Challenge' and upload it to /content/fer2013.csv."
)


def dataturks_images_answer(timeout: float = 5.0) -> bool:
    """True when the 2019 DataTurks annotation file and its first image can both be fetched."""
    from frlib.download import DownloadError, fetch_bytes
    from frlib.sources import SourceError, load_dataturks

    try:
        first = load_dataturks(DATATURKS_URL).records[0].image
        fetch_bytes(first, timeout=timeout, retries=0)
        return True
    except (SourceError, DownloadError, IndexError):
        return False


def colab_data(fer2013: str = "/content/fer2013.csv") -> list[str]:
    """Real-face data specs that work on Colab, each reported in one line."""
    specs = ["fairface-hub:", "nonfaces:data/nonfaces?images=2500"]
    if dataturks_images_answer():
        specs.insert(0, f"dataturks:{DATATURKS_URL}")
        print("DataTurks images answer: using the 2019 challenge annotations too.")
    else:
        print("The DataTurks image host does not answer; using fairface-hub: and fer2013: instead.")
    if Path(fer2013).is_file():
        specs.append(f"fer2013:{fer2013}")
    else:
        print(FER2013_HINT)
    return specs


def keep_on_drive(config: Config) -> Config:
    """On Colab, mount Google Drive and put the run under MyDrive/frlib_runs, so a disconnect
    loses nothing and running the notebook again resumes; elsewhere, the config as it is."""
    if not in_colab():
        print(f"Not on Colab: the run stays in {Path(config.out).resolve()}")
        return config
    from google.colab import drive

    drive.mount(str(DRIVE))
    out = DRIVE_RUNS / Path(config.out).name
    print(f"The run lives on Google Drive: {out}")
    return config.replace(out=str(out))


def find_run(run_dir: str | os.PathLike | None = None, *, shipped: bool = False) -> Path:
    """The run to look at: `run_dir` if given; else the shipped model (if `shipped`), else the
    newest run under runs/ (and Drive's frlib_runs on Colab); with none, `Config.from_env()`
    is trained now (the tiny smoke config under FRLIB_SMOKE=1)."""
    from frlib.predict import SHIPPED_MODEL, latest_run

    if run_dir:
        return Path(run_dir)
    if shipped and (SHIPPED_MODEL / "model.keras").is_file():
        return SHIPPED_MODEL
    run = latest_run("runs", DRIVE_RUNS)
    if run is not None:
        return run
    from frlib.train import ensure_run

    config = Config.from_env()
    print(f"No trained run found: training {config.out} first (02_training.ipynb does the same).")
    return ensure_run(config)


def demo_photo(path: str | os.PathLike = "data/three_faces.jpg") -> Path:
    """Save the three-face photo composed from matplotlib's portrait (frlib.detect) to `path`."""
    from PIL import Image

    from frlib.detect import compose_faces

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(compose_faces()[0]).save(path, quality=92)
    return path
