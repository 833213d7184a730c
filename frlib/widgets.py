"""Upload a photo in a notebook and see every face labelled: an ipywidgets upload button,
and Colab's own upload as the fallback for files the button cannot carry there."""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets

from frlib.images import load_image
from frlib.notebook import in_colab

# Colab's widget manager drops FileUpload files of about 1 MB or more.
COLAB_ISSUE = "https://github.com/jupyter-widgets/ipywidgets/issues/3452"
PREVIEW_PX = 560


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in a FileUpload value.

    ipywidgets 8 gives a tuple of dicts with "name" and "content" (a memoryview); ipywidgets 7
    a dict keyed by file name whose values hold "content".
    """
    if isinstance(value, dict):
        return [(str(name), bytes(item["content"])) for name, item in value.items()]
    return [(str(item.get("name", "upload")), bytes(item["content"])) for item in value or ()]


def help_text() -> str:
    """What the widget does; on Colab, the way round its upload limit."""
    text = (
        "Choose a photo (JPEG, PNG, WebP...): every face found is boxed and gets its "
        "emotion, age band, ethnicity and gender, with the probabilities below."
    )
    if in_colab():
        text += (
            f" On Colab, files of 1 MB or more do not arrive through this button "
            f'(<a href="{COLAB_ISSUE}" target="_blank">ipywidgets #3452</a>): run '
            "<code>frlib.widgets.colab_upload_and_predict(predictor)</code> instead."
        )
    return text


def picture_output(picture, name: str) -> dict:
    """A display_data output of a PIL image, its PNG base64-encoded as the notebook format
    wants (Output.append_display_data would put raw bytes there, which the browser can't show)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    data = {"image/png": png, "text/plain": f"<{name}, faces labelled>"}
    return {"output_type": "display_data", "data": data, "metadata": {}}


def show_prediction(output: widgets.Output, name: str, data: bytes, predictor) -> None:
    """Label the faces of one uploaded file into `output`: a summary line, the annotated
    picture and the probability table; anything that goes wrong becomes a one-line message."""
    from frlib.cli import format_result
    from frlib.predict import annotate, probability_table

    output.outputs = ()
    output.append_stdout(f"Looking for faces in {name}...\n")
    try:
        limit = predictor.config.max_image_bytes
        if len(data) > limit:
            raise ValueError(
                f"{len(data) / 2**20:.1f} MB is over the {limit / 2**20:.0f} MB limit; "
                "resize the photo first"
            )
        rgb = load_image(data, name)
        result = predictor.predict(rgb)
        picture = annotate(rgb, result)
    except Exception as exc:  # the user sees why, never a traceback
        output.outputs = ()
        output.append_stderr(f"Could not label {name}: {exc}\n")
        return
    picture.thumbnail((PREVIEW_PX, PREVIEW_PX))
    output.outputs = ()
    output.append_stdout(format_result({**result, "input": name}) + "\n")
    output.outputs += (picture_output(picture, name),)
    output.append_display_data(probability_table(result))


class UploadAndPredict(widgets.VBox):
    """A help line, an upload button and an output area that shows each upload labelled."""

    def __init__(self, predictor=None):
        super().__init__()
        self.predictor = predictor
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Photo")
        self.output = widgets.Output()
        self.children = [widgets.HTML(help_text()), self.upload, self.output]
        self.upload.observe(self._on_upload, names="value")

    def _load_predictor(self):
        if self.predictor is None:
            from frlib.predict import Predictor

            self.predictor = Predictor.load()
        return self.predictor

    def _on_upload(self, change) -> None:
        try:
            files = uploaded_files(change["new"])
            predictor = self._load_predictor() if files else None
        except Exception as exc:  # no model, or an upload of an unknown shape
            self.output.outputs = ()
            self.output.append_stderr(f"Could not label the upload: {exc}\n")
            return
        for name, data in files:
            show_prediction(self.output, name, data, predictor)


def _colab_widgets() -> None:
    """Colab shows third-party widgets (ipywidgets 8) only through its custom widget manager."""
    if in_colab():
        from google.colab import output

        output.enable_custom_widget_manager()


def upload_and_predict(predictor=None) -> widgets.Widget:
    """The upload-and-predict widget; show it as a cell's result.

    Args:
        predictor: a `frlib.predict.Predictor` (default: `Predictor.load()`, loaded at the
            first upload: the shipped model, else the newest run).
    Returns:
        An `UploadAndPredict` box (`.upload` is the FileUpload, `.output` the Output).
    """
    _colab_widgets()
    return UploadAndPredict(predictor)


def colab_upload_and_predict(predictor=None) -> None:
    """On Colab, upload with Colab's own file picker (no 1 MB limit) and show each photo labelled."""
    if not in_colab():
        raise RuntimeError("colab_upload_and_predict needs Google Colab; use upload_and_predict()")
    from google.colab import files
    from IPython.display import display

    from frlib.predict import Predictor

    _colab_widgets()
    predictor = predictor or Predictor.load()
    for name, data in files.upload().items():
        output = widgets.Output()
        display(output)
        show_prediction(output, name, data, predictor)
