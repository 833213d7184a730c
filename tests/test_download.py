"""frlib.download against a real local HTTP server: retries, timeouts, caps, cache, reasons."""

from __future__ import annotations

import io
import os
import socket
import time

import pytest
import requests

from conftest import Reply, image_bytes, png_bomb_bytes, truncated_jpeg_bytes
from frlib import download
from frlib.download import (
    DownloadError,
    DownloadReport,
    cached_path,
    download_all,
    fetch_bytes,
    sniff_image_type,
)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(download, "BACKOFF_MAX", 0.05)


def part_files(root) -> list:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def free_port() -> int:
    """A port with nothing listening on it (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    "fmt, expected",
    [
        ("JPEG", "jpeg"),
        ("PNG", "png"),
        ("GIF", "gif"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
    ],
)
def test_sniff_real_images(fmt, expected):
    mode = "P" if fmt == "GIF" else "RGB"
    assert sniff_image_type(image_bytes(fmt, mode=mode)) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><body>Access denied</body></html>",
        b'{"error": "not found"}',
        b"BMW is a car brand, not a bitmap",
        b"RIFF....WAVEfmt ",
        b"\xff\xd8",
    ],
)
def test_sniff_rejects_non_images(data):
    assert sniff_image_type(data) is None


def test_sniff_truncated_jpeg_and_bomb_are_images():
    assert sniff_image_type(truncated_jpeg_bytes()) == "jpeg"
    assert sniff_image_type(png_bomb_bytes(64, 64)) == "png"


# --------------------------------------------------------------------------- fetch_bytes


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "data:,x"])
def test_fetch_refuses_non_http_schemes(url):
    with pytest.raises(DownloadError, match="only http\\(s\\) URLs are supported") as err:
        fetch_bytes(url)
    assert err.value.reason.startswith("unsupported URL scheme '")
    assert url in str(err.value)


def test_fetch_refuses_relative_path():
    with pytest.raises(DownloadError) as err:
        fetch_bytes("images/face.jpg")
    assert err.value.reason == "not a URL (no http:// or https://)"


def test_fetch_ok_and_session_reuse(http_server):
    jpeg = image_bytes("JPEG")
    url = http_server.add("/a.jpg", jpeg)
    assert fetch_bytes(url) == jpeg
    with requests.Session() as session:
        assert fetch_bytes(url, session=session) == jpeg
    assert http_server.hits["/a.jpg"] == 2


def test_fetch_404_is_not_retried(http_server):
    with pytest.raises(DownloadError) as err:
        fetch_bytes(http_server.url("/missing.jpg"), retries=3)
    assert err.value.reason == "HTTP 404"
    assert http_server.hits["/missing.jpg"] == 1
    assert "/missing.jpg" in str(err.value)


def test_fetch_403_is_not_retried(http_server):
    url = http_server.add("/private.jpg", "forbidden", status=403)
    with pytest.raises(DownloadError, match="HTTP 403"):
        fetch_bytes(url, retries=3)
    assert http_server.hits["/private.jpg"] == 1


def test_fetch_retries_429_then_succeeds(http_server):
    jpeg = image_bytes("JPEG")
    url = http_server.add_sequence("/limited.jpg", [429, 503, jpeg])
    assert fetch_bytes(url, retries=3) == jpeg
    assert http_server.hits["/limited.jpg"] == 3


def test_fetch_honours_retry_after_capped(http_server):
    jpeg = image_bytes("JPEG")
    url = http_server.add_sequence(
        "/ra.jpg", [Reply("slow down", 429, {"Retry-After": "3600"}), jpeg]
    )
    start = time.monotonic()
    assert fetch_bytes(url, retries=1) == jpeg
    assert time.monotonic() - start < 1.0  # capped at BACKOFF_MAX, never an hour


def test_fetch_backoff_grows(http_server, monkeypatch):
    sleeps = []
    monkeypatch.setattr(download.time, "sleep", sleeps.append)
    monkeypatch.setattr(download, "BACKOFF_MAX", 100.0)
    url = http_server.add("/down.jpg", "down", status=500)
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url, retries=3)
    assert err.value.reason == "HTTP 500 after 3 retries"
    assert len(sleeps) == 3
    # base * 2**n with jitter in [0.5, 1]: 0.01, 0.02, 0.04
    for n, s in enumerate(sleeps):
        assert 0.005 * 2**n <= s <= 0.01 * 2**n
    assert http_server.hits["/down.jpg"] == 4


def test_fetch_retries_zero(http_server):
    url = http_server.add("/down.jpg", "down", status=502)
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url, retries=0)
    assert err.value.reason == "HTTP 502"
    assert http_server.hits["/down.jpg"] == 1


def test_fetch_connection_refused_is_retried():
    url = f"http://127.0.0.1:{free_port()}/a.jpg"
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url, retries=2, timeout=2)
    assert err.value.reason.startswith("connection failed: ")
    assert "refused" in err.value.reason.lower()
    assert err.value.reason.endswith("(2 retries)")
    assert len(err.value.reason) < 80


def test_fetch_size_cap_from_content_length(http_server):
    big = b"\xff\xd8\xff" + os.urandom(5000)
    url = http_server.add("/big.jpg", big)
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url, max_bytes=4096, retries=3)
    assert err.value.reason == "larger than 4 KB limit"
    assert http_server.hits["/big.jpg"] == 1  # a size refusal is final


def test_fetch_size_cap_while_streaming(http_server):
    big = b"\xff\xd8\xff" + os.urandom(300_000)
    url = http_server.add("/stream.jpg", big, send_length=False)
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url, max_bytes=100_000)
    assert err.value.reason == "larger than 97.7 KB limit"
    assert http_server.hits["/stream.jpg"] == 1


def test_fetch_default_cap_message():
    err = DownloadError("http://x/y.jpg", f"larger than {download._human_bytes(25 * 2**20)} limit")
    assert err.reason == "larger than 25 MB limit"


def test_fetch_html_error_page(http_server):
    url = http_server.add(
        "/login.jpg",
        "<html><body>Please log in</body></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    with pytest.raises(DownloadError, match=r" is not an image \(got text/html, 39 bytes\)") as err:
        fetch_bytes(url, retries=3)
    assert err.value.reason == "not an image (text/html)"
    assert str(err.value).startswith(url)
    assert http_server.hits["/login.jpg"] == 1


def test_download_error_pickles():
    import pickle

    err = DownloadError("http://a/b.jpg", "HTTP 404", "drop it")
    back = pickle.loads(pickle.dumps(err))
    assert (back.url, back.reason, back.hint, str(back)) == (
        err.url,
        err.reason,
        err.hint,
        str(err),
    )
    assert str(err) == "could not download http://a/b.jpg: HTTP 404; drop it"


def test_fetch_empty_body(http_server):
    url = http_server.add("/empty.jpg", b"")
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url)
    assert err.value.reason == "not an image (empty body)"


def test_fetch_follows_redirect(http_server):
    png = image_bytes("PNG")
    http_server.add("/real.png", png)
    url = http_server.add("/old", "", status=302, headers={"Location": "/real.png"})
    assert fetch_bytes(url) == png
    assert http_server.hits["/old"] == 1
    assert http_server.hits["/real.png"] == 1


def test_fetch_timeout(http_server):
    url = http_server.add("/slow.jpg", image_bytes("JPEG"), delay=1.5)
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch_bytes(url, timeout=0.3, retries=1)
    assert err.value.reason == "timed out after 0.3s (1 retry)"
    assert http_server.hits["/slow.jpg"] == 2
    assert time.monotonic() - start < 1.5


# --------------------------------------------------------------------------- download_all


def test_download_all_mixed(http_server, image_files, png_bomb, tmp_path):
    from PIL import Image

    srv = http_server
    oversize = b"\xff\xd8\xff" + os.urandom(300_000)
    urls = {
        "jpeg": srv.add_file("/face.jpg", image_files["jpeg"]),
        "png_alpha": srv.add_file("/alpha.png", image_files["png_alpha"]),
        "gif": srv.add_file("/anim.gif", image_files["gif"]),
        "truncated": srv.add_file("/truncated.jpg", image_files["truncated"]),
        "bomb": srv.add("/bomb.png", png_bomb),
        "redirect": srv.add("/moved", "", status=302, headers={"Location": "/face2.jpg"}),
        "flaky": srv.add_sequence("/flaky.jpg", [500, image_files["webp"].read_bytes()]),
        "404": srv.url("/gone.jpg"),
        "always500": srv.add("/broken.jpg", "boom", status=500),
        "slow": srv.add("/slow.jpg", image_files["bmp"].read_bytes(), delay=3.0),
        "html": srv.add("/page.jpg", "<html>oops</html>", headers={"Content-Type": "text/html"}),
        "oversize": srv.add("/huge.jpg", oversize),
        "oversize_stream": srv.add("/huge2.jpg", oversize, send_length=False),
        "file": "file:///etc/hosts",
    }
    srv.add_file("/face2.jpg", image_files["tiff"])
    cache = tmp_path / "cache"
    all_urls = list(urls.values()) + [urls["jpeg"], urls["gif"]]  # duplicates

    start = time.monotonic()
    report = download_all(
        all_urls, cache, workers=8, timeout=0.5, retries=3, max_bytes=200_000, progress=False
    )
    elapsed = time.monotonic() - start

    ok_names = {"jpeg", "png_alpha", "gif", "truncated", "bomb", "redirect", "flaky"}
    assert set(report.ok) == {urls[n] for n in ok_names}
    assert report.downloaded == 7 and report.cached == 0
    reasons = {item["source"]: item["reason"] for item in report.failed}
    assert reasons == {
        urls["404"]: "HTTP 404",
        urls["always500"]: "HTTP 500 after 3 retries",
        urls["slow"]: "timed out after 0.5s (3 retries)",
        urls["html"]: "not an image (text/html)",
        urls["oversize"]: "larger than 195 KB limit",
        urls["oversize_stream"]: "larger than 195 KB limit",
        urls["file"]: "unsupported URL scheme 'file'",
    }
    # failures are listed in input order
    assert [item["source"] for item in report.failed] == [u for u in urls.values() if u in reasons]
    assert report.summary() == "14 images: 7 ok (7 downloaded, 0 cached), 7 failed"
    assert report.to_dict()["ok"] == 7 and len(report.to_dict()["failed"]) == 7

    # request counts: dedupe, retries, no retry on 4xx / not-an-image / too big
    assert srv.hits["/face.jpg"] == 1
    assert srv.hits["/anim.gif"] == 1
    assert srv.hits["/flaky.jpg"] == 2
    assert srv.hits["/broken.jpg"] == 4
    assert srv.hits["/slow.jpg"] == 4
    assert srv.hits["/gone.jpg"] == 1
    assert srv.hits["/page.jpg"] == 1
    assert srv.hits["/huge.jpg"] == 1
    assert srv.hits["/huge2.jpg"] == 1
    assert srv.hits["/moved"] == 1 and srv.hits["/face2.jpg"] == 1
    assert elapsed < 5

    # bytes on disk are exactly what was served, with the sniffed extension
    assert report.ok[urls["jpeg"]].read_bytes() == image_files["jpeg"].read_bytes()
    assert report.ok[urls["truncated"]].read_bytes() == image_files["truncated"].read_bytes()
    assert report.ok[urls["bomb"]].read_bytes() == png_bomb
    assert report.ok[urls["redirect"]].read_bytes() == image_files["tiff"].read_bytes()
    suffixes = {n: report.ok[urls[n]].suffix for n in ok_names}
    assert suffixes == {
        "jpeg": ".jpg",
        "png_alpha": ".png",
        "gif": ".gif",
        "truncated": ".jpg",
        "bomb": ".png",
        "redirect": ".tiff",
        "flaky": ".webp",
    }
    with Image.open(report.ok[urls["png_alpha"]]) as im:
        assert im.mode == "RGBA"
    # the bomb downloads fine; decoding it is refused later (here: just Pillow's header check)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(report.ok[urls["bomb"]])

    # everything stored lives under the cache; no temp file remains; failures are not cached
    for path in report.ok.values():
        assert path.is_relative_to(cache / "blobs")
        assert path.parent.name == path.name[:2]
    assert part_files(cache) == []
    for url in reasons:
        assert cached_path(url, cache) is None
    for url, path in report.ok.items():
        assert cached_path(url, cache) == path

    # a second run over the successes makes no HTTP request at all
    before = srv.total_hits
    again = download_all(list(report.ok), cache, progress=False)
    assert srv.total_hits == before
    assert again.ok == report.ok
    assert (again.downloaded, again.cached, again.failed) == (0, 7, [])
    assert again.summary() == "7 images: 7 ok (0 downloaded, 7 cached), 0 failed"


def test_second_run_retries_only_failures(http_server, tmp_path):
    jpeg = image_bytes("JPEG")
    good = http_server.add("/good.jpg", jpeg)
    later = http_server.add_sequence("/later.jpg", [Reply("not yet", 404), jpeg])
    cache = tmp_path / "cache"

    first = download_all([good, later], cache, retries=0, progress=False)
    assert first.summary() == "2 images: 1 ok (1 downloaded, 0 cached), 1 failed"
    assert first.failed == [{"source": later, "reason": "HTTP 404"}]

    second = download_all([good, later], cache, retries=0, progress=False)
    assert second.summary() == "2 images: 2 ok (1 downloaded, 1 cached), 0 failed"
    assert http_server.hits["/good.jpg"] == 1
    assert http_server.hits["/later.jpg"] == 2
    # same content from two URLs: one blob, two index entries
    assert second.ok[good] == second.ok[later]
    assert len(list((cache / "blobs").rglob("*.jpg"))) == 1
    assert len(list((cache / "urls").iterdir())) == 2


def test_cache_layout(http_server, tmp_path):
    import hashlib

    png = image_bytes("PNG")
    url = http_server.add("/x.png", png)
    report = download_all([url], tmp_path, progress=False)
    digest = hashlib.sha256(png).hexdigest()
    blob = tmp_path / "blobs" / digest[:2] / f"{digest}.png"
    assert report.ok == {url: blob}
    index = tmp_path / "urls" / hashlib.sha256(url.encode()).hexdigest()
    assert index.read_text().splitlines() == [f"{digest[:2]}/{digest}.png", url]
    # an index entry whose blob is gone counts as not cached, and is re-downloaded
    blob.unlink()
    assert cached_path(url, tmp_path) is None
    again = download_all([url], tmp_path, progress=False)
    assert again.downloaded == 1 and blob.read_bytes() == png
    # a corrupt index entry is ignored, never followed outside the cache
    index.write_text("../../../etc/passwd\n")
    assert cached_path(url, tmp_path) is None


def test_cached_path_unknown(tmp_path):
    assert cached_path("http://example.com/a.jpg", tmp_path / "nowhere") is None


def test_stale_part_files_cleaned(http_server, tmp_path):
    stale = tmp_path / "blobs" / "ab" / ".abc.jpg.x1.part"
    fresh = tmp_path / "urls" / ".def.x2.part"
    for p in (stale, fresh):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half")
    old = time.time() - 2 * download.STALE_PART_SECONDS
    os.utime(stale, (old, old))
    url = http_server.add("/a.jpg", image_bytes("JPEG"))
    download_all([url], tmp_path, progress=False)
    assert not stale.exists()
    assert fresh.exists()  # could belong to a run still going


def test_interrupted_write_leaves_no_file(http_server, tmp_path, monkeypatch):
    """A crash while writing (here: fsync fails) leaves neither the blob nor a temp file."""
    url = http_server.add("/a.jpg", image_bytes("JPEG"))

    def boom(fd):
        raise OSError("disk gone")

    monkeypatch.setattr("frlib.files.os.fsync", boom)
    report = download_all([url], tmp_path, progress=False)
    assert report.failed == [{"source": url, "reason": "unexpected error: OSError: disk gone"}]
    assert part_files(tmp_path) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_one_shared_session_with_big_pool(http_server, tmp_path, monkeypatch):
    sessions = []
    real = download._new_session

    def spy(pool_size):
        s = real(pool_size)
        sessions.append((pool_size, s))
        return s

    monkeypatch.setattr(download, "_new_session", spy)
    urls = [http_server.add(f"/{i}.png", image_bytes("PNG", size=(8 + i, 8))) for i in range(20)]
    report = download_all(urls, tmp_path, workers=16, progress=False)
    assert len(report.ok) == 20
    assert len(sessions) == 1
    pool_size, session = sessions[0]
    assert pool_size == 16
    assert session.get_adapter("http://127.0.0.1/")._pool_maxsize >= 16


def test_progress_bar_goes_to_stderr(http_server, tmp_path, capsys):
    url = http_server.add("/a.jpg", image_bytes("JPEG"))
    download_all([url], tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "1/1" in err
    download_all([url], tmp_path / "other", progress=False)
    assert capsys.readouterr().err == ""


def test_empty_input(tmp_path):
    report = download_all([], tmp_path / "cache", progress=False)
    assert report == DownloadReport()
    assert report.summary() == "0 images: 0 ok (0 downloaded, 0 cached), 0 failed"
    assert not (tmp_path / "cache").exists()


def test_report_to_dict_is_json_ready(tmp_path):
    import json

    report = DownloadReport(
        ok={"http://a/1.jpg": tmp_path / "x.jpg"},
        failed=[{"source": "http://a/2.jpg", "reason": "HTTP 404"}],
        downloaded=1,
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] == 1
    assert data["failed"] == [{"source": "http://a/2.jpg", "reason": "HTTP 404"}]
    assert report.summary() == "2 images: 1 ok (1 downloaded, 0 cached), 1 failed"


def test_png_bomb_fixture_is_small(png_bomb):
    from PIL import Image

    assert len(png_bomb) < 200_000
    Image.MAX_IMAGE_PIXELS  # noqa: B018 (documents which limit refuses it)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(png_bomb))
