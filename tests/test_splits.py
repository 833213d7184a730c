"""Splits: disjoint by source image, stratified, seeded, reproducible from saved keys."""

import numpy as np

from frlib.labels import MISSING, TASKS
from frlib.splits import split_by_group, split_from_keys, split_keys


def _data(n_images=300, seed=0):
    rng = np.random.default_rng(seed)
    faces = rng.integers(1, 5, n_images)
    groups = np.repeat([f"img{i}" for i in range(n_images)], faces)
    labels = {t: rng.integers(0, len(c), len(groups)).astype(np.int32) for t, c in TASKS.items()}
    labels["age"][rng.random(len(groups)) < 0.3] = MISSING
    labels["emotion"][:3] = 3  # a rare class on the first image only...
    labels["emotion"][labels["emotion"] == 3] = 0
    labels["emotion"][:4] = 3
    return groups, labels


def test_no_image_in_two_splits_and_all_faces_assigned():
    groups, labels = _data()
    split = split_by_group(groups, labels, seed=1, val_fraction=0.15, test_fraction=0.15)
    seen = [set(groups[idx]) for idx in split.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sorted(np.concatenate(list(split.values()))) == list(range(len(groups)))
    shares = np.array([len(set(groups[i])) for i in split.values()]) / 300
    assert np.allclose(shares, [0.7, 0.15, 0.15], atol=0.03)


def test_seeded_and_reproducible():
    groups, labels = _data()
    a = split_by_group(groups, labels, seed=3, val_fraction=0.2, test_fraction=0.2)
    b = split_by_group(groups, labels, seed=3, val_fraction=0.2, test_fraction=0.2)
    c = split_by_group(groups, labels, seed=4, val_fraction=0.2, test_fraction=0.2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    rebuilt = split_from_keys(groups, split_keys(groups, a))
    assert all(np.array_equal(a[k], rebuilt[k]) for k in a)


def test_stratified_rare_classes_reach_test():
    rng = np.random.default_rng(0)
    groups = np.array([f"img{i}" for i in range(200)])
    labels = {t: np.full(200, MISSING, np.int32) for t in TASKS}
    labels["emotion"][:] = 0
    labels["emotion"][rng.choice(200, 20, replace=False)] = 3  # 10% angry
    split = split_by_group(groups, labels, seed=0, val_fraction=0.15, test_fraction=0.15)
    assert (labels["emotion"][split["test"]] == 3).sum() == 3
    assert (labels["emotion"][split["val"]] == 3).sum() == 3


def test_fixed_splits_are_kept():
    groups, labels = _data(50)
    fixed = ["test" if g == "img0" else None for g in groups]
    split = split_by_group(groups, labels, seed=0, val_fraction=0.1, test_fraction=0.1, fixed=fixed)
    assert set(np.flatnonzero(groups == "img0")) <= set(split["test"])
