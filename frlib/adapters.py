"""Readers for open face datasets: FairFace, UTKFace, class folders, CSV manifests, FER-2013, FairFace from the Hugging Face Hub."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from frlib.labels import TASKS
from frlib.sources import (
    FaceRecord,
    LoadResult,
    SourceError,
    _is_url,
    _resolve_content,
    read_text,
    register,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# FairFace's label values -> our classes (also used for FairFace from the hub).
FAIRFACE_AGE = {
    **dict.fromkeys(("0-2", "3-9", "10-19"), "below_20"),
    "20-29": "20_30",
    "30-39": "30_40",
    "40-49": "40_50",
    **dict.fromkeys(("50-59", "60-69", "more than 70"), "above_50"),
}
FAIRFACE_RACE = {
    "White": "white",
    "Black": "black",
    "East Asian": "asian",
    "Southeast Asian": "asian",
    "Indian": "indian",
    "Latino_Hispanic": "hispanic",
    "Middle Eastern": "others",
}
FAIRFACE_GENDER = {"Male": "male", "Female": "female"}
UTK_GENDER = ("male", "female")
UTK_RACE = ("white", "black", "asian", "indian", "others")
SPLIT_NAMES = {
    **dict.fromkeys(("train", "training"), "train"),
    **dict.fromkeys(("val", "valid", "validation", "dev"), "val"),
    **dict.fromkeys(("test", "testing"), "test"),
}


def normalise(text) -> str:
    """'Latino Hispanic' -> 'latino_hispanic', '20-30' -> '20_30': case, spaces, hyphens ignored."""
    return "_".join(str(text).strip().lower().replace("-", " ").split())


def _table(mapping: dict[str, str]) -> dict[str, str]:
    return {normalise(key): value for key, value in mapping.items()}


_FAIRFACE = {
    "age": _table(FAIRFACE_AGE),
    "gender": _table(FAIRFACE_GENDER),
    "ethnicity": _table(FAIRFACE_RACE),
}
# Other names accepted for our classes (normalised), besides the class names themselves.
_ALIASES = {
    "emotion": {"notface": "not_face", "happiness": "happy", "sadness": "sad", "anger": "angry"},
    "age": {**_FAIRFACE["age"], "below20": "below_20", "above50": "above_50"},
    "ethnicity": {**_FAIRFACE["ethnicity"], "other": "others", "latino": "hispanic"},
    "gender": {"man": "male", "men": "male", "woman": "female", "women": "female"},
}


def match_class(task: str, text, extra: dict[str, str] | None = None) -> str | None:
    """Our class in `task` for a name like 'Happy', '20-30' or 'East Asian', or None."""
    key = normalise(text)
    if extra and key in extra:
        return extra[key]
    return key if key in TASKS[task] else _ALIASES[task].get(key)


def parse_map(text: str, task: str, spec: str) -> dict[str, str]:
    """A `?map=surprise:happy,fear:not_face` option as {normalised name: class}."""
    mapping = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, target = item.partition(":")
        if not sep or normalise(target) not in TASKS[task]:
            raise SourceError(
                f"{spec}: bad map entry {item!r}: write NAME:CLASS with CLASS one of "
                f"{', '.join(TASKS[task])}"
            )
        mapping[normalise(name)] = normalise(target)
    return mapping


def issue(spec: str, line, reason: str, **extra) -> dict:
    return {"source": spec, "line": line, "reason": reason, **extra}


def task_labels(**given: str | None) -> dict[str, str | None]:
    return {task: given.get(task) for task in TASKS}


def add_face(
    result: LoadResult, spec: str, line: int, image: str, labels, problems, **fields
) -> None:
    """Record a face (its problems as warnings), or skip it when no label is usable."""
    split, box = fields.pop("split", None), fields.pop("box", None)
    for problem in problems:
        result.warnings.append(issue(spec, line, problem, **fields))
    if all(value is None for value in labels.values()):
        result.skipped.append(issue(spec, line, "row has no usable label", **fields))
    else:
        result.records.append(FaceRecord(image, box, labels, spec, line, split))


def fairface_labels(age, gender, race) -> tuple[dict[str, str | None], list[str]]:
    """Our labels from FairFace's age bin, gender and race names, and the unknown values."""
    labels, problems = task_labels(), []
    for task, column, value in (
        ("age", "age", age),
        ("gender", "gender", gender),
        ("ethnicity", "race", race),
    ):
        labels[task] = _FAIRFACE[task].get(normalise(value)) if value is not None else None
        if labels[task] is None:
            problems.append(f"unknown FairFace {column} value {value!r}: left missing")
    return labels, problems


