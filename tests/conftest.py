"""Shared test fixtures: a local HTTP server with scripted replies, and image-file helpers."""

from __future__ import annotations

import io
import mimetypes
import re
import struct
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# --------------------------------------------------------------------------- local HTTP server


@dataclass
class Reply:
    """One scripted HTTP reply. `send_length=False` omits Content-Length and closes the socket.

    `ranges=True` honours a `Range: bytes=N-` request header with a 206 partial reply (416 past
    the end), as file servers and the Hugging Face Hub do.
    """

    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] | None = None
    delay: float = 0.0
    send_length: bool = True
    ranges: bool = False


def _as_reply(item) -> Reply:
    if isinstance(item, Reply):
        return item
    if isinstance(item, dict):
        return Reply(**item)
    if isinstance(item, int):
        return Reply(body=f"status {item}", status=item)
    if isinstance(item, tuple):
        return Reply(*item)
    if isinstance(item, bytes | str):
        return Reply(body=item)
    raise TypeError(f"cannot make a reply from {item!r}")


def _partial(range_header: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """(status, body) for a `Range: bytes=N-` request; sets Content-Range in `headers`."""
    match = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
    if not match:
        return 200, body
    start = int(match.group(1))
    if start >= len(body):
        headers["Content-Range"] = f"bytes */{len(body)}"
        return 416, b""
    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
    return 206, body[start:]


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 serving scripted replies; counts hits per path.

    `add(path, body, ...)` always gives the same reply; `add_sequence(path, [r1, r2, ...])`
    gives r1 to the first request, r2 to the second, ..., then repeats the last one.
    Unknown paths get 404. `hits[path]` counts requests (path without the query string);
    `requests` lists (path, request headers) of every request in arrival order.
    """

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server._serve(self, head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                server._serve(self, head=True)

            def log_message(self, format, *args) -> None:  # quiet
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request, client_address) -> None:  # quiet on client hang-ups
                pass

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- scripting

    def url(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.port}{path}"

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        send_length: bool = True,
        ranges: bool = False,
    ) -> str:
        """Serve `body` at `path`; returns the full URL."""
        return self.add_sequence(path, [Reply(body, status, headers, delay, send_length, ranges)])

    def add_sequence(self, path: str, responses) -> str:
        """Serve the replies in turn (Reply, dict of Reply fields, int status, bytes); returns the URL."""
        replies = [_as_reply(r) for r in responses]
        if not replies:
            raise ValueError("add_sequence needs at least one reply")
        with self._lock:
            self.routes[urlsplit(path).path] = replies
        return self.url(path)

    def add_file(self, path: str, file: str | Path, **kwargs) -> str:
        return self.add(path, Path(file).read_bytes(), **kwargs)

    @property
    def total_hits(self) -> int:
        with self._lock:
            return sum(self.hits.values())

    def reset_hits(self) -> None:
        with self._lock:
            self.hits.clear()

    # -- serving

    def _serve(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            n = self.hits[path]
            self.hits[path] += 1
            self.requests.append((path, dict(handler.headers.items())))
            replies = self.routes.get(path)
        if replies is None:
            reply = Reply(
                b"<html><body>404 not found</body></html>", 404, {"Content-Type": "text/html"}
            )
        else:
            reply = replies[min(n, len(replies) - 1)]
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        headers = dict(reply.headers or {})
        status = reply.status
        if reply.ranges and status == 200:
            status, body = _partial(handler.headers.get("Range", ""), body, headers)
        if not any(k.lower() == "content-type" for k in headers):
            guessed = mimetypes.guess_type(path)[0]
            headers["Content-Type"] = guessed or (
                "text/plain" if isinstance(reply.body, str) else "application/octet-stream"
            )
        try:
            if reply.delay:
                time.sleep(reply.delay)
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            if reply.send_length:
                handler.send_header("Content-Length", str(len(body)))
            else:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            handler.end_headers()
            if not head:
                handler.wfile.write(body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            handler.close_connection = True

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def http_server():
    """A fresh LocalServer on 127.0.0.1 for one test (see LocalServer for the API)."""
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- images


def image_bytes(fmt: str = "JPEG", size=(64, 48), mode: str = "RGB", color=None, **save) -> bytes:
    """A small real image encoded in `fmt` (JPEG, PNG, GIF, WEBP, BMP, TIFF)."""
    from PIL import Image, ImageDraw

    if color is None:
        color = {"RGBA": (200, 40, 40, 128), "L": 128, "1": 1, "P": 3}.get(mode, (200, 120, 40))
    img = Image.new(mode, size, color)
    if mode in ("RGB", "RGBA"):
        # Some structure so encoders do real work and different sizes give different bytes.
        ImageDraw.Draw(img).ellipse(
            (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=(30, 90, 200)
        )
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def write_image(path: str | Path, fmt: str = "JPEG", **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(fmt, **kwargs))
    return path


def truncated_jpeg_bytes(size=(64, 48)) -> bytes:
    """A JPEG cut in half: valid magic bytes, unfinished scan data."""
    data = image_bytes("JPEG", size=size)
    return data[: len(data) // 2]


def png_bomb_bytes(width: int = 20000, height: int = 20000) -> bytes:
    """A valid 1-bit greyscale PNG of width x height, all black, built row by row.

    Tiny on disk (zeros compress ~1000:1) but 400 M pixels: Pillow refuses to decode it
    (DecompressionBombError). Built by hand because Pillow would need one byte per pixel
    of memory (400 MB) just to create it.
    """

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte 0 + packed bits
    comp = zlib.compressobj(9)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    idat = b"".join(parts)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def png_bomb() -> bytes:
    return png_bomb_bytes()


@dataclass
class ImageSet:
    """Paths of the small image files written by the `image_files` fixture."""

    root: Path
    files: dict[str, Path] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Path:
        return self.files[name]


@pytest.fixture
def image_files(tmp_path) -> ImageSet:
    """Real image files in tmp_path: jpeg, png (RGBA, with alpha), gif, webp, bmp, tiff, truncated jpeg."""
    root = tmp_path / "images"
    images = ImageSet(root)
    images.files["jpeg"] = write_image(root / "face.jpg", "JPEG")
    images.files["png_alpha"] = write_image(root / "alpha.png", "PNG", mode="RGBA")
    images.files["gif"] = write_image(root / "anim.gif", "GIF", mode="P")
    images.files["webp"] = write_image(root / "face.webp", "WEBP")
    images.files["bmp"] = write_image(root / "face.bmp", "BMP")
    images.files["tiff"] = write_image(root / "face.tiff", "TIFF")
    truncated = root / "truncated.jpg"
    truncated.write_bytes(truncated_jpeg_bytes(size=(80, 60)))
    images.files["truncated"] = truncated
    return images


def collect_batches(ds):
    """All (images, {task: labels}) batches of a tf.data pipeline, concatenated in numpy."""
    import numpy as np

    from frlib.labels import TASKS

    images, labels = [], {t: [] for t in TASKS}
    for x, y in ds:
        images.append(x.numpy())
        for t in TASKS:
            labels[t].append(y[t].numpy())
    return np.concatenate(images), {t: np.concatenate(v) for t, v in labels.items()}
