"""frlib.notebook: the work folder, the Colab badge and install line, picking and keeping runs."""

from __future__ import annotations

import os
from pathlib import Path

from frlib import notebook
from frlib.config import WORKDIR_ENV, Config, workdir
from frlib.detect import detect_faces
from frlib.images import load_image
from frlib.train import ensure_run

ROOT = Path(__file__).resolve().parent.parent


def test_workdir_is_the_env_else_the_checkout_root_else_here(tmp_path, monkeypatch):
    monkeypatch.delenv(WORKDIR_ENV, raising=False)
    monkeypatch.chdir(ROOT / "notebooks")
    assert workdir() == ROOT  # a notebook opened from notebooks/ shares runs/ with make demo
    monkeypatch.chdir(tmp_path)
    assert workdir() == tmp_path.resolve()
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "work"))
    assert workdir() == (tmp_path / "work").resolve()


def test_setup_moves_into_the_work_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "work"))
    notebook.setup()
    assert Path.cwd() == (tmp_path / "work").resolve()
    assert "smoke mode" in capsys.readouterr().out  # the root conftest sets FRLIB_SMOKE=1


def test_badge_and_install_line_follow_repo_url(monkeypatch):
    monkeypatch.setattr(notebook, "REPO_URL", "https://github.com/someone/fork")
    assert notebook.colab_url("04_predict.ipynb") == (
        "https://colab.research.google.com/github/someone/fork/blob/main/notebooks/04_predict.ipynb"
    )
    assert notebook.colab_url("x.ipynb") in notebook.colab_badge("x.ipynb")
    assert (
        notebook.install_line() == '%pip install -q "frlib @ git+https://github.com/someone/fork"'
    )


def test_parameters_left_at_none_keep_the_defaults():
    config = notebook.config_from_params(epochs=None, batch_size=8, data=None)
    assert config.batch_size == 8
    assert config.epochs == Config.smoke().epochs and config.data == Config.smoke().data


def test_keep_on_drive_changes_nothing_off_colab():
    config = Config.smoke()
    assert notebook.keep_on_drive(config) is config


def make_run(folder: Path, mtime: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.keras").touch()
    os.utime(folder / "model.keras", (mtime, mtime))
    return folder


def test_find_run_takes_the_given_then_shipped_then_newest_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "runs" / "old", 1_000)
    newest = make_run(tmp_path / "runs" / "new", 2_000)
    monkeypatch.setattr("frlib.predict.SHIPPED_MODEL", tmp_path / "model_data" / "model")
    assert notebook.find_run("runs/old") == Path("runs/old")
    assert notebook.find_run().resolve() == newest
    assert notebook.find_run(shipped=True).resolve() == newest  # nothing shipped yet
    shipped = make_run(tmp_path / "model_data" / "model", 0)
    assert notebook.find_run(shipped=True) == shipped


def test_ensure_run_reuses_a_trained_run(tmp_path):
    (tmp_path / "model.keras").touch()
    assert ensure_run(Config.smoke(out=str(tmp_path))) == tmp_path


def test_demo_photo_holds_three_findable_faces(tmp_path):
    photo = notebook.demo_photo(tmp_path / "data" / "three.jpg")
    assert len(detect_faces(load_image(photo))) == 3


def _annotations(image_url: str) -> str:
    import json

    box = {
        "label": ["G_Male"],
        "points": [{"x": 0.1, "y": 0.1}, {"x": 0.5, "y": 0.5}],
        "imageWidth": 10,
        "imageHeight": 10,
    }
    return json.dumps({"content": image_url, "annotation": [box]})


def test_colab_data_uses_dataturks_only_when_its_images_answer(
    http_server, monkeypatch, capsys, tmp_path
):
    import frlib.notebook as nb
    from conftest import image_bytes

    live = http_server.add("/live.json", _annotations(http_server.add("/a.jpg", image_bytes())))
    monkeypatch.setattr(nb, "DATATURKS_URL", live)
    specs = nb.colab_data(fer2013=str(tmp_path / "missing.csv"))
    assert specs[0] == f"dataturks:{live}" and "fairface-hub:" in specs
    assert "fer2013.csv" in capsys.readouterr().out  # says how to get the emotion data
    dead = http_server.add("/dead.json", _annotations(http_server.url("/gone.jpg")))
    monkeypatch.setattr(nb, "DATATURKS_URL", dead)
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    specs = nb.colab_data(fer2013=str(tmp_path / "fer2013.csv"))
    assert not any(s.startswith("dataturks:") for s in specs)
    assert specs[-1] == f"fer2013:{tmp_path / 'fer2013.csv'}"
    assert "does not answer" in capsys.readouterr().out
