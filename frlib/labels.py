"""The fixed task/class vocabulary and the DataTurks label parser."""

from __future__ import annotations

MISSING = -1

# Class order is fixed here, once, and saved with every dataset and model.
TASKS: dict[str, tuple[str, ...]] = {
    "emotion": ("neutral", "happy", "sad", "angry", "not_face"),
    "age": ("below_20", "20_30", "30_40", "40_50", "above_50"),
    "ethnicity": ("white", "black", "asian", "indian", "hispanic", "others"),
    "gender": ("male", "female"),
}

# DataTurks label values (after the prefix, lower-cased, spaces removed) -> our class.
_DATATURKS_VALUES: dict[str, dict[str, str]] = {
    "emotion": {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"},
    "age": {
        "below20": "below_20",
        "below_20": "below_20",
        "20_30": "20_30",
        "30_40": "30_40",
        "40_50": "40_50",
        "above_50": "above_50",
        "above50": "above_50",
    },
    "ethnicity": {
        "white": "white",
        "black": "black",
        "asian": "asian",
        "indian": "indian",
        "hispanic": "hispanic",
        "arab": "others",
        "others": "others",
        "other": "others",
    },
    "gender": {"male": "male", "female": "female"},
}
_PREFIXES = (("emotion_", "emotion"), ("age_", "age"), ("e_", "ethnicity"), ("g_", "gender"))


def class_id(task: str, name: str | None) -> int:
    """Index of class `name` in `task`'s fixed vocabulary, or MISSING for None."""
    if name is None:
        return MISSING
    return TASKS[task].index(name)


def vocabulary() -> dict[str, list[str]]:
    """The vocabulary as plain JSON-ready lists, saved beside datasets and models."""
    return {task: list(classes) for task, classes in TASKS.items()}


def parse_dataturks_labels(raw: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Parse one DataTurks box's label list by prefix, not by position.

    Returns:
        (labels, problems): class name or None (missing) per task, and a list of
        human-readable problems (unknown labels, conflicts) to report.
    """
    found: dict[str, set[str]] = {task: set() for task in TASKS}
    problems: list[str] = []
    not_face = False
    for label in raw:
        key = "".join(str(label).split()).lower()  # "G_ Female" -> "g_female"
        if key in ("not_face", "notface"):
            not_face = True
            continue
        for prefix, task in _PREFIXES:
            if key.startswith(prefix):
                value = _DATATURKS_VALUES[task].get(key[len(prefix) :])
                if value is None:
                    problems.append(f"unknown {task} label {label!r}")
                else:
                    found[task].add(value)
                break
        else:
            problems.append(f"unknown label {label!r}")
    if not_face:
        found["emotion"].add("not_face")
        # A non-face has no age, ethnicity or gender: whatever else was ticked is ignored.
        for task in ("age", "ethnicity", "gender"):
            found[task].clear()
    labels: dict[str, str | None] = {}
    for task, values in found.items():
        if len(values) > 1:
            problems.append(f"conflicting {task} labels {sorted(values)}: left missing")
        labels[task] = values.pop() if len(values) == 1 else None
    return labels, problems