def _directory(location: str, kind: str) -> Path:
    folder = Path(location).expanduser()
    if not location or not folder.is_dir():
        raise SourceError(
            f"{kind}: folder {location!r} not found: check the path in your --data spec"
        )
    return folder


def _image_files(folder: Path) -> list[Path]:
    """Image files anywhere under `folder`, sorted; hidden files and folders left out."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def csv_rows(source: str | Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a csv file or URL; header names are stripped and lower-cased."""
    if _is_url(str(source)):
        handle = io.StringIO(read_text(str(source)))
    elif Path(source).expanduser().is_file():
        handle = open(Path(source).expanduser(), newline="", encoding="utf-8-sig")  # noqa: SIM115
    else:
        raise SourceError(f"csv file {source} not found: check the path in your --data spec")
    with handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in reader.fieldnames]
        if missing:
            raise SourceError(
                f"{source}: no {', '.join(missing)} column "
                f"(columns: {', '.join(reader.fieldnames)})"
            )
        try:
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{source}: not UTF-8 near line {reader.line_num + 1} ({exc.reason}); "
                "save it as UTF-8 and load again"
            ) from exc


def write_once(path: Path, data: bytes) -> Path:
    """Write a cache file through a temp file and a rename, unless it is already there."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    return path


# --- FairFace, UTKFace, class folders --------------------------------------------------------


@register("fairface")
def load_fairface(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """FairFace's own layout: DIR/fairface_label_{train,val}.csv naming images under DIR."""
    folder = _directory(location, "fairface")
    names = {"fairface_label_train.csv": None, "fairface_label_val.csv": "test"}
    if not any((folder / name).is_file() for name in names):
        raise SourceError(f"fairface: no {' or '.join(names)} in {folder}")
    result = LoadResult()
    for name, split in names.items():
        if not (folder / name).is_file():
            continue
        for line, row in csv_rows(folder / name, ("file", "age", "gender", "race")):
            if not (row.get("file") or "").strip():
                result.skipped.append(issue(spec, line, "row has no file name", file=name))
                continue
            labels, problems = fairface_labels(row.get("age"), row.get("gender"), row.get("race"))
            image = str(folder / row["file"].strip())
            add_face(result, spec, line, image, labels, problems, split=split, file=name)
    return result


def _utk_labels(name: str) -> dict[str, str | None] | None:
    """Labels from `age_gender_race_datetime.jpg[.chip.jpg]`, or None if the name is malformed."""
    try:
        age, gender, race = (int(part) for part in name.split(".")[0].split("_")[:3])
    except ValueError:
        return None
    if not (0 <= age <= 130 and 0 <= gender < len(UTK_GENDER) and 0 <= race < len(UTK_RACE)):
        return None
    bands = ((20, "below_20"), (30, "20_30"), (40, "30_40"), (50, "40_50"))
    band = next((label for limit, label in bands if age < limit), "above_50")
    return task_labels(age=band, gender=UTK_GENDER[gender], ethnicity=UTK_RACE[race])


