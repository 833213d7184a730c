"""Annotation sources: read a `KIND:PATH_OR_URL` spec into one face record per box."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

from frlib.labels import TASKS, parse_dataturks_labels

Box = tuple[float, float, float, float]


@dataclasses.dataclass
class FaceRecord:
    """One labelled face: where its image is, where the face is in it, and its labels."""

    image: str  # http(s) URL or local path of the source image
    box: Box | None  # normalised (x0, y0, x1, y1); None: the image is already a face crop
    labels: dict[str, str | None]  # class name per task, None when missing
    source: str  # the spec it came from
    line: int | None = None  # line (or row) in the annotation file, for reports
    split: str | None = None  # a split fixed by the source itself, if any


@dataclasses.dataclass
class LoadResult:
    """Records of one or more sources, plus every row or box that was skipped and why."""

    records: list[FaceRecord] = dataclasses.field(default_factory=list)
    skipped: list[dict] = dataclasses.field(default_factory=list)
    warnings: list[dict] = dataclasses.field(default_factory=list)

    def extend(self, other: LoadResult) -> LoadResult:
        self.records += other.records
        self.skipped += other.skipped
        self.warnings += other.warnings
        return self

    def summary(self) -> str:
        return (
            f"{len(self.records)} faces from {len({r.image for r in self.records})} images; "
            f"{len(self.skipped)} skipped, {len(self.warnings)} label warnings"
        )


class SourceError(ValueError):
    """A spec or annotation file that cannot be read at all."""


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def read_text(path_or_url: str, *, timeout: float = 30.0) -> str:
    """Text of a local file or an http(s) URL, with a clear error naming it."""
    if _is_url(path_or_url):
        import requests

        try:
            response = requests.get(path_or_url, timeout=timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise SourceError(
                f"could not fetch annotations from {path_or_url}: {exc}. "
                "Check the URL and your connection, or pass a local file."
            ) from exc
        return response.text
    path = Path(path_or_url).expanduser()
    if not path.is_file():
        raise SourceError(f"annotation file {path} not found: check the path in your --data spec")
    return path.read_text(encoding="utf-8", errors="replace")


def _resolve_content(content: str, base: str) -> str:
    """A row's `content`: a URL as it is, a relative path against the annotation file's folder."""
    if _is_url(content) or Path(content).is_absolute():
        return content
    if _is_url(base):
        return base.rsplit("/", 1)[0] + "/" + content
    return str(Path(base).expanduser().resolve().parent / content)


def _rows(text: str) -> list[tuple[int, object]]:
    """(line number, parsed JSON or the exception) for a JSON-lines file or a JSON array."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            return [(i + 1, row) for i, row in enumerate(json.loads(stripped))]
        except json.JSONDecodeError:
            pass  # maybe JSON lines whose first line is an array; fall through
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                rows.append((number, exc))
    return rows


def _box(points, width, height) -> Box | None:
    """Normalised (x0, y0, x1, y1) from DataTurks' two corner points, or None if unusable."""
    raw = [(float(p["x"]), float(p["y"])) for p in points]
    # Some exports give pixels instead of fractions: decided once per box, not per point.
    if any(x > 1.0 or y > 1.0 for x, y in raw):
        raw = [(x / float(width), y / float(height)) for x, y in raw]
    xs = [min(max(x, 0.0), 1.0) for x, _ in raw]
    ys = [min(max(y, 0.0), 1.0) for _, y in raw]
    return min(xs), min(ys), max(xs), max(ys)


def load_dataturks(path_or_url: str, *, spec: str | None = None) -> LoadResult:
    """Read a DataTurks face annotation file (JSON lines or a JSON array), one record per box.

    Args:
        path_or_url: local path or http(s) URL of the file.
        spec: the spec name recorded on each record (defaults to `dataturks:<path>`).
    Returns:
        LoadResult; malformed lines, rows without annotation, boxes with no area and
        unknown labels are reported with their line number and the load goes on.
    """
    spec = spec or f"dataturks:{path_or_url}"
    result = LoadResult()
    for line, row in _rows(read_text(path_or_url)):
        where = {"source": spec, "line": line}
        if isinstance(row, Exception):
            result.skipped.append({**where, "reason": f"malformed JSON: {row.msg}"})
            continue
        if not isinstance(row, dict) or not row.get("content"):
            result.skipped.append({**where, "reason": "row has no 'content' (image URL or path)"})
            continue
        boxes = row.get("annotation")
        if not boxes:
            result.skipped.append({**where, "reason": "row has no annotation"})
            continue
        image = _resolve_content(str(row["content"]), path_or_url)
        for index, box in enumerate(boxes if isinstance(boxes, list) else [boxes]):
            _read_box(box, image, spec, line, index, result)
    return result


