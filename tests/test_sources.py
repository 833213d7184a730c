"""Sources: the DataTurks reader on the real file's quirks, from a path, an array and a URL."""

import json

import pytest

from frlib.sources import SourceError, load_dataturks, load_spec, parse_spec


def _box(labels, x0=0.1, y0=0.1, x1=0.3, y1=0.4):
    return {
        "label": labels,
        "notes": "",
        "points": [{"x": x0, "y": y0}, {"x": x1, "y": y1}],
        "imageWidth": 200,
        "imageHeight": 100,
    }


ROWS = [
    {"content": "images/a.jpg", "annotation": [_box(["G_ Female", "Emotion_Sad", "E_Arab"])]},
    "this is { not json",
    {"content": "http://example.invalid/b.jpg", "annotation": None},
    {
        "content": "images/c.jpg",
        "annotation": [
            _box(["Not_Face"]),
            _box(["Emotion_Happy"], 0.5, 0.5, 0.5, 0.9),  # zero width
            _box(["Age_20_30", "E_Martian"]),
            _box([]),
        ],
    },
]


def _write(tmp_path, rows, as_array=False):
    path = tmp_path / "faces.json"
    if as_array:
        path.write_text(json.dumps(rows))
    else:
        path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))
    return path


def test_reader_counts_and_reports_every_bad_line(tmp_path):
    result = load_dataturks(str(_write(tmp_path, ROWS)))
    assert [r.labels for r in result.records] == [
        {"emotion": "sad", "age": None, "ethnicity": "others", "gender": "female"},
        {"emotion": "not_face", "age": None, "ethnicity": None, "gender": None},
        {"emotion": None, "age": "20_30", "ethnicity": None, "gender": None},
    ]
    reasons = {(s["line"], s["reason"]) for s in result.skipped}
    assert (2, "malformed JSON: Expecting value") in reasons
    assert (3, "row has no annotation") in reasons
    assert (4, "box has zero area") in reasons
    assert (4, "box has no usable label") in reasons
    assert len(result.skipped) == 4
    assert [w["line"] for w in result.warnings] == [4]
    assert "E_Martian" in result.warnings[0]["reason"]
    # Relative content resolves against the annotation file's folder; boxes are normalised.
    assert result.records[0].image == str(tmp_path / "images" / "a.jpg")
    assert result.records[0].box == pytest.approx((0.1, 0.1, 0.3, 0.4))


def test_json_array_reads_the_same(tmp_path):
    rows = [r for r in ROWS if not isinstance(r, str)]
    lines = load_dataturks(str(_write(tmp_path, rows)))
    array = load_dataturks(str(_write(tmp_path, rows, as_array=True)))
    assert [r.labels for r in lines.records] == [r.labels for r in array.records]


def test_pixel_points_are_normalised(tmp_path):
    rows = [{"content": "a.jpg", "annotation": [_box(["G_Male"], 20, 10, 60, 50)]}]
    record = load_dataturks(str(_write(tmp_path, rows))).records[0]
    assert record.box == pytest.approx((0.1, 0.1, 0.3, 0.5))
    # Decided per box: a pixel corner at (1, 1) is a pixel too, not a fraction.
    rows = [{"content": "a.jpg", "annotation": [_box(["G_Male"], 1, 1, 100, 50)]}]
    record = load_dataturks(str(_write(tmp_path, rows))).records[0]
    assert record.box == pytest.approx((0.005, 0.01, 0.5, 0.5))


def test_reader_over_http(http_server, tmp_path):
    text = "\n".join(json.dumps(r) for r in ROWS if not isinstance(r, str))
    url = http_server.add("/data/faces.json", text)
    result = load_spec(f"dataturks:{url}")
    assert len(result.records) == 3
    assert result.records[0].image == http_server.url("/data/images/a.jpg")


def test_unreachable_url_and_missing_file_are_clear(http_server, tmp_path):
    with pytest.raises(SourceError, match="could not fetch annotations"):
        load_spec(http_server.url("/missing.json"))
    with pytest.raises(SourceError, match="not found"):
        load_spec(f"dataturks:{tmp_path / 'nope.json'}")
    with pytest.raises(SourceError, match="unknown data kind"):
        load_spec("nosuchkind:whatever")


def test_parse_spec():
    assert parse_spec("synthetic:data/x?images=50") == ("synthetic", "data/x", {"images": "50"})
    assert parse_spec("faces.json") == ("dataturks", "faces.json", {})
    url = "https://host/f.json?token=abc"
    assert parse_spec(url) == ("dataturks", url, {})
    assert parse_spec(f"dataturks:{url}") == ("dataturks", url, {})


def test_nonfaces_are_generated_once_and_labelled_not_face(tmp_path):
    first = load_spec(f"nonfaces:{tmp_path / 'nf'}?images=12")
    stamp = (tmp_path / "nf" / "params.json").stat().st_mtime_ns
    again = load_spec(f"nonfaces:{tmp_path / 'nf'}?images=12")
    assert len(first.records) == len(again.records) == 12
    assert (tmp_path / "nf" / "params.json").stat().st_mtime_ns == stamp
    assert all(r.box is None and r.labels["emotion"] == "not_face" for r in first.records)
    assert all(r.labels[t] is None for r in first.records for t in ("age", "ethnicity", "gender"))
