"""FER-2013's fer2013.csv: 48x48 grey faces as pixel rows, decoded once into cached PNG files."""

from __future__ import annotations

import hashlib
import io
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from frlib.adapters import (
    csv_rows,
    issue,
    match_class,
    normalise,
    parse_map,
    task_labels,
    write_once,
)
from frlib.config import default_cache_dir
from frlib.files import read_json, write_json
from frlib.sources import FaceRecord, LoadResult, SourceError, register

FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}


def _fer_pixels(row: dict) -> tuple[int, np.ndarray]:
    """(emotion code, 48x48 uint8 face) of one fer2013.csv row; ValueError says what is wrong."""
    code = (row.get("emotion") or "").strip()
    if not code.isdigit() or int(code) >= len(FER_EMOTIONS):
        raise ValueError(f"emotion {code!r} is not a code 0-6")
    try:
        with warnings.catch_warnings():  # older NumPy warns where newer raises
            warnings.simplefilter("error", DeprecationWarning)
            pixels = np.fromstring(row.get("pixels") or "", dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        raise ValueError("pixel values are not whole numbers") from None
    if pixels.size != 48 * 48:
        raise ValueError(f"{pixels.size} pixel values, expected 2304 (48x48)")
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError("pixel values outside 0-255")
    return int(code), pixels.astype(np.uint8).reshape(48, 48)


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")  # 2-D uint8: greyscale
    return buffer.getvalue()


def _decode_fer(csv_path: Path, folder: Path) -> dict:
    """Write each good row as `<line>.png` in `folder`; return (and save) rows and problems."""
    rows, skipped = [], []
    for line, row in csv_rows(csv_path, ("emotion", "pixels")):
        try:
            code, pixels = _fer_pixels(row)
        except ValueError as exc:
            skipped.append([line, str(exc)])
            continue
        if not (folder / f"{line}.png").is_file():
            write_once(folder / f"{line}.png", _png(pixels))
        rows.append([line, code, (row.get("usage") or "").strip()])
    manifest = {"rows": rows, "skipped": skipped}
    write_json(folder / "rows.json", manifest)  # last: its presence means every PNG is there
    return manifest


def _fer_records(manifest: dict, folder: Path, mapping: dict[str, str], spec: str) -> LoadResult:
    result = LoadResult(skipped=[issue(spec, line, why) for line, why in manifest["skipped"]])
    left_out: Counter[int] = Counter()
    for line, code, usage in manifest["rows"]:
        emotion = match_class("emotion", FER_EMOTIONS[code], mapping)
        if emotion is None:
            left_out[code] += 1
            continue
        split = FER_USAGE.get(normalise(usage))
        if usage and split is None:
            result.warnings.append(issue(spec, line, f"unknown Usage {usage!r}: split drawn"))
        image = str(folder / f"{line}.png")
        result.records.append(
            FaceRecord(image, None, task_labels(emotion=emotion), spec, line, split)
        )
    for code, count in sorted(left_out.items()):
        name = FER_EMOTIONS[code]
        reason = (
            f"{count} rows of emotion {code} ({name}) have no class here: "
            f"left out (map them with ?map={name}:CLASS)"
        )
        result.skipped.append(issue(spec, f"emotion {code}", reason, count=count))
    return result


@register("fer2013")
def load_fer2013(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """The classic fer2013.csv (48x48 grey faces as pixel rows), decoded once into cached PNGs."""
    csv_path = Path(location).expanduser().resolve()
    if not location or not csv_path.is_file():
        raise SourceError(
            f"fer2013: file {location!r} not found: check the path in your --data spec"
        )
    mapping = parse_map(options.get("map", ""), "emotion", spec)
    stat = csv_path.stat()
    key = hashlib.sha256(f"{csv_path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    folder = Path(options.get("cache") or default_cache_dir()) / "fer2013" / key[:20]
    rows_file = folder / "rows.json"
    manifest = read_json(rows_file) if rows_file.is_file() else _decode_fer(csv_path, folder)
    return _fer_records(manifest, folder, mapping, spec)
