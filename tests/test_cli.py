"""The command line: no prompts, machine-readable outputs, non-zero exit codes on failure."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from frlib.detect import compose_faces


def frlib(*args, env_extra=None, cwd=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "frlib", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return root, {"FRLIB_CACHE": str(root / "cache")}


@pytest.fixture(scope="module")
def run(workdir):
    root, env = workdir
    out = root / "run"
    result = frlib(
        "train",
        "--smoke",
        "--data",
        f"synthetic:{root / 'syn'}?images=40",
        "--out",
        out,
        "--epochs",
        "1",
        env_extra=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.parametrize("command", ["", "prepare", "train", "evaluate", "predict", "demo"])
def test_help(command):
    result = frlib(*([command] if command else []), "--help")
    assert result.returncode == 0 and "usage" in result.stdout


def test_prepare_writes_the_report(workdir):
    root, env = workdir
    result = frlib(
        "prepare",
        "--smoke",
        "--data",
        f"synthetic:{root / 'syn'}?images=40",
        "--out",
        root / "prep",
        env_extra=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((root / "prep" / "report.json").read_text())
    assert set(report) == {"images", "faces", "splits"}
    assert report["images"]["ok"] == 40 and report["images"]["failed"] == []
    assert report["faces"]["usable"] == sum(report["splits"].values()) > 40
    assert all(set(s) >= {"line", "reason"} for s in report["faces"]["skipped"])


def test_bad_data_spec_fails_cleanly(workdir):
    root, env = workdir
    result = frlib("prepare", "--data", "nosuch:thing", "--out", root / "x", env_extra=env)
    assert result.returncode != 0 and "unknown data kind" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_report(run, workdir):
    root, env = workdir
    report_path = root / "eval.json"
    result = frlib("evaluate", "--model", run, "--report", report_path, env_extra=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    for task in ("emotion", "age", "ethnicity", "gender"):
        assert {"accuracy", "macro_f1", "support", "baseline_accuracy"} <= set(report[task])


def test_predict_json_lines_and_exit_code(run, workdir, http_server):
    root, env = workdir
    photo, boxes = compose_faces()
    path = root / "photo.jpg"
    Image.fromarray(photo).save(path)
    url = http_server.add("/p.jpg", path.read_bytes())
    (root / "notes.txt").write_text("not an image")
    result = frlib(
        "predict",
        "--model",
        run,
        "--json",
        path,
        url,
        root / "notes.txt",
        "--annotate",
        root / "ann.png",
        env_extra=env,
    )
    assert result.returncode == 1  # one input failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == [str(path), url, str(root / "notes.txt")]
    assert lines[0]["face_detected"] is True and len(lines[0]["faces"]) == 3
    face = lines[0]["faces"][0]
    assert set(face) == {"box", "emotion", "age", "ethnicity", "gender"}
    assert set(face["gender"]) == {"label", "probs"}
    assert lines[1]["faces"] == lines[0]["faces"]
    assert "not an image" in lines[2]["error"]
    assert (root / "ann_0.png").is_file() and not (root / "ann_2.png").exists()
    ok = frlib("predict", "--model", run, path, env_extra=env)
    assert ok.returncode == 0 and "3 face(s)" in ok.stdout


def test_missing_model_is_a_clear_error(workdir):
    root, env = workdir
    result = frlib("predict", "--model", root / "nowhere", "x.jpg", env_extra=env)
    assert result.returncode != 0 and "train a model first" in result.stderr


def test_demo_smoke(tmp_path):
    result = frlib(
        "demo",
        "--smoke",
        "--epochs",
        "2",
        "--out",
        tmp_path / "demo",
        cwd=tmp_path,
        env_extra={"FRLIB_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "report.json",
        "annotated.png",
        "photo.jpg",
        "predictions.json",
        "run/model.keras",
    ):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "baseline" in result.stdout