def _read_box(box, image: str, spec: str, line: int, index: int, result: LoadResult) -> None:
    where = {"source": spec, "line": line, "box": index}
    try:
        coords = _box(box["points"], box.get("imageWidth") or 1, box.get("imageHeight") or 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        result.skipped.append({**where, "reason": "box has no usable 'points'"})
        return
    if coords[2] - coords[0] <= 0 or coords[3] - coords[1] <= 0:
        result.skipped.append({**where, "reason": "box has zero area"})
        return
    labels, problems = parse_dataturks_labels(box.get("label") or [])
    for problem in problems:
        result.warnings.append({**where, "reason": problem})
    if all(v is None for v in labels.values()):
        result.skipped.append({**where, "reason": "box has no usable label"})
        return
    result.records.append(FaceRecord(image, coords, labels, spec, line))


# --- Spec parsing and the registry of kinds -------------------------------------------------

Loader = Callable[[str, dict[str, str], str], LoadResult]
_KINDS: dict[str, Loader] = {}


def register(kind: str) -> Callable[[Loader], Loader]:
    """Register a loader `f(location, options, spec) -> LoadResult` for `kind:` specs."""

    def wrap(loader: Loader) -> Loader:
        _KINDS[kind] = loader
        return loader

    return wrap


def parse_spec(spec: str) -> tuple[str, str, dict[str, str]]:
    """Split `KIND:LOCATION?key=value&...` into its parts; a bare path or URL means dataturks."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind in ("http", "https") or len(kind) == 1:  # bare path, URL, or C:\ path
        kind, rest = "dataturks", spec
    options: dict[str, str] = {}
    location, q, query = rest.rpartition("?")
    if q and query and all("=" in part for part in query.split("&")) and not _is_url(rest):
        options = dict(parse_qsl(query))
        rest = location
    return kind, rest, options


def absolute_spec(spec: str) -> str:
    """The spec with a relative local path made absolute, so a saved run finds its data again."""
    kind, location, options = parse_spec(spec)
    if not location or _is_url(location) or "://" in location or Path(location).is_absolute():
        return spec
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{kind}:{Path(location).expanduser().resolve()}" + (f"?{query}" if query else "")


def known_kinds() -> list[str]:
    return sorted(_KINDS)


def load_spec(spec: str) -> LoadResult:
    """Load one `KIND:PATH_OR_URL` spec, e.g. `dataturks:Face_Recognition.json`, `synthetic:DIR`."""
    kind, location, options = parse_spec(spec)
    if kind not in _KINDS:
        raise SourceError(
            f"unknown data kind {kind!r} in {spec!r}: use one of {', '.join(known_kinds())}"
        )
    return _KINDS[kind](location, options, spec)


def load_specs(specs: list[str] | str) -> LoadResult:
    """Load and combine several specs into one result."""
    result = LoadResult()
    for spec in [specs] if isinstance(specs, str) else specs:
        result.extend(load_spec(spec))
    return result


@register("dataturks")
def _dataturks(location: str, options: dict[str, str], spec: str) -> LoadResult:
    return load_dataturks(location, spec=spec)


@register("synthetic")
def _synthetic(location: str, options: dict[str, str], spec: str) -> LoadResult:
    from frlib import synthetic

    kwargs = {}
    if "images" in options:
        kwargs["n_images"] = int(options["images"])
    if "seed" in options:
        kwargs["seed"] = int(options["seed"])
    folder = Path(location or "data/synthetic")
    synthetic.generate(folder, **kwargs)
    return load_dataturks(str(folder / "annotations.json"), spec=spec)


@register("nonfaces")
def _nonfaces(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """Generated non-face crops labelled emotion=not_face (real face sets have none)."""
    from frlib import synthetic

    folder = synthetic.generate_nonfaces(
        location or "data/nonfaces",
        n_images=int(options.get("images", 1000)),
        seed=int(options.get("seed", 0)),
    )
    labels = {task: None for task in TASKS}
    labels["emotion"] = "not_face"
    return LoadResult(
        [
            FaceRecord(str(path.resolve()), None, dict(labels), spec, i + 1)
            for i, path in enumerate(sorted((folder / "images").glob("*.png")))
        ]
    )


def label_counts(records: list[FaceRecord]) -> dict[str, dict[str, int]]:
    """Number of faces per class for every task (missing counted under None)."""
    counts = {task: {name: 0 for name in (*classes, None)} for task, classes in TASKS.items()}
    for record in records:
        for task, value in record.labels.items():
            counts[task][value] += 1
    return counts


from frlib import adapters  # noqa: E402,F401