@register("utkface")
def load_utkface(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """UTKFace crops labelled by file name: `age_gender_race_datetime.jpg.chip.jpg`."""
    folder = _directory(location, "utkface")
    result = LoadResult()
    for path in _image_files(folder):
        name = str(path.relative_to(folder))
        labels = _utk_labels(path.name)
        if labels is None:
            reason = f"file name {name!r} is not age_gender_race_datetime.jpg"
            result.skipped.append(issue(spec, name, reason))
        else:
            result.records.append(FaceRecord(str(path), None, labels, spec))
    if not result.records and not result.skipped:
        raise SourceError(f"utkface: no images in {folder}")
    return result


def _split_roots(folder: Path) -> list[tuple[str | None, Path]]:
    """[(split, folder of class folders)]: train/val/test subfolders, else the folder itself."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders and all(normalise(p.name) in SPLIT_NAMES for p in subfolders):
        return [(SPLIT_NAMES[normalise(p.name)], p) for p in subfolders]
    return [(None, folder)]


@register("folders")
def load_folders(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """One subfolder per class of one task (`?task=emotion`, `?map=surprise:happy,...`)."""
    folder = _directory(location, "folders")
    task = options.get("task", "emotion")
    if task not in TASKS:
        raise SourceError(f"{spec}: unknown task {task!r}: use one of {', '.join(TASKS)}")
    mapping = parse_map(options.get("map", ""), task, spec)
    result = LoadResult()
    for split, root in _split_roots(folder):
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            where = str(sub.relative_to(folder))
            files = _image_files(sub)
            name = match_class(task, sub.name, mapping)
            if name is None:
                reason = (
                    f"folder {where!r} ({len(files)} images) matches no {task} class: "
                    f"left out (map it with ?map={sub.name}:CLASS)"
                )
                result.skipped.append(issue(spec, where, reason, count=len(files)))
                continue
            labels = task_labels(**{task: name})
            result.records += [FaceRecord(str(p), None, labels, spec, split=split) for p in files]
    if not result.records and not result.skipped:
        raise SourceError(f"folders: no class subfolders with images in {folder}")
    return result


# --- CSV manifests ---------------------------------------------------------------------------


def _manifest_box(row: dict) -> tuple[float, float, float, float] | None:
    values = [(row.get(key) or "").strip() for key in ("x0", "y0", "x1", "y1")]
    if not any(values):
        return None
    try:
        x0, y0, x1, y1 = (float(value) for value in values)
    except ValueError:
        raise ValueError(f"box {','.join(values)} is not four numbers") from None
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError(
            f"box {','.join(values)} is not normalised (0 <= x0 < x1 <= 1, same for y)"
        )
    return x0, y0, x1, y1


def _manifest_labels(row: dict) -> tuple[dict[str, str | None], str | None, list[str]]:
    labels, problems = task_labels(), []
    for task in TASKS:
        value = (row.get(task) or "").strip()
        if value:
            labels[task] = match_class(task, value)
            if labels[task] is None:
                problems.append(f"unknown {task} label {value!r}: left missing")
    split_value = (row.get("split") or "").strip()
    split = SPLIT_NAMES.get(normalise(split_value)) if split_value else None
    if split_value and split is None:
        problems.append(f"unknown split {split_value!r}: the split is drawn instead")
    return labels, split, problems


@register("csv")
def load_csv(location: str, options: dict[str, str], spec: str) -> LoadResult:
    """A manifest: `path` plus any of emotion, age, ethnicity, gender, split and x0,y0,x1,y1."""
    result = LoadResult()
    for line, row in csv_rows(location, ("path",)):
        path = (row.get("path") or "").strip()
        if not path:
            result.skipped.append(issue(spec, line, "row has no path"))
            continue
        try:
            box = _manifest_box(row)
        except ValueError as exc:
            result.skipped.append(issue(spec, line, str(exc)))
            continue
        labels, split, problems = _manifest_labels(row)
        image = _resolve_content(path, location)
        add_face(result, spec, line, image, labels, problems, split=split, box=box)
    return result


from frlib import fer2013, hub  # noqa: E402,F401  (they register fer2013 and fairface-hub)
