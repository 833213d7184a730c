"""Face detection with OpenCV's Haar cascade, which ships inside opencv-python-headless and works offline."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

Box = tuple[int, int, int, int]

CASCADE_NAME = "haarcascade_frontalface_default.xml"

# Tuned by sweeping scaleFactor 1.05-1.2, minNeighbors 3-7 and grey-level normalisation over
# ~650 composed photos (compose_faces: 0-4 faces 30-260 px wide, mirrored, plain and textured
# backgrounds, grey, dark, washed-out, noisy and blurred) plus ~100 face-free ones (noise,
# blurred noise, noisy textures). With these values every face >= 50 px wide was found at
# IoU >= 0.5 against where it was pasted bar 2 of ~1000 (57 px faces boxed too large, IoU
# 0.38 and 0.48), with no extra box anywhere. scaleFactor 1.1 scored the same but costs ~30%
# more time; 1.2 misboxed more faces. minNeighbors 5 let one false positive through on a noisy texture; 6
# removed it and lost nothing. Faces under ~50 px are still found, but boxed too large (the
# cascade's window is 24 px), so their IoU often falls below 0.5.
# No histogram equalisation: the cascade already normalises each window's contrast, and a
# global equalizeHist hurt (on plain backgrounds the background's one grey level takes most of
# the histogram and squashes the face's tones: 35 of 330 faces missed). CLAHE scored like no
# normalisation but cost time.
SCALE_FACTOR = 1.15
MIN_NEIGHBORS = 6
NMS_IOU = 0.3
# A box mostly inside a larger one is the same face found twice, whatever their IoU.
NMS_CONTAINED = 0.8

# Where the face is in matplotlib's grace_hopper.jpg (512x600), as fractions of its width and
# height. Measured once by running detect_faces (opencv 4.14, the parameters above) on the
# full portrait, which gave the one box (156, 105, 379, 328) px.
PORTRAIT_FACE = (156 / 512, 105 / 600, 379 / 512, 328 / 600)
# Context kept around the face when it is cut out of the portrait, as a fraction of the face size.
PORTRAIT_MARGIN = 0.3

# The default demo photo: three faces on 640x480 at three sizes, the middle one mirrored.
# (x, y, width, mirror): top-left corner and width of the pasted face box, in canvas pixels.
DEFAULT_PLACEMENTS: tuple[tuple[int, int, int, bool], ...] = (
    (45, 150, 110, False),
    (230, 60, 140, True),
    (430, 220, 170, False),
)

_local = threading.local()
_path_lock = threading.Lock()
_cascade_path: str | None = None


def _find_cascade() -> str:
    global _cascade_path
    with _path_lock:
        if _cascade_path is None:
            import cv2

            folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
            path = Path(folder or "") / CASCADE_NAME
            if not folder or not path.is_file():
                raise RuntimeError(
                    f"OpenCV {cv2.__version__} ships no Haar cascade ({CASCADE_NAME} not found"
                    f"{' in ' + folder if folder else ''}); face detection needs it. "
                    'Install a version that does: pip install "opencv-python-headless<5"'
                )
            _cascade_path = str(path)
        return _cascade_path


def _cascade():
    """The frontal-face cascade, loaded once per thread (OpenCV does not promise that one
    classifier may be shared by concurrent detectMultiScale calls)."""
    clf = getattr(_local, "cascade", None)
    if clf is None:
        import cv2

        path = _find_cascade()
        clf = cv2.CascadeClassifier(path)
        if clf.empty():
            raise RuntimeError(
                f"OpenCV could not load the Haar cascade {path}; reinstall it: "
                'pip install --force-reinstall "opencv-python-headless<5"'
            )
        _local.cascade = clf
    return clf


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes; 0.0 when they do not touch."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _contained(a: Sequence[float], b: Sequence[float]) -> float:
    """The share of the smaller box's area that lies inside the other box."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / small) if small > 0 else 0.0


