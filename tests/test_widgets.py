"""The upload-and-predict widget, fed uploads the way ipywidgets 8 and 7 deliver them."""

from __future__ import annotations

import base64
import io
import sys
import types
from datetime import datetime, timezone
from pathlib import Path

import pytest
from matplotlib import cbook
from PIL import Image

from frlib import widgets
from frlib.labels import TASKS
from frlib.predict import Predictor

HOPPER = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def upload8(name: str, data: bytes) -> tuple[dict, ...]:
    """A FileUpload value as ipywidgets 8 gives it."""
    modified = datetime(2024, 5, 1, tzinfo=timezone.utc)
    item = {"name": name, "type": "", "size": len(data), "content": memoryview(data)}
    return ({**item, "last_modified": modified},)


def texts(output) -> str:
    return "".join(o.get("text", "") for o in output.outputs)


@pytest.fixture(scope="module")
def predictor(smoke_run):
    return Predictor.load(smoke_run)


def test_uploaded_files_reads_ipywidgets_8_values():
    value = upload8("a.jpg", b"abc") + upload8("b.png", b"de")
    assert widgets.uploaded_files(value) == [("a.jpg", b"abc"), ("b.png", b"de")]
    assert widgets.uploaded_files(()) == []


def test_uploaded_files_reads_ipywidgets_7_values():
    value = {"a.jpg": {"metadata": {"name": "a.jpg", "size": 3}, "content": b"abc"}}
    assert widgets.uploaded_files(value) == [("a.jpg", b"abc")]
    assert widgets.uploaded_files({}) == []


def test_an_upload_shows_the_labelled_picture_and_a_table(predictor):
    box = widgets.upload_and_predict(predictor)
    assert box.upload.accept == "image/*" and not box.upload.multiple
    box.upload.value = upload8("hopper.jpg", HOPPER.read_bytes())
    kinds = [o["output_type"] for o in box.output.outputs]
    assert kinds == ["stream", "display_data", "display_data"]
    summary, picture, table = box.output.outputs
    assert summary["name"] == "stdout"
    assert "hopper.jpg: 1 face(s)" in summary["text"]
    assert "gender=" in summary["text"]
    png = base64.b64decode(picture["data"]["image/png"])
    width, height = Image.open(io.BytesIO(png)).size
    assert height == widgets.PREVIEW_PX and round(width / height, 2) == round(512 / 600, 2)
    html = table["data"]["text/html"]
    assert "<table" in html and all(t in html for t in TASKS) and "female" in html


def test_a_file_that_is_not_an_image_gives_a_message_not_a_traceback(predictor):
    box = widgets.upload_and_predict(predictor)
    box.upload.value = upload8("notes.txt", b"shopping list: eggs, milk")
    (message,) = box.output.outputs
    assert message["output_type"] == "stream" and message["name"] == "stderr"
    assert message["text"].startswith("Could not label notes.txt: ")
    assert "not an image" in message["text"]
    assert "Traceback" not in message["text"]


def test_a_file_over_the_size_limit_is_refused(predictor):
    small = Predictor(predictor.model, predictor.config.replace(max_image_bytes=1000))
    box = widgets.upload_and_predict(small)
    box.upload.value = upload8("hopper.jpg", HOPPER.read_bytes())
    assert "over the" in texts(box.output) and "resize" in texts(box.output)


def test_without_a_model_the_widget_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("frlib.predict.SHIPPED_MODEL", tmp_path / "no-model")
    box = widgets.upload_and_predict()
    box.upload.value = upload8("hopper.jpg", HOPPER.read_bytes())
    assert "no model found: train one" in texts(box.output)


@pytest.fixture
def colab(monkeypatch):
    """A stand-in google.colab package that records enable_custom_widget_manager calls."""
    calls = []
    google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "output"))
    output.enable_custom_widget_manager = lambda: calls.append("enabled")
    colab.output, google.colab = output, colab
    for name, module in {
        "google": google,
        "google.colab": colab,
        "google.colab.output": output,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_on_colab_the_widget_manager_is_enabled_and_the_fallback_named(colab):
    box = widgets.upload_and_predict()
    assert colab == ["enabled"]
    help_html = box.children[0].value
    assert "colab_upload_and_predict(predictor)" in help_html and "3452" in help_html


def test_elsewhere_the_help_has_no_colab_note_and_the_fallback_refuses():
    assert "Colab" not in widgets.help_text()
    with pytest.raises(RuntimeError, match="needs Google Colab"):
        widgets.colab_upload_and_predict()
