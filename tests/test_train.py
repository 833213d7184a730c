"""Training: a short CPU run learns every task; runs reload exactly; a killed run resumes."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from frlib.evaluate import evaluate_run
from frlib.labels import TASKS
from frlib.predict import load_model

# Margins measured on this config: held-out accuracy beat the majority baseline by
# 0.2-0.8 per task. A model that learned nothing is within a few points of it.
MARGIN = {"emotion": 0.08, "age": 0.2, "ethnicity": 0.1, "gender": 0.1}


@pytest.fixture(scope="module")
def run(smoke_run):
    """The smoke run (Config.smoke(): 400 synthetic images, 64 px, 18 epochs), trained once."""
    return smoke_run


def test_run_directory_holds_everything(run):
    for name in (
        "model.keras",
        "config.json",
        "vocabulary.json",
        "split.json",
        "history.csv",
        "majority.json",
        "class_weights.json",
        "report.json",
    ):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "best.keras").is_file()
    assert any((run / "logs").rglob("*tfevents*"))


def test_short_training_beats_the_majority_baseline_on_held_out_faces(run):
    report = evaluate_run(run)
    for task in TASKS:
        gain = report[task]["accuracy"] - report[task]["baseline_accuracy"]
        assert gain > MARGIN[task], (
            task,
            report[task]["accuracy"],
            report[task]["baseline_accuracy"],
        )
        assert report[task]["support"] >= 40


def test_save_load_gives_identical_predictions(run, tmp_path):
    model = load_model(run)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.keras").write_bytes((run / "model.keras").read_bytes())
    again = load_model(copy)
    batch = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3)).astype(np.float32)
    first, second = model(batch), again(batch)
    for task in TASKS:
        np.testing.assert_array_equal(np.asarray(first[task]), np.asarray(second[task]))


def _epochs(history):
    if not history.is_file():
        return []
    with history.open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_killed_training_resumes_from_the_last_finished_epoch(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "frlib",
        "train",
        "--smoke",
        "--data",
        f"synthetic:{tmp_path / 'syn'}?images=40",
        "--out",
        str(out),
        "--epochs",
        "6",
    ]
    env = {**os.environ, "FRLIB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_epochs(out / "history.csv")) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _epochs(out / "history.csv")
    assert 2 <= len(done) < 6, done
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    epochs = _epochs(out / "history.csv")
    assert epochs == list(range(6)), epochs  # no epoch repeated, none missing
    assert (out / "model.keras").is_file()


def test_a_run_folder_of_other_data_is_refused(tmp_path):
    from frlib.config import Config
    from frlib.train import _saved_split

    first = Config.smoke(data=["synthetic:a"], out=str(tmp_path))
    first.save(tmp_path / "config.json")
    (tmp_path / "split.json").write_text('{"train": [], "val": [], "test": []}')
    assert _saved_split(first, tmp_path) == {"train": [], "val": [], "test": []}
    with pytest.raises(ValueError, match="other data"):
        _saved_split(first.replace(data=["synthetic:b"]), tmp_path)


def test_other_data_evaluation_leaves_out_the_runs_training_images(run):
    from frlib.config import Config

    spec = Config.load(run / "config.json").data[0]
    same_images = spec + "&seed=0"  # another spec naming the very same images
    own, other = evaluate_run(run), evaluate_run(run, data=[same_images])
    assert other["split"] == "all"
    for task in TASKS:
        assert other[task]["support"] == own[task]["support"]
