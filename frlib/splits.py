"""Leak-free splits: every source image goes to exactly one of train, val and test."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from frlib.labels import MISSING, TASKS

SPLITS = ("train", "val", "test")


def _stratum(rows: list[int], labels: dict[str, np.ndarray], frequency: dict) -> tuple:
    """A group's stratum: its rarest (task, class) label, so rare classes reach every split."""
    present = [(t, int(labels[t][i])) for i in rows for t in TASKS if labels[t][i] != MISSING]
    if not present:
        return ("unlabelled",)
    return min(present, key=lambda tc: (frequency[tc], tc))


def split_by_group(
    groups: np.ndarray,
    labels: dict[str, np.ndarray],
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    fixed: list[str | None] | None = None,
) -> dict[str, np.ndarray]:
    """Assign whole groups (source images) to splits, stratified by their rarest label.

    Args:
        groups: group key per face (faces of one image share it).
        labels: class id per face per task (MISSING when unlabelled).
        seed: the run's seed; same inputs and seed give the same split in any process.
        val_fraction, test_fraction: share of groups per split within each stratum.
        fixed: a split named by the source itself per face (e.g. FER-2013's Usage), or None.
    Returns:
        Face indices per split name, sorted.
    """
    frequency = Counter((t, int(v)) for t in TASKS for v in labels[t] if v != MISSING)
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[str(group)].append(index)
    assignment: dict[str, str] = {}
    strata: dict[tuple, list[str]] = defaultdict(list)
    for group, rows in sorted(members.items()):
        preset = fixed[rows[0]] if fixed else None
        if preset in SPLITS:
            assignment[group] = preset
        else:
            strata[_stratum(rows, labels, frequency)].append(group)
    rng = np.random.default_rng(seed)
    carry = np.zeros(3)  # rounding carried across strata keeps the global shares right
    shares = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])
    for key in sorted(strata, key=str):
        keys = strata[key]
        order = rng.permutation(len(keys))
        want = shares * len(keys) + carry
        counts = np.floor(want).astype(int)
        counts[0] += len(keys) - counts.sum()  # leftovers go to train ...
        # ... unless val/test lag behind their share by half a group or more.
        for s in (2, 1):
            if want[s] - counts[s] >= 0.5 and counts[0] > 0:
                counts[s] += 1
                counts[0] -= 1
        carry = want - counts
        bounds = np.cumsum(counts)
        for rank, position in enumerate(order):
            assignment[keys[position]] = SPLITS[int(np.searchsorted(bounds, rank, side="right"))]
    result = {name: [] for name in SPLITS}
    for group, rows in members.items():
        result[assignment[group]].extend(rows)
    return {name: np.array(sorted(rows), dtype=np.int64) for name, rows in result.items()}


def split_from_keys(groups: np.ndarray, saved: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Rebuild a saved split (group keys per split) on freshly loaded data."""
    where = {key: name for name, keys in saved.items() for key in keys}
    result = {name: [] for name in SPLITS}
    for index, group in enumerate(groups):
        name = where.get(str(group))
        if name in result:
            result[name].append(index)
    return {name: np.array(rows, dtype=np.int64) for name, rows in result.items()}


def split_keys(groups: np.ndarray, split: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Group keys per split, the JSON-ready form saved in a run directory."""
    return {name: sorted({str(groups[i]) for i in rows}) for name, rows in split.items()}
