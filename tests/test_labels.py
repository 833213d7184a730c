"""Labels: fixed vocabulary, parsing by prefix, stable class ids in every process."""

import json
import os
import subprocess
import sys

from frlib.labels import MISSING, TASKS, class_id, parse_dataturks_labels


def test_vocabulary_order_is_fixed():
    assert list(TASKS) == ["emotion", "age", "ethnicity", "gender"]
    assert TASKS["emotion"] == ("neutral", "happy", "sad", "angry", "not_face")
    assert TASKS["age"] == ("below_20", "20_30", "30_40", "40_50", "above_50")
    assert TASKS["ethnicity"] == ("white", "black", "asian", "indian", "hispanic", "others")
    assert TASKS["gender"] == ("male", "female")


def test_labels_parsed_by_prefix_whatever_the_order():
    one, _ = parse_dataturks_labels(["Emotion_Happy", "Age_below20", "E_White", "G_Male"])
    two, _ = parse_dataturks_labels(["G_Male", "E_White", "Emotion_Happy", "Age_below20"])
    assert (
        one
        == two
        == {"emotion": "happy", "age": "below_20", "ethnicity": "white", "gender": "male"}
    )


def test_real_file_quirks():
    labels, problems = parse_dataturks_labels(["G_ Female", "E_Arab", "Age_above_50"])
    assert labels == {"emotion": None, "age": "above_50", "ethnicity": "others", "gender": "female"}
    assert problems == []
    labels, _ = parse_dataturks_labels(["Not_Face"])
    assert labels == {"emotion": "not_face", "age": None, "ethnicity": None, "gender": None}
    labels, problems = parse_dataturks_labels([])
    assert all(v is None for v in labels.values()) and problems == []


def test_not_face_drops_face_attributes():
    labels, _ = parse_dataturks_labels(["Not_Face", "Age_40_50", "G_ Female"])
    assert labels == {"emotion": "not_face", "age": None, "ethnicity": None, "gender": None}


def test_conflicts_and_unknowns_are_missing_and_reported():
    labels, problems = parse_dataturks_labels(
        ["Emotion_Happy", "Emotion_Sad", "others", "E_Martian"]
    )
    assert labels["emotion"] is None and labels["ethnicity"] is None
    assert any("conflicting emotion" in p for p in problems)
    assert any("'others'" in p for p in problems)
    assert any("E_Martian" in p for p in problems)
    # A repeated identical label is no conflict.
    labels, problems = parse_dataturks_labels(["G_Male", "G_Male"])
    assert labels["gender"] == "male" and problems == []


def test_class_id():
    assert class_id("gender", "female") == 1
    assert class_id("age", None) == MISSING


def test_class_ids_identical_across_processes():
    code = (
        "import json; from frlib.labels import TASKS, class_id;"
        "print(json.dumps({t: [class_id(t, c) for c in sorted(set(cs))] for t, cs in TASKS.items()}))"
    )
    outputs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        outputs.append(json.loads(out.stdout))
    assert outputs[0] == outputs[1]
