"""FairFace (CC BY 4.0) from the Hugging Face Hub: resumable parquet downloads, cached faces."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from frlib.adapters import add_face, fairface_labels, issue, normalise, write_once
from frlib.config import default_cache_dir
from frlib.download import USER_AGENT, _short_connection_error, sniff_image_type
from frlib.sources import LoadResult, SourceError, register

HUB_BASE = "https://huggingface.co"
REPO = "datasets/HuggingFaceM4/FairFace"
REVISION = "main"
CONFIG = "0.25"  # faces cropped with 0.25 padding (the 1.25 config is 4x larger)
# Parquet files of config 0.25, as listed at
# https://huggingface.co/datasets/HuggingFaceM4/FairFace/tree/main/0.25
# (names carry a content hash, so check them if the hub answers 404; `?files=` overrides).
# Train: 86,744 rows in two files of ~250 MB; validation: 10,954 rows, ~63 MB.
HUB_FILES = {
    "train": (
        "train-00000-of-00002-d405faba4f4b9b85.parquet",
        "train-00001-of-00002-dd3cb68164727418.parquet",
    ),
    "validation": ("validation-00000-of-00001-951dbd63c8724ee1.parquet",),
}
# Class-label order of the hub's `age`, `gender` and `race` columns.
AGE_NAMES = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
GENDER_NAMES = ("Male", "Female")
RACE_NAMES = (
    "East Asian",
    "Indian",
    "Black",
    "White",
    "Middle Eastern",
    "Latino_Hispanic",
    "Southeast Asian",
)
ALTERNATIVES = (
    "use a local copy instead: fairface:DIR (FairFace's csv files and images) or utkface:DIR"
)
CHUNK_SIZE = 64 * 1024  # a cut connection loses at most the chunk in flight
RETRIES = 3


class _CutShort(Exception):
    """A download that ended early; the next try resumes it."""


# A try that fails with one of these is retried while it makes progress.
_NETWORK_ERRORS = (
    _CutShort,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def _reason(exc: Exception) -> str:
    if isinstance(exc, _CutShort):
        return str(exc)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection cut short"
    return _short_connection_error(exc)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _check_reply(response: requests.Response, url: str, part: Path, have: int) -> int | None:
    """Bytes already on disk that the reply continues (None: `part` is complete)."""
    if response.status_code == 416:  # nothing left to send: complete if the sizes agree
        if response.headers.get("Content-Range", "").rpartition("/")[2] == str(have):
            return None
        part.unlink()
        raise _CutShort("the partial file did not match the server's: starting over")
    if response.status_code not in (200, 206):
        raise SourceError(
            f"the Hugging Face Hub answered HTTP {response.status_code} for {url}: "
            f"if its file list changed, name the files with ?files=...; or {ALTERNATIVES}"
        )
    return have if response.status_code == 206 else 0  # 200: the whole file again


def _fetch_into(url: str, part: Path, timeout: float) -> bool:
    """One GET appending to `part` (a Range request when it has bytes); True once complete."""
    from tqdm.auto import tqdm

    have = _size(part)
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        have = _check_reply(response, url, part, have)
        if have is None:
            return True
        length = response.headers.get("Content-Length", "")
        total = have + int(length) if length.isdigit() else None
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.stem) as bar,
        ):
            for chunk in response.iter_content(CHUNK_SIZE):
                bar.update(out.write(chunk))
    if total is not None and _size(part) != total:
        raise _CutShort("download cut short")
    return True


def download_resumable(url: str, target: Path, *, timeout: float = 30.0) -> Path:
    """Download `url` to `target` once: a `.part` file resumed by Range requests, then renamed.

    Retries while a try makes progress; SourceError names the alternatives when it cannot.
    """
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for _ in range(RETRIES + 1):
        before = _size(part)
        try:
            _fetch_into(url, part, timeout)
            os.replace(part, target)
            return target
        except _NETWORK_ERRORS as exc:
            reason = _reason(exc)
        if _size(part) == before:  # no progress: offline or refused, not worth another try
            break
    raise SourceError(
        f"fairface-hub: could not reach the Hugging Face Hub for {url} ({reason}); {ALTERNATIVES}"
    )


def _name(names: tuple[str, ...], code):
    return names[code] if isinstance(code, int) and 0 <= code < len(names) else code


def _add_row(row: dict, line: int, path: Path, name: str, spec: str, result: LoadResult) -> None:
    """One parquet row: its face written once as `<file stem>/<row>.<ext>`, then a record."""
    data = (row.get("image") or {}).get("bytes") or b""
    kind = sniff_image_type(data)
    if kind is None:
        result.skipped.append(issue(spec, line, "row has no image", file=name))
        return
    image = write_once(path.parent / path.stem / f"{line}.{kind}", data)
    labels, problems = fairface_labels(
        _name(AGE_NAMES, row.get("age")),
        _name(GENDER_NAMES, row.get("gender")),
        _name(RACE_NAMES, row.get("race")),
    )
    split = "test" if name.startswith("validation") else None  # FairFace's own val: held out
    add_face(result, spec, line, str(image), labels, problems, split=split, file=name)


def _read_rows(path: Path, name: str, spec: str, limit: int | None, result: LoadResult) -> None:
    """Add the rows of one parquet file until `result` holds `limit` records."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["image", "age", "gender", "race"]
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=512, columns=columns)
        rows = (row for batch in batches for row in batch.to_pylist())
        for line, row in enumerate(rows, start=1):
            if limit is not None and len(result.records) >= limit:
                return
            _add_row(row, line, path, name, spec, result)
    except pa.ArrowException as exc:  # not OSError: a full disk must not cost the download
        path.unlink(missing_ok=True)
        raise SourceError(
            f"{path} is not a readable parquet file ({exc}); removed: load again"
        ) from exc


def _file_names(options: dict[str, str], spec: str) -> list[str]:
    if options.get("files"):
        return [name.strip() for name in options["files"].split(",") if name.strip()]
    names = []
    for split in (options.get("split") or "train,validation").split(","):
        key = {"val": "validation", "test": "validation"}.get(normalise(split), normalise(split))
        if key not in HUB_FILES:
            raise SourceError(f"{spec}: unknown split {split!r}: use train or validation")
        names += HUB_FILES[key]
    return names


@register("fairface-hub")
def load_fairface_hub(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """FairFace from the hub. Options: `split=train|validation`, `limit=N`, `files=`, `base=`,
    `cache=` (default: the frlib cache dir). FairFace's validation rows get split "test"."""
    limit = options.get("limit")
    if limit is not None and not (limit.isdigit() and int(limit) > 0):
        raise SourceError(f"{spec}: limit must be a positive whole number, not {limit!r}")
    limit = int(limit) if limit is not None else None
    base = (options.get("base") or HUB_BASE).rstrip("/")
    cache = Path(options.get("cache") or default_cache_dir()) / "hub" / "FairFace" / CONFIG
    result = LoadResult()
    for name in _file_names(options, spec):
        if limit is not None and len(result.records) >= limit:
            break
        url = f"{base}/{REPO}/resolve/{REVISION}/{CONFIG}/{name}"
        _read_rows(download_resumable(url, cache / name), name, spec, limit, result)
    return result
