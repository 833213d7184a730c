"""The one configuration object: defaults that run as they are, saved with every run."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

# The public copy of the 2019 challenge's DataTurks annotation file (its images sit on an old S3 host).
DATATURKS_URL = "https://raw.githubusercontent.com/probhakarroy/tcs_humain_challenge/master/Face_Recognition.json"
# Where the notebooks' "Open in Colab" badges and the Colab %pip install point.
REPO_URL = "https://github.com/frlib/frlib"

SMOKE_ENV = "FRLIB_SMOKE"
WORKDIR_ENV = "FRLIB_WORKDIR"


def default_cache_dir() -> str:
    """Download and dataset cache: $FRLIB_CACHE, else ~/.cache/frlib."""
    return os.environ.get("FRLIB_CACHE", str(Path.home() / ".cache" / "frlib"))


def smoke_mode() -> bool:
    """True when FRLIB_SMOKE is set (and not 0): tiny data and epochs everywhere."""
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


def workdir() -> Path:
    """The folder that relative paths (data/, runs/) are meant from.

    $FRLIB_WORKDIR when set (the tests set it); else the root of the frlib checkout the current
    folder lies in, so a notebook opened from notebooks/ uses the same runs/ as `make demo`;
    else (Colab, an installed package) the current folder.
    """
    if os.environ.get(WORKDIR_ENV):
        return Path(os.environ[WORKDIR_ENV]).resolve()
    here = Path.cwd().resolve()
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (here == root or root in here.parents):
        return root
    return here


@dataclasses.dataclass
class Config:
    """Every knob of a run. Override fields from the CLI, notebooks or `Config.smoke()`."""

    data: list[str] = dataclasses.field(default_factory=lambda: ["synthetic:data/synthetic"])
    out: str = "runs/default"
    seed: int = 42
    # Images and crops. Faces in real group photos are ~45 px wide and FER-style emotion
    # crops 48 px: 64 px keeps all their detail at 1/22 of the 2019 code's 299 px cost.
    image_size: int = 64
    margin: float = 0.2
    cache_dir: str = dataclasses.field(default_factory=default_cache_dir)
    # Crops up to this size are held in RAM (uint8); larger sets are read from disk per batch.
    in_memory_mb: float = 2048
    # Download.
    download_workers: int = 16
    timeout: float = 15.0
    retries: int = 3
    max_image_bytes: int = 25 * 1024 * 1024
    # Splits: by source image, so no image gives faces to two splits.
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    # Model.
    backbone: str = "resnet"
    weights: str | None = None
    width: int = 48  # resnet: channels of the first stage, doubled at each of the 4 stages
    dropout: float = 0.3
    class_weights: bool = True
    label_smoothing: float = 0.1
    loss_weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"emotion": 1.0, "age": 1.0, "ethnicity": 1.0, "gender": 1.0}
    )
    # Training.
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.1  # AdamW (decoupled): 1e-4 would do next to nothing
    patience: int = 8
    augment: bool = True
    grayscale_prob: float = 0.5  # real faces are often grey; so is most emotion data
    # Scale (frlib.scale): "auto" picks by hardware (TPU, several GPUs, one GPU, CPU).
    strategy: str = "auto"  # auto, default, mirrored, tpu
    mixed_precision: str = "auto"  # auto, float32, mixed_float16, mixed_bfloat16
    jit_compile: str = "auto"  # auto, true, false
    # Examples held for shuffling when streaming TFRecords (tfrecord:DIR data): memory is
    # about this times one crop (10000 x 27 KB at 96 px).
    shuffle_buffer: int = 10000

    @classmethod
    def smoke(cls, **overrides) -> Config:
        """A small config that runs every stage on a 2-core CPU in about a minute, and learns.

        400 synthetic images (~1,000 faces) at 64 px for 18 epochs: enough for held-out accuracy
        well above the majority baseline on every task (tests/test_train.py checks it); at 48 px
        the glasses that carry the gender cue were too small to learn reliably in that time.
        """
        small = dict(
            data=["synthetic:data/synthetic-smoke?images=400"],
            out="runs/smoke",
            image_size=64,
            epochs=18,
            batch_size=32,
            learning_rate=3e-3,
            patience=18,
            width=32,
            dropout=0.2,
            label_smoothing=0.0,
            weight_decay=1e-4,
            grayscale_prob=0.2,
        )
        small.update(overrides)
        return cls(**small)

    @classmethod
    def from_env(cls, **overrides) -> Config:
        """Smoke config when FRLIB_SMOKE=1 is set, else the full defaults; then the overrides."""
        if smoke_mode():
            return cls.smoke(**overrides)
        return cls(**overrides)

    def replace(self, **changes) -> Config:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        from frlib.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Config:
        """Read a saved config; unknown keys (from a newer frlib) are ignored."""
        raw = json.loads(Path(path).read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
