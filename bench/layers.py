"""Benchmark of the images area: the layer-file analysis of a ~300 MB, 8-layer image, and `GET /api/v1/images/`.

1. Analysis (bench/layers_analysis.py does the work, reused here): from a fixed seed it builds an image of about
   300 MB over 8 layers FROM busybox:1.35.0, then, each in its own process, reads its `docker save` stream as the
   reference and runs `analyse_saved_image` over it; prints both times, their ratio, and the analysis's peak
   memory against the target (< 150 MB). The image is removed at the end.
2. API: in a throwaway database (SQLite under a temporary folder, or --database-url), one user with 1,000 image
   records of 4 layers each and one of 100 layers, made directly in the database; times `GET /api/v1/images/`
   (in-process, Django's test client, the whole view and serialization) for the first page (50 images), the
   largest page a client may ask for (`?page_size=500`) and the last page, prints each one's p95 latency against
   the target (< 150 ms), and the queries per request with 10 and with 1,001 images (constant, not growing).

Run: .venv/bin/python bench/layers.py [--scale 1.0] [--requests 40] [--skip-analysis] [--skip-api]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import layers_analysis  # noqa: E402

TARGET_PEAK_MB = 150
TARGET_P95_MS = 150
IMAGES = 1000


def bench_analysis(scale: float) -> None:
    started = time.perf_counter()
    image_id, written = layers_analysis.build_image(scale)
    print(f"built {image_id[:19]} ({written / layers_analysis.MB:.0f} MB written over 8 layers) in "
          f"{time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-layers-data-") as data_dir:
            reference = layers_analysis.measure("reference", image_id, data_dir)
            analysis = layers_analysis.measure("analyse", image_id, data_dir)
    finally:
        import subprocess

        subprocess.run(["docker", "rmi", image_id], capture_output=True, check=False)
    size_mb = reference["bytes"] / layers_analysis.MB
    print(f"  docker save stream: {size_mb:.0f} MB in {reference['seconds']:.2f} s")
    print(f"  analysis: {analysis['layers']} layers, {analysis['changes']} changes, wasted "
          f"{analysis['wasted_bytes'] / layers_analysis.MB:.1f} MB, efficiency {analysis['efficiency']:.3f}, "
          f"{analysis['seconds']:.2f} s, ratio analysis/reference {analysis['seconds'] / reference['seconds']:.2f}")
    verdict = "OK" if analysis["peak_mb"] < TARGET_PEAK_MB else "OVER TARGET"
    print(f"  analysis peak memory: {analysis['peak_mb']:.0f} MB (target < {TARGET_PEAK_MB} MB: {verdict})")


def bench_api(database_url: str | None, requests: int) -> None:
    folder = tempfile.mkdtemp(prefix="bench-images-db-")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{folder}/bench.sqlite3"
    os.environ.setdefault("CONSOLE_DATA_DIR", folder)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from builds.models import Image, Layer
    from console.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

    setup_test_environment()
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-images", "bench@example.com", "bench-password-1")
    client = Client()
    client.force_login(user)

    def make(first: int, count: int, layers: int) -> None:
        images = Image.objects.bulk_create(
            Image(owner=user, image_id=f"sha256:{number:064x}", tags=[f"bench/app-{number}:1"], size=5_000_000,
                  labels={"team": "web" if number % 2 else "api", "io.console.build-id": str(number)},
                  config={"env": ["PATH=/bin"], "cmd": ["sh"], "entrypoint": None, "user": "", "workdir": "",
                          "exposed_ports": [], "volumes": [], "healthcheck": None},
                  architecture="amd64", os="linux")
            for number in range(first, first + count)
        )
        Layer.objects.bulk_create(
            (Layer(image=image, index=index, diff_id=f"sha256:{index:064x}", created_by=f"/bin/sh -c step {index}",
                   size=1000 * index, empty_layer=index % 4 == 3)
             for image in images for index in range(layers)),
            batch_size=2000,
        )

    def queries_per_request(url: str, rows: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}: {response.content[:500]!r}")
        if len(response.json()["results"]) != rows:
            sys.exit(f"{url} answered {len(response.json()['results'])} images, not {rows}")
        return len(captured)

    make(0, 10, 4)
    few = queries_per_request("/api/v1/images/", 10)
    make(10, IMAGES - 10, 4)
    make(IMAGES, 1, 100)
    # The largest page: as many rows as one answer may hold, so a query per row would show here.
    many = queries_per_request(f"/api/v1/images/?page_size={MAX_PAGE_SIZE}", MAX_PAGE_SIZE)
    filtered = queries_per_request("/api/v1/images/?label=team=web&tag=bench/app-7:1", 1)
    last_page = -(-(IMAGES + 1) // DEFAULT_PAGE_SIZE)
    pages = {
        f"first page ({DEFAULT_PAGE_SIZE})": "/api/v1/images/",
        f"largest page ({MAX_PAGE_SIZE})": f"/api/v1/images/?page_size={MAX_PAGE_SIZE}",
        f"last page ({last_page})": f"/api/v1/images/?page={last_page}",
    }

    def latencies(url: str) -> tuple[list[float], int]:
        timings, size = [], 0
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            size = len(response.content)
        return sorted(timings), size

    def p95(timings: list[float]) -> float:
        return timings[max(0, int(round(0.95 * len(timings))) - 1)]

    measured = {page: latencies(url) for page, url in pages.items()}
    # A full collection scans every object of the process (Django's own included) and lands on some requests;
    # a server that freezes what it loaded at start-up (gc.freeze(), as gunicorn's preload apps do) skips that.
    gc.collect()
    gc.freeze()
    frozen = {page: latencies(url)[0] for page, url in pages.items()}
    gc.unfreeze()
    started = time.perf_counter()
    client.get("/api/v1/images/?label=team=web")
    labelled_ms = (time.perf_counter() - started) * 1000
    print(f"GET /api/v1/images/ with {IMAGES + 1} images (one of 100 layers), {Layer.objects.count()} layers, "
          f"{connection.vendor}")
    for page in pages:
        timings, size = measured[page]
        print(f"  {page}: {size / 1024:.0f} KiB per answer")
        for name, each in (("default GC", timings), ("after gc.freeze()", frozen[page])):
            verdict = "OK" if p95(each) < TARGET_P95_MS else "OVER TARGET"
            print(f"    latency over {requests} requests, {name}: median {statistics.median(each):.1f} ms, "
                  f"p95 {p95(each):.1f} ms (target < {TARGET_P95_MS} ms: {verdict})")
    print(f"  label filter (half the images, first page): {labelled_ms:.1f} ms")
    print(f"  queries per request: {few} with 10 images, {many} for {MAX_PAGE_SIZE} of {IMAGES + 1}, "
          f"{filtered} filtered ({'constant' if few == many == filtered else 'GROWING'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="image size factor (1.0: about 300 MB)")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--database-url", help="an empty database to use instead of a throwaway SQLite one")
    parser.add_argument("--skip-analysis", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()
    if not args.skip_analysis:
        bench_analysis(args.scale)
    if not args.skip_api:
        bench_api(args.database_url, args.requests)


if __name__ == "__main__":
    main()
