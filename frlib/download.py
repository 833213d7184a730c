"""Concurrent, cached, retrying image downloads."""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tqdm.auto import tqdm
from urllib3.exceptions import ReadTimeoutError

from frlib.files import atomic_write_bytes

__all__ = [
    "DownloadError",
    "DownloadReport",
    "cached_path",
    "download_all",
    "fetch_bytes",
    "sniff_image_type",
]

# Retry backoff: attempt n waits about BACKOFF_BASE * 2**n seconds (with jitter), at most BACKOFF_MAX.
# A server's Retry-After (on 429/503) is honoured up to BACKOFF_MAX. Tests shrink BACKOFF_BASE.
BACKOFF_BASE = 0.2
BACKOFF_MAX = 10.0
CHUNK_SIZE = 64 * 1024
# Temp files older than this (left by a killed run) are removed when a download run starts.
STALE_PART_SECONDS = 3600.0
USER_AGENT = "frlib (+https://github.com/frlib/frlib) python-requests"

_EXTENSIONS = {
    "jpeg": ".jpg",
    "png": ".png",
    "gif": ".gif",
    "webp": ".webp",
    "bmp": ".bmp",
    "tiff": ".tiff",
}
_BLOB_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.[a-z]+$")


class DownloadError(Exception):
    """One URL could not be downloaded. `reason` is short ("HTTP 404"); str() adds what to do."""

    def __init__(self, url: str, reason: str, hint: str = "", message: str | None = None):
        self.url = url
        self.reason = reason
        self.hint = hint
        if message is None:
            message = f"could not download {url}: {reason}"
            if hint:
                message += f"; {hint}"
        self.message = message
        super().__init__(message)

    def __reduce__(self):  # picklable despite the extra fields
        return (type(self), (self.url, self.reason, self.hint, self.message))


class _Retryable(Exception):
    """A failure worth another try: 5xx, 429, timeouts, dropped connections."""

    def __init__(
        self, reason: str, hint: str, retry_after: float | None = None, http: bool = False
    ):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.retry_after = retry_after
        self.http = http


# --------------------------------------------------------------------------- sniffing


def sniff_image_type(data: bytes) -> str | None:
    """The image format from the first bytes: jpeg, png, gif, webp, bmp or tiff; None otherwise."""
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM") and len(head) >= 18:
        # "BM" alone is too weak (text can start with it): also require a known DIB header size.
        dib_size = int.from_bytes(head[14:18], "little")
        if dib_size in (12, 16, 40, 52, 56, 64, 108, 124):
            return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None


# --------------------------------------------------------------------------- one URL


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def _plural(n: int, word: str) -> str:
    return (
        f"{n} {word}" if n == 1 else f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"
    )


