"""Open dataset readers: each kind on small files in its exact format, through `load_spec`."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import Reply, image_bytes, write_image
from frlib import fer2013, hub
from frlib.config import Config
from frlib.data import prepare
from frlib.labels import TASKS, class_id
from frlib.sources import SourceError, load_spec


def labels(emotion=None, age=None, ethnicity=None, gender=None):
    return {"emotion": emotion, "age": age, "ethnicity": ethnicity, "gender": gender}


def issues(result, key="skipped"):
    return [(item["line"], item["reason"]) for item in getattr(result, key)]


# --------------------------------------------------------------------------- FairFace


def test_fairface_layout(tmp_path):
    (tmp_path / "fairface_label_train.csv").write_text(
        "file,age,gender,race,service_test\n"
        "train/1.jpg,20-29,Male,White,TRUE\n"
        "train/2.jpg,more than 70,Female,Southeast Asian,FALSE\n"
        "train/3.jpg,ancient,Female,Latino_Hispanic,FALSE\n"
        ",30-39,Male,Black,FALSE\n"
    )
    (tmp_path / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\n"
        "val/1.jpg,3-9,Female,Middle Eastern,True\n"
        "val/2.jpg,??,Robot,Martian,True\n"
    )
    for name in ("train/1.jpg", "train/2.jpg", "train/3.jpg", "val/1.jpg"):
        write_image(tmp_path / name)
    result = load_spec(f"fairface:{tmp_path}")
    got = [
        (Path(r.image).relative_to(tmp_path).as_posix(), r.labels, r.split, r.line)
        for r in result.records
    ]
    assert got == [
        ("train/1.jpg", labels(age="20_30", gender="male", ethnicity="white"), None, 2),
        ("train/2.jpg", labels(age="above_50", gender="female", ethnicity="asian"), None, 3),
        ("train/3.jpg", labels(gender="female", ethnicity="hispanic"), None, 4),
        ("val/1.jpg", labels(age="below_20", gender="female", ethnicity="others"), "test", 2),
    ]
    assert all(r.box is None and r.source == f"fairface:{tmp_path}" for r in result.records)
    assert [(s["file"], s["line"], s["reason"]) for s in result.skipped] == [
        ("fairface_label_train.csv", 5, "row has no file name"),
        ("fairface_label_val.csv", 3, "row has no usable label"),
    ]
    assert issues(result, "warnings") == [
        (4, "unknown FairFace age value 'ancient': left missing"),
        (3, "unknown FairFace age value '??': left missing"),
        (3, "unknown FairFace gender value 'Robot': left missing"),
        (3, "unknown FairFace race value 'Martian': left missing"),
    ]


def test_fairface_without_label_files_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="fairface_label_train.csv"):
        load_spec(f"fairface:{tmp_path}")
    with pytest.raises(SourceError, match="not found"):
        load_spec(f"fairface:{tmp_path / 'nowhere'}")


# --------------------------------------------------------------------------- UTKFace


def test_utkface_names(tmp_path):
    good = {
        "25_0_2_20170116174525125.jpg.chip.jpg": labels(
            age="20_30", gender="male", ethnicity="asian"
        ),
        "3_1_4_20170103.jpg": labels(age="below_20", gender="female", ethnicity="others"),
        "50_0_1_20170104.jpg.chip.jpg": labels(age="above_50", gender="male", ethnicity="black"),
        "19_1_3_20170105.jpg.chip.jpg": labels(age="below_20", gender="female", ethnicity="indian"),
        "part2/45_1_0_20170106.jpg.chip.jpg": labels(
            age="40_50", gender="female", ethnicity="white"
        ),
    }
    bad = ["39_1_20170116174525125.jpg.chip.jpg", "abc_0_0_1.jpg.chip.jpg", "40_2_0_1.jpg.chip.jpg"]
    for name in [*good, *bad, ".hidden_1_0_0.jpg"]:
        write_image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    result = load_spec(f"utkface:{tmp_path}")
    got = {Path(r.image).relative_to(tmp_path).as_posix(): r.labels for r in result.records}
    assert got == good
    assert all(r.box is None and r.split is None for r in result.records)
    assert sorted(issues(result)) == sorted(
        (name, f"file name {name!r} is not age_gender_race_datetime.jpg") for name in bad
    )
    assert result.warnings == []


# --------------------------------------------------------------------------- class folders


def _emotion_folders(root: Path) -> Path:
    for name in ("Angry/a.jpg", "Angry/b.png", "happy/c.jpg", "neutral/d.bmp", "sad/deep/e.webp"):
        write_image(
            root / name,
            {".jpg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}[Path(name).suffix],
        )
    for name in ("surprise/f.jpg", "surprise/g.jpg", "Fear/h.jpg"):
        write_image(root / name)
    (root / "happy" / "notes.txt").write_text("ignored")
    return root


def test_folders_match_class_names_and_report_unmapped_folders_once(tmp_path):
    root = _emotion_folders(tmp_path / "faces")
    result = load_spec(f"folders:{root}")
    got = sorted((Path(r.image).name, r.labels["emotion"]) for r in result.records)
    assert got == [
        ("a.jpg", "angry"),
        ("b.png", "angry"),
        ("c.jpg", "happy"),
        ("d.bmp", "neutral"),
        ("e.webp", "sad"),
    ]
    assert all(r.labels == labels(emotion=r.labels["emotion"]) for r in result.records)
    assert all(r.box is None and r.split is None for r in result.records)
    assert [(s["line"], s["count"]) for s in result.skipped] == [("Fear", 1), ("surprise", 2)]
    assert result.skipped[1]["reason"] == (
        "folder 'surprise' (2 images) matches no emotion class: left out "
        "(map it with ?map=surprise:CLASS)"
    )


def test_folders_map_option_and_errors(tmp_path):
    root = _emotion_folders(tmp_path / "faces")
    result = load_spec(f"folders:{root}?map=surprise:happy,fear:not_face")
    got = sorted((Path(r.image).name, r.labels["emotion"]) for r in result.records)
    assert ("f.jpg", "happy") in got and ("g.jpg", "happy") in got and ("h.jpg", "not_face") in got
    assert len(got) == 8 and result.skipped == []
    with pytest.raises(SourceError, match="bad map entry 'surprise:joy'"):
        load_spec(f"folders:{root}?map=surprise:joy")
    with pytest.raises(SourceError, match="unknown task 'mood'"):
        load_spec(f"folders:{root}?task=mood")
    with pytest.raises(SourceError, match="no class subfolders"):
        load_spec(f"folders:{tmp_path / 'faces' / 'happy'}")


def test_folders_other_task_and_split_subfolders(tmp_path):
    for name in ("ages/20-30/a.jpg", "ages/Below 20/b.jpg", "ages/old/c.jpg"):
        write_image(tmp_path / name)
    result = load_spec(f"folders:{tmp_path / 'ages'}?task=age")
    assert sorted((Path(r.image).name, r.labels["age"]) for r in result.records) == [
        ("a.jpg", "20_30"),
        ("b.jpg", "below_20"),
    ]
    assert [s["line"] for s in result.skipped] == ["old"]
    for name in ("fer/train/happy/a.jpg", "fer/validation/sad/b.jpg", "fer/test/angry/c.jpg"):
        write_image(tmp_path / name)
    result = load_spec(f"folders:{tmp_path / 'fer'}")
    got = sorted((Path(r.image).name, r.labels["emotion"], r.split) for r in result.records)
    assert got == [("a.jpg", "happy", "train"), ("b.jpg", "sad", "val"), ("c.jpg", "angry", "test")]


# --------------------------------------------------------------------------- csv manifests


def _manifest(tmp_path: Path, remote_url: str) -> Path:
    folder = tmp_path / "manifest"
    for name in ("images/a.jpg", "images/c.jpg", "images/f.jpg"):
        write_image(folder / name, size=(80, 60))
    absolute = write_image(tmp_path / "elsewhere" / "b.jpg")
    rows = [
        "path,Emotion,age,ethnicity,gender,split,x0,y0,x1,y1",
        "images/a.jpg,Happy,20-30,White,Male,train,0.1,0.1,0.6,0.7",
        f"{remote_url},not face,,,,test,,,,",
        "images/a.jpg,Sad,,,Female,train,0.5,0.2,0.9,0.8",
        f"{absolute},angry,Below 20,latino_hispanic,FEMALE,val,,,,",
        "images/c.jpg,furious,,,,,,,,",
        ",happy,,,,,,,,",
        "images/d.jpg,happy,,,,,0.5,0.5,0.2,0.9",
        "images/e.jpg,happy,,,,,a,b,c,d",
        "images/f.jpg,neutral,,,,someday,,,,",
    ]
    path = folder / "faces.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_manifest(tmp_path, http_server):
    remote = http_server.add("/remote.png", image_bytes("PNG", size=(50, 50)))
    path = _manifest(tmp_path, remote)
    result = load_spec(f"csv:{path}")
    images = path.parent / "images"
    got = [(r.line, r.image, r.box, r.labels, r.split) for r in result.records]
    assert got == [
        (
            2,
            str(images / "a.jpg"),
            (0.1, 0.1, 0.6, 0.7),
            labels("happy", "20_30", "white", "male"),
            "train",
        ),
        (3, remote, None, labels("not_face"), "test"),
        (4, str(images / "a.jpg"), (0.5, 0.2, 0.9, 0.8), labels("sad", gender="female"), "train"),
        (
            5,
            str(tmp_path / "elsewhere" / "b.jpg"),
            None,
            labels("angry", "below_20", "hispanic", "female"),
            "val",
        ),
        (10, str(images / "f.jpg"), None, labels("neutral"), None),
    ]
    assert issues(result) == [
        (6, "row has no usable label"),
        (7, "row has no path"),
        (8, "box 0.5,0.5,0.2,0.9 is not normalised (0 <= x0 < x1 <= 1, same for y)"),
        (9, "box a,b,c,d is not four numbers"),
    ]
    assert issues(result, "warnings") == [
        (6, "unknown emotion label 'furious': left missing"),
        (10, "unknown split 'someday': the split is drawn instead"),
    ]


def test_csv_manifest_from_a_url_resolves_relative_paths_against_it(http_server):
    url = http_server.add("/data/faces.csv", "path,gender\nimg/1.jpg,female\n")
    result = load_spec(f"csv:{url}")
    assert [r.image for r in result.records] == [http_server.url("/data/img/1.jpg")]
    with pytest.raises(SourceError, match="no path column"):
        load_spec("csv:" + http_server.add("/bad.csv", "file,gender\na.jpg,male\n"))


# --------------------------------------------------------------------------- FER-2013


def _pixels(seed: int, n: int = 2304) -> list[int]:
    return np.random.default_rng(seed).integers(0, 256, n).tolist()


def _fer_csv(path: Path) -> Path:
    def row(code, values, usage):
        return f'{code},"{" ".join(map(str, values))}",{usage}'

    rows = [
        "emotion,pixels,Usage",
        row(3, _pixels(2), "Training"),
        row(6, _pixels(3), "PublicTest"),
        row(1, _pixels(4), "Training"),
        row(0, _pixels(5), "PrivateTest"),
        row(4, _pixels(6, 10), "Training"),
        row(2, [*_pixels(7, 2303), "x"], "Training"),
        row(9, _pixels(8), "Training"),
        row(5, _pixels(9), "Training"),
        row(5, _pixels(10), "PublicTest"),
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fer2013_decodes_rows_once_into_cached_pngs(tmp_path, monkeypatch):
    monkeypatch.setenv("FRLIB_CACHE", str(tmp_path / "cache"))
    csv_path = _fer_csv(tmp_path / "fer2013.csv")
    result = load_spec(f"fer2013:{csv_path}")
    got = [(r.line, r.labels, r.split, r.box) for r in result.records]
    assert got == [
        (2, labels("happy"), "train", None),
        (3, labels("neutral"), "val", None),
        (5, labels("angry"), "test", None),
    ]
    first = Path(result.records[0].image)
    assert first.parent.parent == tmp_path / "cache" / "fer2013"
    face = np.asarray(Image.open(first))
    assert face.shape == (48, 48) and face.ravel().tolist() == _pixels(2)
    assert issues(result) == [
        (6, "10 pixel values, expected 2304 (48x48)"),
        (7, "pixel values are not whole numbers"),
        (8, "emotion '9' is not a code 0-6"),
        (
            "emotion 1",
            "1 rows of emotion 1 (disgust) have no class here: left out (map them with ?map=disgust:CLASS)",
        ),
        (
            "emotion 5",
            "2 rows of emotion 5 (surprise) have no class here: left out (map them with ?map=surprise:CLASS)",
        ),
    ]
    assert [s.get("count") for s in result.skipped] == [None, None, None, 1, 2]
    # Second load reuses the decoded files: the csv is not parsed again.
    stamp = first.stat().st_mtime_ns
    monkeypatch.setattr(fer2013, "_decode_fer", lambda *a: pytest.fail("decoded again"))
    mapped = load_spec(f"fer2013:{csv_path}?map=surprise:happy")
    assert first.stat().st_mtime_ns == stamp
    assert [(r.line, r.labels["emotion"], r.split) for r in mapped.records][-2:] == [
        (9, "happy", "train"),
        (10, "happy", "val"),
    ]
    assert len(mapped.skipped) == 4  # three bad rows, disgust


def test_fer2013_cache_option_and_changed_csv(tmp_path):
    csv_path = _fer_csv(tmp_path / "fer2013.csv")
    spec = f"fer2013:{csv_path}?cache={tmp_path / 'c'}"
    first = load_spec(spec).records[0].image
    assert first.startswith(str(tmp_path / "c" / "fer2013"))
    with csv_path.open("a") as f:
        f.write(f'4,"{" ".join(map(str, _pixels(11)))}",Training\n')
    again = load_spec(spec)
    assert Path(again.records[0].image).parent != Path(first).parent  # new size: decoded anew
    assert again.records[-1].labels["emotion"] == "sad"
    with pytest.raises(SourceError, match="not found"):
        load_spec(f"fer2013:{tmp_path / 'missing.csv'}")


# --------------------------------------------------------------------------- FairFace from the hub


def _parquet(rows: list[tuple]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "image": pa.array(
                [{"bytes": r[0], "path": f"{i}.jpg"} for i, r in enumerate(rows)], image
            ),
            "age": pa.array([r[1] for r in rows], pa.int64()),
            "gender": pa.array([r[2] for r in rows], pa.int64()),
            "race": pa.array([r[3] for r in rows], pa.int64()),
            "service_test": pa.array([True] * len(rows)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


FACE = image_bytes("JPEG", size=(40, 40))
TRAIN = [(FACE, 3, 0, 3), (FACE, 8, 1, 6), (FACE, 12, 1, 5), (None, 1, 0, 0), (FACE, 0, 0, 4)]
VALIDATION = [(image_bytes("PNG", size=(30, 30)), 4, 1, 2), (FACE, 5, 0, 1)]
HUB_PATH = "/datasets/HuggingFaceM4/FairFace/resolve/main/0.25/"


@pytest.fixture
def hub_server(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("FRLIB_CACHE", str(tmp_path / "cache"))
    http_server.add(HUB_PATH + "train-00000-of-00001.parquet", _parquet(TRAIN), ranges=True)
    http_server.add(HUB_PATH + "validation-00000-of-00001.parquet", _parquet(VALIDATION))
    files = "train-00000-of-00001.parquet,validation-00000-of-00001.parquet"
    http_server.spec = f"fairface-hub:?base={http_server.url('')}&files={files}"
    return http_server


def test_fairface_hub_limit_labels_and_cache(hub_server):
    result = load_spec(hub_server.spec + "&limit=3")
    assert [(r.line, r.labels, r.split) for r in result.records] == [
        (1, labels(age="20_30", gender="male", ethnicity="white"), None),
        (2, labels(age="above_50", gender="female", ethnicity="asian"), None),
        (3, labels(gender="female", ethnicity="hispanic"), None),
    ]
    assert issues(result, "warnings") == [(3, "unknown FairFace age value 12: left missing")]
    assert all(Path(r.image).read_bytes() == FACE for r in result.records)
    assert hub_server.hits[HUB_PATH + "validation-00000-of-00001.parquet"] == 0  # not needed
    hub_server.reset_hits()
    again = load_spec(hub_server.spec + "&limit=3")
    assert hub_server.total_hits == 0
    assert [r.image for r in again.records] == [r.image for r in result.records]
    everything = load_spec(hub_server.spec)
    assert [(r.line, r.split) for r in everything.records] == [
        (1, None),
        (2, None),
        (3, None),
        (5, None),
        (1, "test"),
        (2, "test"),
    ]
    assert everything.records[4].labels == labels(age="30_40", gender="female", ethnicity="black")
    assert everything.records[4].image.endswith(".png")
    assert [(s["file"], s["line"], s["reason"]) for s in everything.skipped] == [
        ("train-00000-of-00001.parquet", 4, "row has no image")
    ]


def test_fairface_hub_resumes_an_interrupted_download(hub_server, monkeypatch):
    monkeypatch.setattr(hub, "CHUNK_SIZE", 256)  # the chunk in flight when cut is lost
    data = _parquet(TRAIN)
    route = HUB_PATH + "train-00000-of-00001.parquet"
    cut = Reply(data[:1000], headers={"Content-Length": str(len(data))}, send_length=False)
    hub_server.add_sequence(route, [cut, Reply(data, ranges=True)])
    result = load_spec(hub_server.spec + "&limit=2")
    assert len(result.records) == 2
    ranges = [headers.get("Range") for path, headers in hub_server.requests if path == route]
    assert ranges == [None, "bytes=768-"]  # three whole chunks had arrived
    cached = Path(result.records[0].image).parent.parent / "train-00000-of-00001.parquet"
    assert cached.read_bytes() == data and not cached.with_name(cached.name + ".part").exists()


@pytest.mark.parametrize(
    "have, ranges, sent",
    [
        (700, True, ["bytes=700-"]),  # a killed run's .part file: the rest is fetched
        (None, True, ["bytes={n}-"]),  # killed before the rename: 416, nothing to fetch
        (700, False, ["bytes=700-"]),  # a server that ignores Range sends it all again
    ],
)
def test_fairface_hub_resumes_a_part_file_left_by_a_killed_run(
    hub_server, tmp_path, have, ranges, sent
):
    data = _parquet(TRAIN)
    hub_server.add(HUB_PATH + "train-00000-of-00001.parquet", data, ranges=ranges)
    part = tmp_path / "cache/hub/FairFace/0.25/train-00000-of-00001.parquet.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:have])
    result = load_spec(hub_server.spec + "&limit=1")
    assert len(result.records) == 1
    assert [h.get("Range") for _, h in hub_server.requests] == [s.format(n=len(data)) for s in sent]
    assert part.with_suffix("").read_bytes() == data and not part.exists()


def test_fairface_hub_offline_and_missing_files(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("FRLIB_CACHE", str(tmp_path / "cache"))
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError) as error:
        load_spec(f"fairface-hub:?base=http://127.0.0.1:{port}&limit=5")
    message = str(error.value)
    assert "could not reach the Hugging Face Hub" in message and "\n" not in message
    assert "fairface:DIR" in message and "utkface:DIR" in message
    assert hub.HUB_FILES["train"][0] in message  # the real file names by default
    with pytest.raises(SourceError, match="HTTP 404"):
        load_spec(f"fairface-hub:?base={http_server.url('')}&files=nothing.parquet")
    with pytest.raises(SourceError, match="limit must be a positive whole number"):
        load_spec("fairface-hub:?limit=lots")
    with pytest.raises(SourceError, match="unknown split 'dev'"):
        load_spec("fairface-hub:?split=dev")


# --------------------------------------------------------------------------- end to end


def test_prepare_folders_and_csv(tmp_path):
    root = tmp_path / "emotions"
    for index, name in enumerate(
        ["happy/1.jpg", "happy/2.jpg", "sad/3.jpg", "sad/4.jpg", "surprise/5.jpg"]
    ):
        write_image(root / name, size=(40 + index, 40))
    folder = tmp_path / "manifest"
    write_image(folder / "group.jpg", size=(120, 80))
    write_image(folder / "held.jpg", size=(60, 60))
    (folder / "faces.csv").write_text(
        "path,gender,age,split,x0,y0,x1,y1\n"
        "group.jpg,male,20-30,,0.05,0.1,0.45,0.9\n"
        "group.jpg,female,above 50,,0.55,0.1,0.95,0.9\n"
        "held.jpg,female,,test,,,,\n"
    )
    config = Config(
        data=[f"folders:{root}", f"csv:{folder / 'faces.csv'}"],
        cache_dir=str(tmp_path / "cache"),
        image_size=32,
    )
    data = prepare(config, progress=False)
    assert data.crops.shape == (7, 32, 32, 3)
    got = sorted(
        (Path(r.image).name, r.labels["emotion"], r.labels["gender"]) for r in data.records
    )
    assert got == [
        ("1.jpg", "happy", None),
        ("2.jpg", "happy", None),
        ("3.jpg", "sad", None),
        ("4.jpg", "sad", None),
        ("group.jpg", None, "female"),
        ("group.jpg", None, "male"),
        ("held.jpg", None, "female"),
    ]
    for task in TASKS:
        assert data.labels[task].tolist() == [class_id(task, r.labels[task]) for r in data.records]
    split_of = {i: name for name, rows in data.split.items() for i in rows.tolist()}
    assert sorted(split_of) == list(range(7))
    by_file = {}
    for i, record in enumerate(data.records):
        by_file.setdefault(record.image, set()).add(split_of[i])
    assert all(len(splits) == 1 for splits in by_file.values())  # both faces of group.jpg together
    assert by_file[str(folder / "held.jpg")] == {"test"}
    assert [s["line"] for s in data.report["faces"]["skipped"]] == ["surprise"]
