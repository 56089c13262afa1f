"""Benchmark: comparing two analysed images (builds/services/compare.py) as their file counts grow.

Makes a throwaway SQLite database in a temporary folder (or uses `--database-url`, e.g. an empty PostgreSQL
database you made), migrates it, and writes pairs of image records directly: `--layers` layers of files each and
300 packages per image, in two cases per size:
  - shared: the head is the base plus one layer that grows 1 % of the files (two tags of one repository);
  - nothing shared: two images of different layers, every path added or removed (the worst case).
For each size (`--files`, paths per image) it times `compare_images` (the best of `--repeat` runs, wall clock
and this process's CPU, and the database queries it made), prints the counts it found, and checks them. Target:
well under a second at 20,000 paths per image in both cases.

    .venv/bin/python bench/compare.py [--files 2000,20000,100000] [--layers 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="2000,20000,100000", help="paths per image, comma-separated")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="console-bench-compare-"))
    os.environ.update({"DATABASE_URL": args.database_url or f"sqlite:///{data_dir / 'db.sqlite3'}",
                       "CONSOLE_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "console.settings",
                       "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "LOG_LEVEL": "WARNING"})
    sys.path.insert(0, str(ROOT))
    try:
        run(args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from builds.constants import AnalysisStatus
    from builds.models import Image, ImageAnalysis, ImagePackage, Layer
    from builds.services.compare import compare_images

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user(f"bench-{secrets.token_hex(4)}", "bench@example.com",
                                                 secrets.token_urlsafe(16))

    def make(name: str, layer_names: list[str], files: dict[int, list[dict]]) -> Image:
        image = Image.objects.create(owner=owner, image_id="sha256:" + hashlib.sha256(name.encode()).hexdigest(),
                                     tags=[f"{name}:1"], config={"env": ["PATH=/bin"], "cmd": ["sh"]},
                                     packages_read=timezone.now())
        Layer.objects.bulk_create(
            [Layer(image=image, index=index, created_by=f"RUN make {layer}", size=1000,
                   diff_id="sha256:" + hashlib.sha256(layer.encode()).hexdigest(), files=files.get(index, []))
             for index, layer in enumerate(layer_names)], batch_size=50)
        ImagePackage.objects.bulk_create(
            [ImagePackage(image=image, ecosystem="deb", name=f"pkg{n}", version=f"1.{n % 7}", purl="pkg:deb/x",
                          path="var/lib/dpkg/status") for n in range(300)], batch_size=500)
        run = ImageAnalysis.objects.create(image=image, status=AnalysisStatus.SUCCEEDED)
        Image.objects.filter(pk=image.pk).update(analysis=run)
        return Image.objects.select_related("analysis").get(pk=image.pk)

    def files_of(prefix: str, layers: int, per_layer: int) -> dict[int, list[dict]]:
        return {n: [{"path": f"{prefix}{n}/d{k % 97:02d}/f{k:06d}", "change": "added", "type": "file",
                     "size": k, "mode": 0o644} for k in range(per_layer)] for n in range(layers)}

    print(f"database: {connection.vendor}")
    for total in sorted({int(size) for size in args.files.split(",") if size.strip()}):
        per_layer = max(1, total // args.layers)
        layer_names = [f"{total}-layer{n}" for n in range(args.layers)]
        base_files = files_of("srv/l", args.layers, per_layer)
        grown = [{**row, "change": "modified", "size": row["size"] + 1}
                 for rows in base_files.values() for row in rows[: max(1, per_layer // 100)]]
        base = make(f"base-{total}", layer_names, base_files)
        head = make(f"head-{total}", [*layer_names, f"{total}-grow"], {**base_files, args.layers: grown})
        other = make(f"other-{total}", [f"{total}-other{n}" for n in range(args.layers)],
                     files_of("opt/o", args.layers, per_layer))
        for case, (old, new, expect) in {
            "shared": (base, head, {"added": 0, "removed": 0, "changed": len(grown)}),
            "nothing shared": (other, head, {"added": per_layer * args.layers, "removed": per_layer * args.layers,
                                             "changed": 0}),
        }.items():
            best, cpu, queries, result = float("inf"), float("inf"), 0, {}
            for _ in range(args.repeat):
                with CaptureQueriesContext(connection) as captured:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    result = compare_images(old, new)
                    best = min(best, time.perf_counter() - started)
                    cpu = min(cpu, time.process_time() - started_cpu)
                queries = len(captured)
            counts = result["files"]["counts"]
            status = "ok" if counts == expect else f"WRONG (expected {expect})"
            print(f"{per_layer * args.layers:>8} paths per image, {case:<15}: {best * 1000:8.1f} ms "
                  f"({cpu * 1000:.1f} ms CPU), {queries} queries, files {counts}, {status}")


if __name__ == "__main__":
    main()