def _short_connection_error(exc: BaseException) -> str:
    """'Connection refused' out of requests' long nested message."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if match:
        return match.group(1).strip().rstrip(".")
    for needle, short in (
        ("NameResolutionError", "could not resolve host"),
        ("Failed to resolve", "could not resolve host"),
        ("RemoteDisconnected", "server closed the connection"),
        ("Connection aborted", "connection aborted"),
        ("Connection reset", "connection reset"),
        ("SSLError", "TLS/SSL error"),
        ("SSL", "TLS/SSL error"),
    ):
        if needle in text:
            return short
    return type(exc).__name__


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    return None


def _check_scheme(url: str) -> None:
    hint = "only http(s) URLs are supported; copy local files into a data folder instead"
    if not isinstance(url, str) or not url.strip():
        raise DownloadError(str(url), "empty URL", hint)
    scheme = urlsplit(url.strip()).scheme.lower()
    if not scheme:
        raise DownloadError(url, "not a URL (no http:// or https://)", hint)
    if scheme not in ("http", "https"):
        raise DownloadError(url, f"unsupported URL scheme '{scheme}'", hint)


def _get_once(session: requests.Session, url: str, timeout: float, max_bytes: int) -> bytes:
    """One GET: the body, or DownloadError (final) or _Retryable (worth another try)."""
    timed_out = f"timed out after {timeout:g}s"
    slow_hint = "the server is slow or unreachable; try again later or raise the timeout"
    too_big = f"larger than {_human_bytes(max_bytes)} limit"
    big_hint = "raise max_image_bytes if this image is genuine"
    try:
        with session.get(url, timeout=(timeout, timeout), stream=True) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise _Retryable(
                    f"HTTP {status}",
                    "the server is failing or rate-limiting; try again later",
                    retry_after=_retry_after(response),
                    http=True,
                )
            if status >= 300:
                hint = (
                    "the image is gone or needs a login; drop it or fix its URL"
                    if status >= 400
                    else "unexpected redirect reply"
                )
                raise DownloadError(url, f"HTTP {status}", hint)
            length = response.headers.get("Content-Length", "").strip()
            if length.isdigit() and int(length) > max_bytes:
                raise DownloadError(url, too_big, big_hint)
            body = bytearray()
            for chunk in response.iter_content(CHUNK_SIZE):
                body += chunk
                if len(body) > max_bytes:
                    raise DownloadError(url, too_big, big_hint)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    except requests.exceptions.Timeout as exc:
        raise _Retryable(timed_out, slow_hint) from exc
    except requests.exceptions.ConnectionError as exc:
        # requests reports a read timeout *while streaming the body* as a ConnectionError.
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise _Retryable(timed_out, slow_hint) from exc
        raise _Retryable(
            f"connection failed: {_short_connection_error(exc)}",
            "check the host name and your network",
        ) from exc
    except requests.exceptions.ChunkedEncodingError as exc:
        raise _Retryable(
            "connection failed: response cut short", "the server dropped the connection"
        ) from exc
    except requests.exceptions.TooManyRedirects as exc:
        raise DownloadError(url, "too many redirects", "the link loops; fix its URL") from exc
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise DownloadError(url, "invalid URL", "fix the URL") from exc
    except requests.exceptions.RequestException as exc:
        raise DownloadError(url, f"request failed: {type(exc).__name__}", str(exc)[:200]) from exc

    data = bytes(body)
    if sniff_image_type(data) is None:
        kind = content_type or "unknown type"
        if not data:
            kind = "empty body"
        hint = "the link may be dead or behind a login; open it in a browser"
        raise DownloadError(
            url,
            f"not an image ({kind})",
            hint,
            message=f"{url} is not an image (got {kind}, {len(data)} bytes): {hint}",
        )
    return data


def fetch_bytes(
    url: str,
    *,
    timeout: float = 15.0,
    max_bytes: int = 25 * 2**20,
    retries: int = 3,
    session: requests.Session | None = None,
) -> bytes:
    """GET an image's bytes, with a size cap, retries and backoff; DownloadError if it fails.

    Only http(s). `timeout` bounds the connect and each read. Retries (up to `retries` more
    tries) on HTTP 5xx and 429, timeouts and connection errors; never on other 4xx. The body
    must start with the magic bytes of an image format (an HTML error page is refused).
    """
    _check_scheme(url)
    own_session = session is None
    if own_session:
        session = _new_session(1)
    try:
        last: _Retryable | None = None
        for attempt in range(retries + 1):
            if last is not None:
                delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                if last.retry_after is not None:
                    delay = min(BACKOFF_MAX, max(delay, last.retry_after))
                time.sleep(delay)
            try:
                return _get_once(session, url, timeout, max_bytes)
            except _Retryable as exc:
                last = exc
        assert last is not None
        reason = last.reason
        if retries:
            n = _plural(retries, "retry")
            reason += f" after {n}" if last.http else f" ({n})"
        raise DownloadError(url, reason, last.hint) from last
    finally:
        if own_session:
            session.close()


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=max(10, pool_size), pool_maxsize=max(10, pool_size))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


# --------------------------------------------------------------------------- cache


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _index_path(url: str, cache_dir: Path) -> Path:
    return cache_dir / "urls" / _url_key(url)


def cached_path(url: str, cache_dir: str | os.PathLike) -> Path | None:
    """The cached file for `url` if an earlier run downloaded it, else None. Makes no request."""
    cache_dir = Path(cache_dir)
    try:
        lines = _index_path(url, cache_dir).read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    if not lines or not _BLOB_NAME.match(lines[0].strip()):
        return None
    blob = cache_dir / "blobs" / lines[0].strip()
    return blob if blob.is_file() else None


def _store(url: str, data: bytes, cache_dir: Path) -> Path:
    """Write the blob (by content hash), then the URL's index entry; both atomically."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"{digest[:2]}/{digest}{_EXTENSIONS[sniff_image_type(data) or 'jpeg']}"
    blob = cache_dir / "blobs" / name
    if not blob.is_file():
        atomic_write_bytes(blob, data)
    # Blob first, index second: an index entry never points at a missing file.
    atomic_write_bytes(_index_path(url, cache_dir), f"{name}\n{url}\n".encode())
    return blob


