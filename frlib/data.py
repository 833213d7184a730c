"""Prepared datasets: annotations → downloaded images → cached uint8 face crops → splits."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from frlib.config import Config
from frlib.cropstore import open_crops
from frlib.files import write_json
from frlib.images import ImageError, crop_face, load_image
from frlib.labels import TASKS, class_id
from frlib.sources import FaceRecord, LoadResult, load_specs
from frlib.splits import split_by_group, split_from_keys

ALTERNATIVES = (
    "use the built-in offline data (--data synthetic:data/synthetic) or real faces: "
    "fairface-hub:, fairface:DIR, utkface:DIR, folders:DIR, csv:FILE, fer2013:FILE"
)


@dataclasses.dataclass
class FaceDataset:
    """Face crops (N, S, S, 3) uint8, class ids per task (-1 = missing), and where each came from."""

    crops: np.ndarray
    labels: dict[str, np.ndarray]
    groups: np.ndarray  # source image key per face: the unit of splitting
    records: list[FaceRecord]
    face_px: np.ndarray  # face box width in source pixels, for the size histogram
    split: dict[str, np.ndarray]
    report: dict

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Crops and labels of one split, loaded into memory."""
        rows = self.split[name]
        return np.asarray(self.crops[rows]), {t: v[rows] for t, v in self.labels.items()}


def _fetch_images(loaded: LoadResult, config: Config, progress: bool) -> tuple[dict, dict]:
    """Local file per image (downloading URLs into the cache), and the images report."""
    from frlib.download import download_all

    images = sorted({r.image for r in loaded.records})
    urls = [i for i in images if i.startswith(("http://", "https://"))]
    remote = set(urls)
    local = {i: Path(i) for i in images if i not in remote}
    failed = [
        {"source": i, "reason": "file not found"} for i, p in local.items() if not p.is_file()
    ]
    local = {i: p for i, p in local.items() if p.is_file()}
    if urls:
        fetched = download_all(
            urls,
            Path(config.cache_dir) / "images",
            workers=config.download_workers,
            timeout=config.timeout,
            retries=config.retries,
            max_bytes=config.max_image_bytes,
            progress=progress,
        )
        local.update(fetched.ok)
        failed += fetched.failed
        if not fetched.ok:
            print(f"None of the {len(urls)} image URLs could be fetched; {ALTERNATIVES}.")
    return local, {"ok": len(local), "failed": failed}


def _crop_image(path: Path, records: list[FaceRecord], config: Config):
    image = load_image(path)
    crops = [crop_face(image, r.box, config.image_size, config.margin) for r in records]
    width = image.shape[1]
    sizes = [(r.box[2] - r.box[0]) * width if r.box else width for r in records]
    return crops, sizes


def _cache_key(records: list[FaceRecord], config: Config) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([config.image_size, config.margin, 3]).encode())  # 3: edge padding
    for r in records:
        digest.update(json.dumps([r.image, r.box]).encode())
    return digest.hexdigest()[:20]


def _build_crops(by_image: dict, local: dict, config: Config, progress: bool):
    """Decode each image once and crop all its faces; bad images are reported, not fatal."""
    from tqdm.auto import tqdm

    def work(item):
        image, records = item
        try:
            return image, records, _crop_image(local[image], records, config), None
        except ImageError as exc:
            return image, records, None, str(exc)

    results, failed = [], []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        jobs = pool.map(work, sorted(by_image.items()))
        for image, records, out, error in tqdm(
            jobs, total=len(by_image), desc="crop faces", disable=not progress
        ):
            if error:
                failed.append({"source": image, "reason": error})
            else:
                results.append((records, out))
    return results, failed


def _crops_cached(records, config: Config, by_image, local, progress: bool):
    """Crops of `records`, from the on-disk dataset cache when it holds them."""
    folder = Path(config.cache_dir) / "datasets" / _cache_key(records, config)
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        crops = open_crops(folder / "crops.npy", config.in_memory_mb)
        return crops, meta["rows"], np.array(meta["face_px"]), meta["failed"]
    results, failed = _build_crops(by_image, local, config, progress)
    size = config.image_size
    count = sum(len(r) for r, _ in results)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".crops.{os.getpid()}.npy"
    crops = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))
    index = {id(r): i for i, r in enumerate(records)}
    rows, face_px, at = [], [], 0
    for group_records, (group_crops, sizes) in results:
        for record, crop, px in zip(group_records, group_crops, sizes, strict=True):
            crops[at] = crop
            rows.append(index[id(record)])
            face_px.append(float(px))
            at += 1
    crops.flush()
    del crops
    os.replace(tmp, folder / "crops.npy")
    write_json(meta_path, {"rows": rows, "face_px": face_px, "failed": failed})
    return open_crops(folder / "crops.npy", config.in_memory_mb), rows, np.array(face_px), failed


def group_key(record: FaceRecord) -> str:
    """The split unit: one source image (pre-cropped sources: one file)."""
    return f"{record.source.split(':', 1)[0]}|{record.image}"


def prepare(
    config: Config, *, split: dict[str, list[str]] | None = None, progress: bool = True
) -> FaceDataset:
    """Load every `config.data` spec, fetch images, crop faces and split by source image.

    Args:
        config: the run's config (data specs, image size, margin, seed, fractions).
        split: group keys per split saved by an earlier run; reused instead of drawing anew.
        progress: show tqdm bars.
    Returns:
        FaceDataset with `report` = {"images": {...}, "faces": {...}, "splits": {...}}.
    """
    loaded = load_specs(config.data)
    local, images_report = _fetch_images(loaded, config, progress)
    by_image: dict[str, list[FaceRecord]] = defaultdict(list)
    skipped = list(loaded.skipped)
    for record in loaded.records:
        if record.image in local:
            by_image[record.image].append(record)
        else:
            skipped.append(
                {"source": record.source, "line": record.line, "reason": "image not available"}
            )
    usable = [r for image in sorted(by_image) for r in by_image[image]]
    crops, rows, face_px, failed = _crops_cached(usable, config, by_image, local, progress)
    images_report["failed"] += failed
    images_report["ok"] -= len(failed)
    records = [usable[i] for i in rows]
    labels = {
        t: np.array([class_id(t, r.labels[t]) for r in records], dtype=np.int32) for t in TASKS
    }
    groups = np.array([group_key(r) for r in records], dtype=object)
    if split is not None:
        parts = split_from_keys(groups, split)
    else:
        parts = split_by_group(
            groups,
            labels,
            seed=config.seed,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            fixed=[r.split for r in records],
        )
    report = {
        "images": images_report,
        "faces": {"usable": len(records), "skipped": skipped, "label_warnings": loaded.warnings},
        "splits": {name: int(len(rows)) for name, rows in parts.items()},
    }
    return FaceDataset(crops, labels, groups, records, face_px, parts, report)
