"""Prediction on any photo: detect faces, crop them like in training, classify every face."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from frlib.config import Config
from frlib.images import ImageError, ImageInput, crop_face, load_image
from frlib.labels import TASKS

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "model_data" / "model"


def load_model(run_dir):
    """Load a run's model.keras in Keras' safe mode (no arbitrary code), without the optimizer."""
    import keras

    import frlib.losses  # noqa: F401  (registers the custom metrics and losses)

    path = Path(run_dir) / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train a model first (frlib train --out DIR)")
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def latest_run(*roots: str | os.PathLike) -> Path | None:
    """The newest run directory (by its model.keras) under `roots` (default ./runs), or None."""
    models = [m for root in roots or ("runs",) for m in Path(root).glob("*/model.keras")]
    return max(models, key=lambda m: m.stat().st_mtime).parent if models else None


def default_run() -> Path:
    """The shipped model if there is one, else the newest run under ./runs."""
    if (SHIPPED_MODEL / "model.keras").is_file():
        return SHIPPED_MODEL
    run = latest_run()
    if run is None:
        raise FileNotFoundError("no model found: train one (make demo) or pass a run directory")
    return run


def read_input(image: ImageInput, config: Config | None = None) -> tuple[np.ndarray, str]:
    """Decode any supported input (path, http(s) URL, bytes, PIL image, array) to RGB."""
    config = config or Config()
    if isinstance(image, str | os.PathLike):
        text = str(image)
        if text.startswith(("http://", "https://")):
            from frlib.download import DownloadError, fetch_bytes

            try:
                data = fetch_bytes(
                    text, timeout=config.timeout, max_bytes=config.max_image_bytes, retries=1
                )
            except DownloadError as exc:
                raise ImageError(str(exc)) from exc
            return load_image(data, text), text
        if "://" in text:
            scheme = text.split("://", 1)[0]
            raise ImageError(
                f"{text}: unsupported scheme {scheme!r}; give a local path or http(s) URL"
            )
        return load_image(text), text
    return load_image(image), type(image).__name__


class Predictor:
    """A trained model with its config and vocabulary, ready to label faces in photos."""

    def __init__(self, model, config: Config, run_dir: Path | None = None):
        self.model, self.config, self.run_dir = model, config, run_dir

    @classmethod
    def load(cls, run_dir=None) -> Predictor:
        """Load a run directory (default: the shipped model, else the latest run)."""
        run = Path(run_dir) if run_dir else default_run()
        return cls(load_model(run), Config.load(run / "config.json"), run)

    def classify(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities per task for a batch of size x size uint8 crops."""
        from frlib.evaluate import predict_probs

        return predict_probs(self.model, crops)

    def _faces(self, rgb: np.ndarray):
        from frlib.detect import detect_faces

        height, width = rgb.shape[:2]
        boxes = detect_faces(rgb)
        if boxes:
            norm = [(x0 / width, y0 / height, x1 / width, y1 / height) for x0, y0, x1, y1 in boxes]
            crops = [crop_face(rgb, b, self.config.image_size, self.config.margin) for b in norm]
            return True, [list(map(int, b)) for b in boxes], crops
        return False, [[0, 0, width, height]], [crop_face(rgb, None, self.config.image_size)]

    def predict(self, image: ImageInput) -> dict:
        """Detect and classify every face; with no face found, classify the whole image (flagged).

        Returns:
            {"input", "face_detected", "image_size": [w, h], "faces": [{"box": [x0, y0, x1, y1],
            task: {"label", "probs": {class: p}}}]}; boxes are pixels of the oriented input.
        Raises:
            ImageError: not an image, too large, unreachable URL or unsupported scheme.
        """
        return self._classify_all([read_input(image, self.config)])[0]

    def predict_many(self, images: list[ImageInput]) -> list[dict]:
        """Predict on many inputs with one batched classification; failures become error entries."""
        decoded, errors = [], {}
        for index, item in enumerate(images):
            try:
                decoded.append(read_input(item, self.config))
            except ImageError as exc:
                errors[index] = {"input": str(item)[:200], "error": str(exc)}
        done = iter(self._classify_all(decoded))
        return [errors[i] if i in errors else next(done) for i in range(len(images))]

    def _classify_all(self, decoded: list[tuple[np.ndarray, str]]) -> list[dict]:
        results, crops, owners = [], [], []
        for rgb, name in decoded:
            found, boxes, face_crops = self._faces(rgb)
            results.append(
                {
                    "input": name,
                    "face_detected": found,
                    "image_size": [rgb.shape[1], rgb.shape[0]],
                    "faces": [{"box": b} for b in boxes],
                }
            )
            crops += face_crops
            owners += [(len(results) - 1, i) for i in range(len(boxes))]
        if crops:
            probs = self.classify(np.stack(crops))
            for row, (r, f) in enumerate(owners):
                face = results[r]["faces"][f]
                for task, classes in TASKS.items():
                    p = probs[task][row]
                    face[task] = {
                        "label": classes[int(np.argmax(p))],
                        "probs": {c: round(float(v), 4) for c, v in zip(classes, p, strict=True)},
                    }
        return results


def annotate(image: ImageInput, result: dict):
    """Draw each face's box and labels on the image; returns a PIL image for display or saving."""
    from PIL import Image, ImageDraw, ImageFont

    rgb = image if isinstance(image, np.ndarray) else read_input(image)[0]
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    scale = max(canvas.size) / 640
    font = ImageFont.load_default(size=max(11, int(13 * scale)))
    width = max(2, int(3 * scale))
    for face in result.get("faces", []):
        x0, y0, x1, y1 = face["box"]
        colour = (40, 200, 80) if result.get("face_detected") else (230, 160, 30)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        lines = [
            f"{t}: {face[t]['label']} {max(face[t]['probs'].values()):.0%}"
            for t in TASKS
            if t in face
        ]
        text = "\n".join(lines)
        box = draw.multiline_textbbox((x0, y1 + 2), text, font=font)
        draw.rectangle(box, fill=(0, 0, 0))
        draw.multiline_text((x0, y1 + 2), text, fill=(255, 255, 255), font=font)
    return canvas


def probability_table(result: dict):
    """Class probabilities of every face in a `Predictor.predict` result: a pandas DataFrame
    with a (task, class) row per class and a column per face."""
    import pandas as pd

    index = pd.MultiIndex.from_tuples(
        [(t, c) for t, classes in TASKS.items() for c in classes], names=["task", "class"]
    )
    faces = {
        f"face {i + 1}": [face[t]["probs"][c] if t in face else float("nan") for t, c in index]
        for i, face in enumerate(result.get("faces", []))
    }
    return pd.DataFrame(faces, index=index)