def _clean_stale_parts(cache_dir: Path, older_than: float = STALE_PART_SECONDS) -> int:
    """Remove temp files a killed run left behind (fresh ones may belong to a live run)."""
    removed = 0
    cutoff = time.time() - older_than
    for pattern in ("urls/.*.part", "blobs/*/.*.part"):
        for path in cache_dir.glob(pattern):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


# --------------------------------------------------------------------------- many URLs


@dataclass
class DownloadReport:
    """What `download_all` did: url -> cached file for successes, reasons for failures."""

    ok: dict[str, Path] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    downloaded: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        return len(self.ok) + len(self.failed)

    def summary(self) -> str:
        """One line, e.g. '120 images: 118 ok (100 downloaded, 18 cached), 2 failed'."""
        return (
            f"{_plural(self.total, 'image')}: {len(self.ok)} ok "
            f"({self.downloaded} downloaded, {self.cached} cached), {len(self.failed)} failed"
        )

    def to_dict(self) -> dict:
        return {
            "ok": len(self.ok),
            "downloaded": self.downloaded,
            "cached": self.cached,
            "failed": [dict(item) for item in self.failed],
        }


def _download_one(
    url: str,
    cache_dir: Path,
    session: requests.Session,
    timeout: float,
    retries: int,
    max_bytes: int,
) -> Path:
    data = fetch_bytes(url, timeout=timeout, max_bytes=max_bytes, retries=retries, session=session)
    return _store(url, data, cache_dir)


def download_all(
    urls: Iterable[str],
    cache_dir: str | os.PathLike,
    *,
    workers: int = 16,
    timeout: float = 15.0,
    retries: int = 3,
    max_bytes: int = 25 * 2**20,
    progress: bool = True,
) -> DownloadReport:
    """Download every URL into a content-addressed cache under `cache_dir`, concurrently.

    Duplicates are fetched once; URLs already cached make no request; one failure never stops
    the others. Files land as `blobs/ab/<sha256>.<ext>`, with `urls/<sha256(url)>` naming each
    URL's blob; both are written atomically, so a killed run leaves no partial file.
    """
    cache_dir = Path(cache_dir)
    unique = list(dict.fromkeys(urls))
    report = DownloadReport()
    ok: dict[str, Path] = {}
    failed: dict[str, str] = {}
    todo: list[str] = []
    for url in unique:
        path = cached_path(url, cache_dir) if isinstance(url, str) else None
        if path is not None:
            ok[url] = path
            report.cached += 1
        else:
            todo.append(url)

    with tqdm(
        total=len(unique),
        initial=report.cached,
        desc="download",
        unit="img",
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        if todo:
            cache_dir.mkdir(parents=True, exist_ok=True)
            _clean_stale_parts(cache_dir)
            workers = max(1, min(workers, len(todo)))
            with _new_session(workers) as session:
                pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frlib-dl")
                try:
                    futures: dict[Future, str] = {
                        pool.submit(
                            _download_one, url, cache_dir, session, timeout, retries, max_bytes
                        ): url
                        for url in todo
                    }
                    for future in as_completed(futures):
                        url = futures[future]
                        try:
                            ok[url] = future.result()
                            report.downloaded += 1
                        except DownloadError as exc:
                            failed[url] = exc.reason
                        except Exception as exc:  # a bug or disk error must not stop the rest
                            failed[url] = f"unexpected error: {type(exc).__name__}: {exc}"
                        bar.update(1)
                        if failed:
                            bar.set_postfix(failed=len(failed), refresh=False)
                except BaseException:
                    # Ctrl-C: drop queued URLs and return fast; writes in flight are atomic.
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                pool.shutdown(wait=True)

    # Report in input order, whatever order the downloads finished in.
    report.ok = {url: ok[url] for url in unique if url in ok}
    report.failed = [{"source": url, "reason": failed[url]} for url in unique if url in failed]
    return report
