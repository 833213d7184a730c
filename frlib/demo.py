"""The whole job offline: synthetic data → train → evaluate → predict on a multi-face photo."""

from __future__ import annotations

from pathlib import Path

from frlib.config import Config


def demo_config(out: Path, smoke: bool = False, epochs: int | None = None) -> Config:
    """The demo's config: a few CPU minutes on the built-in synthetic faces (seconds if smoke)."""
    if smoke:
        config = Config.smoke(
            data=["synthetic:data/synthetic-smoke?images=160"], out=str(out / "run")
        )
    else:
        config = Config(
            data=["synthetic:data/synthetic?images=600"],
            out=str(out / "run"),
            image_size=64,
            epochs=15,
            batch_size=32,
            learning_rate=3e-3,
        )
    return config.replace(epochs=epochs) if epochs else config


def predict_photo(run_dir: Path, out: Path, name: str) -> dict:
    """Predict on a composed 3-face photo, save the annotated picture, return the result."""
    from PIL import Image

    from frlib.detect import compose_faces
    from frlib.predict import Predictor, annotate

    photo, _ = compose_faces()
    photo_path = out / "photo.jpg"
    Image.fromarray(photo).save(photo_path, quality=92)
    result = Predictor.load(run_dir).predict(str(photo_path))
    annotate(photo, result).save(out / f"{name}.png")
    return result


def run_demo(out: Path, smoke: bool = False, epochs: int | None = None) -> dict:
    """Train, evaluate and predict; writes run/, report.json, photo.jpg and annotated.png to `out`."""
    from frlib.cli import format_result
    from frlib.evaluate import evaluate_run, report_table
    from frlib.files import write_json
    from frlib.predict import SHIPPED_MODEL
    from frlib.train import train

    out.mkdir(parents=True, exist_ok=True)
    run = train(demo_config(out, smoke, epochs), verbose=2)
    report = evaluate_run(run)
    write_json(out / "report.json", report)
    print("\nHeld-out synthetic faces (accuracy and macro-F1 beside the majority baseline):")
    print(report_table(report).to_string())
    result = predict_photo(run, out, "annotated")
    write_json(out / "predictions.json", result)
    print("\nThe model trained on cartoons, on a real photo (expect nonsense labels):")
    print(format_result(result))
    if (SHIPPED_MODEL / "model.keras").is_file():
        shipped = predict_photo(SHIPPED_MODEL, out, "annotated_shipped")
        print("\nThe shipped model, trained on real faces:")
        print(format_result(shipped))
    print(f"\nWrote {out}/report.json, {out}/annotated.png and the run in {run}")
    return report