def _suppress(boxes: list[Box], scores: list[float]) -> list[Box]:
    """Greedy non-maximum suppression: the best-supported box of each overlapping group wins."""
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], -_area(boxes[i])))
    kept: list[Box] = []
    for i in order:
        box = boxes[i]
        if all(iou(box, k) <= NMS_IOU and _contained(box, k) < NMS_CONTAINED for k in kept):
            kept.append(box)
    return kept


def _area(b: Box) -> int:
    return (b[2] - b[0]) * (b[3] - b[1])


def _to_grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    arr = np.asarray(rgb)
    if arr.dtype != np.uint8:
        raise ValueError(f"detect_faces expects a uint8 image, got {arr.dtype}")
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGBA2GRAY)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.ascontiguousarray(arr[:, :, 0])
    raise ValueError(f"detect_faces expects an HxWx3 RGB image, got shape {arr.shape}")


def detect_faces(rgb: np.ndarray, *, min_size: int = 24, max_side: int = 1024) -> list[Box]:
    """Find frontal faces in an HxWx3 uint8 RGB image (greyscale HxW and RGBA are accepted too).

    Returns (x0, y0, x1, y1) boxes in pixels of the input image, each face once, sorted
    left-to-right then top-to-bottom. Images with a side over `max_side` are searched at that
    size for speed. `min_size` is the smallest face side, in input pixels, worth reporting.
    """
    import cv2

    grey = _to_grey(rgb)
    h, w = grey.shape
    if h == 0 or w == 0:
        return []
    scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale < 1.0:
        small = cv2.resize(
            grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    else:
        small = grey
    side = max(1, int(round(min_size * scale)))
    found, neighbours = _cascade().detectMultiScale2(
        small, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=(side, side)
    )
    if len(found) == 0:
        return []
    sy, sx = h / small.shape[0], w / small.shape[1]
    boxes: list[Box] = []
    for x, y, bw, bh in np.asarray(found).reshape(-1, 4).tolist():
        x0 = max(0, min(w, round(x * sx)))
        y0 = max(0, min(h, round(y * sy)))
        x1 = max(0, min(w, round((x + bw) * sx)))
        y1 = max(0, min(h, round((y + bh) * sy)))
        boxes.append((x0, y0, x1, y1))
    scores = [float(n) for n in np.asarray(neighbours).reshape(-1)]
    kept = [b for b in _suppress(boxes, scores) if min(b[2] - b[0], b[3] - b[1]) >= min_size]
    return sorted(kept, key=lambda b: (b[0], b[1]))


# --- Composed multi-face photos, for tests, the demo and the benchmarks. ---

_portrait_cache: np.ndarray | None = None


def _portrait() -> np.ndarray:
    """matplotlib's public-domain Grace Hopper portrait as an HxWx3 uint8 RGB array."""
    global _portrait_cache
    if _portrait_cache is None:
        from matplotlib import cbook
        from PIL import Image

        # Depending on the matplotlib version, get_sample_data gives a path or an open file.
        sample = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        if hasattr(sample, "read"):
            with sample:
                img = Image.open(sample)
                img.load()
        else:
            img = Image.open(sample)
        arr = np.array(img.convert("RGB"))
        arr.setflags(write=False)  # shared by every caller
        _portrait_cache = arr
    return _portrait_cache


def _background(h: int, w: int, rng: np.random.Generator, textured: bool) -> np.ndarray:
    base = rng.uniform(150, 215, size=3)
    if not textured:
        return np.broadcast_to(base, (h, w, 3)).astype(np.uint8)
    import cv2

    # A soft texture: low-resolution noise blown up smoothly, plus a gentle diagonal gradient.
    # Mostly brightness, with a little colour.
    gh, gw = max(2, h // 60), max(2, w // 60)
    coarse = rng.normal(0.0, 14.0, size=(gh, gw, 1)) + rng.normal(0.0, 4.0, size=(gh, gw, 3))
    smooth = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = (xx / max(w, 1) - yy / max(h, 1))[..., None] * 20.0
    return np.clip(base + smooth + grad, 0, 255).astype(np.uint8)


def compose_faces(
    canvas_size: tuple[int, int] = (640, 480),
    placements: Sequence[Sequence] | None = DEFAULT_PLACEMENTS,
    seed: int = 0,
    *,
    textured: bool = True,
) -> tuple[np.ndarray, list[Box]]:
    """Build a multi-face test photo from matplotlib's public-domain portrait.

    `canvas_size` is (width, height). Each placement is (x, y, width) or (x, y, width, mirror):
    the top-left corner and width, in canvas pixels, of where the portrait's face box goes
    (its height follows the face's aspect). The face is cut out with some context around it,
    scaled, optionally mirrored and blended with a feathered oval onto a plain or softly
    textured background (chosen by `seed`). Returns the HxWx3 uint8 RGB image and the
    expected face boxes, (x0, y0, x1, y1) in the order given. `placements=None` or empty
    gives a photo with no face.
    """
    import cv2

    cw, ch = canvas_size
    rng = np.random.default_rng(seed)
    canvas = _background(ch, cw, rng, textured).astype(np.float32)
    portrait = _portrait()
    ph, pw = portrait.shape[:2]
    fx0, fy0, fx1, fy1 = (
        PORTRAIT_FACE[0] * pw,
        PORTRAIT_FACE[1] * ph,
        PORTRAIT_FACE[2] * pw,
        PORTRAIT_FACE[3] * ph,
    )
    fw, fh = fx1 - fx0, fy1 - fy0
    mx, my = PORTRAIT_MARGIN * fw, PORTRAIT_MARGIN * fh
    cx0, cy0 = max(0, int(fx0 - mx)), max(0, int(fy0 - my))
    cx1, cy1 = min(pw, int(np.ceil(fx1 + mx))), min(ph, int(np.ceil(fy1 + my)))
    crop = portrait[cy0:cy1, cx0:cx1]
    # Face box inside the crop, in crop pixels.
    rx0, ry0, rx1, ry1 = fx0 - cx0, fy0 - cy0, fx1 - cx0, fy1 - cy0

    boxes: list[Box] = []
    for placement in placements or ():
        x, y, width = (int(v) for v in placement[:3])
        mirror = bool(placement[3]) if len(placement) > 3 else False
        if width < 1:
            raise ValueError(f"placement width must be positive, got {placement}")
        s = width / fw
        patch_w = max(1, round(crop.shape[1] * s))
        patch_h = max(1, round(crop.shape[0] * s))
        patch = cv2.resize(
            crop,
            (patch_w, patch_h),
            interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
        ).astype(np.float32)
        # Face box within the patch, after an optional mirror.
        bx0, bx1 = rx0 * s, rx1 * s
        if mirror:
            patch = patch[:, ::-1]
            bx0, bx1 = patch_w - bx1, patch_w - bx0
        by0, by1 = ry0 * s, ry1 * s
        # Where the patch lands so that its face box starts at (x, y).
        px, py = x - round(bx0), y - round(by0)
        # A feathered oval alpha, so no hard rectangle edge sits around the face.
        yy, xx = np.mgrid[0:patch_h, 0:patch_w].astype(np.float32)
        d = np.sqrt(((xx + 0.5) / patch_w * 2 - 1) ** 2 + ((yy + 0.5) / patch_h * 2 - 1) ** 2)
        alpha = np.clip((1.0 - d) / 0.25, 0.0, 1.0)[..., None]
        # Clip the patch to the canvas.
        ox0, oy0 = max(0, px), max(0, py)
        ox1, oy1 = min(cw, px + patch_w), min(ch, py + patch_h)
        if ox1 <= ox0 or oy1 <= oy0:
            raise ValueError(f"placement {tuple(placement)} falls outside the canvas {canvas_size}")
        sl = (slice(oy0 - py, oy1 - py), slice(ox0 - px, ox1 - px))
        region = canvas[oy0:oy1, ox0:ox1]
        a = alpha[sl]
        canvas[oy0:oy1, ox0:ox1] = region * (1 - a) + patch[sl] * a
        box = (
            max(0, px + round(bx0)),
            max(0, py + round(by0)),
            min(cw, px + round(bx1)),
            min(ch, py + round(by1)),
        )
        boxes.append(box)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), boxes
