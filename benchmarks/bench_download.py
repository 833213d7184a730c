"""Download throughput: the 2019 one-at-a-time loop vs frlib.download.download_all.

Serves N small JPEGs from a local threaded server that sleeps `--delay` seconds per request
(a stand-in for a slow remote host), then times:
  (a) sequential: one plain requests.get at a time, as the 2019 code did;
  (b) download_all with its default workers into a fresh cache;
  (c) download_all again over the same cache (should make no request).

    python benchmarks/bench_download.py [--images 120] [--delay 0.2] [--workers 16]
"""

from __future__ import annotations

import argparse
import inspect
import io
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from frlib.download import download_all  # noqa: E402


def make_jpegs(folder: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        img = Image.new("RGB", (96, 96), (i * 2 % 256, 100, 200 - i % 200))
        ImageDraw.Draw(img).ellipse((20, 20, 76, 76), fill=(i % 256, 180, 60))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        name = f"img{i:04d}.jpg"
        (folder / name).write_bytes(buf.getvalue())
        names.append(name)
    return names


def serve(folder: Path, delay: float):
    hits = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            with lock:
                hits[0] += 1
            time.sleep(delay)
            path = folder / Path(self.path).name
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return httpd, hits


def sequential(urls: list[str], out: Path) -> int:
    """The 2019 way: one requests.get after another, each written straight to disk."""
    out.mkdir(parents=True, exist_ok=True)
    ok = 0
    for i, url in enumerate(urls):
        r = requests.get(url, timeout=15)
        if r.status_code == 200:
            (out / f"{i}.jpg").write_bytes(r.content)
            ok += 1
    return ok


def main(argv=None) -> int:
    default_workers = inspect.signature(download_all).parameters["workers"].default
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=120)
    ap.add_argument("--delay", type=float, default=0.2, help="server sleep per request (s)")
    ap.add_argument("--workers", type=int, default=default_workers)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="frlib-bench-") as tmp:
        tmp = Path(tmp)
        served = tmp / "served"
        served.mkdir()
        names = make_jpegs(served, args.images)
        httpd, hits = serve(served, args.delay)
        base = f"http://127.0.0.1:{httpd.server_address[1]}/"
        urls = [base + name for name in names]
        n = len(urls)
        try:
            t0 = time.perf_counter()
            ok_a = sequential(urls, tmp / "sequential")
            t_a = time.perf_counter() - t0

            cache = tmp / "cache"
            t0 = time.perf_counter()
            rep_b = download_all(urls, cache, workers=args.workers, progress=False)
            t_b = time.perf_counter() - t0

            hits_before = hits[0]
            t0 = time.perf_counter()
            rep_c = download_all(urls, cache, workers=args.workers, progress=False)
            t_c = time.perf_counter() - t0
            requests_c = hits[0] - hits_before
        finally:
            httpd.shutdown()
            httpd.server_close()

    rows = [
        ("(a) sequential requests.get", t_a, ok_a, "-"),
        (f"(b) download_all, {args.workers} workers", t_b, len(rep_b.ok), "-"),
        ("(c) download_all, cached re-run", t_c, len(rep_c.ok), str(requests_c)),
    ]
    print(f"{n} JPEGs, server delay {args.delay * 1000:.0f} ms/request")
    print(f"{'run':<36} {'time s':>8} {'img/s':>9} {'ok':>5} {'requests':>9}")
    for name, t, ok, reqs in rows:
        print(f"{name:<36} {t:>8.2f} {n / t:>9.1f} {ok:>5} {reqs:>9}")
    speedup = t_a / t_b
    print(
        f"speed-up (b)/(a): {speedup:.1f}x (target >= 10x: {'PASS' if speedup >= 10 else 'FAIL'})"
    )
    print(f"cached re-run: {t_c:.3f} s (target < 1 s: {'PASS' if t_c < 1 else 'FAIL'})")
    good = speedup >= 10 and t_c < 1 and len(rep_b.ok) == n and requests_c == 0
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
