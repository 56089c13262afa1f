"""Benchmark: the per-layer file analysis of a ~300 MB, 8-layer image, against reading its `docker save` stream.

From a fixed seed it plans the files of six layers (thousands of small and a few big files; later layers
overwrite some, delete a folder, delete big files), builds the image FROM busybox:1.35.0 on the engine's
classic builder (the files are written inside the RUN steps, so the build context stays tiny), then, each in
its own process so that the peak memory is its own:
  - the reference: read the `docker save` stream through `export_image` and throw it away;
  - the console: `analyse_saved_image(export_image(...))`.
It prints both times, the ratio analysis/reference, the analysis throughput, its peak memory (ru_maxrss of the
process, target < 150 MB), the image's total and wasted bytes, and removes the image it built.

Run: .venv/bin/python bench/layers_analysis.py [--scale 1.0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
GENERATE = """\
#!/bin/sh
# Writes the files of one plan: each line is `size path`; zeros are enough, layers are not compressed.
set -e
while read size path; do
    mkdir -p "$(dirname "$path")"
    head -c "$size" /dev/zero > "$path"
done < "$1"
"""


def plan_layers(scale: float, seed: int = 20261127) -> tuple[list[str], int, dict[str, list[tuple[int, str]]]]:
    """The RUN steps and their plan files; returns the Dockerfile's steps and the bytes written."""
    rng = random.Random(seed)
    plans: dict[str, list[tuple[int, str]]] = {}

    def small(count: int, prefix: str, mean: int) -> list[tuple[int, str]]:
        return [(max(1, int(rng.expovariate(1 / mean))), f"{prefix}/d{n % 61:02d}/f{n}.bin") for n in range(count)]

    plans["l1"] = small(int(4000 * scale), "/srv/app", 30_000)
    plans["l2"] = small(int(2000 * scale), "/srv/lib", 36_000)
    plans["l3"] = [(rng.randint(10_000, 120_000), path) for _, path in rng.sample(plans["l1"], int(500 * scale))]
    plans["l5"] = [(int(rng.uniform(0.5, 1.5) * 1.2 * MB), f"/srv/big/b{n}.bin") for n in range(int(50 * scale))]
    plans["l6"] = small(int(800 * scale), "/srv/late", 25_000)
    steps = [
        "RUN sh /plan/gen.sh /plan/l1.txt",
        "RUN sh /plan/gen.sh /plan/l2.txt",
        "RUN sh /plan/gen.sh /plan/l3.txt",
        "RUN rm -rf /srv/app/d0* /srv/app/d1*",
        "RUN sh /plan/gen.sh /plan/l5.txt",
        "RUN rm -f /srv/big/b1*.bin && sh /plan/gen.sh /plan/l6.txt",
    ]
    written = sum(size for plan in plans.values() for size, _ in plan)
    return steps, written, plans


def build_image(scale: float) -> tuple[str, int]:
    steps, written, plans = plan_layers(scale)
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as context:
        plan_dir = Path(context, "plan")
        plan_dir.mkdir()
        (plan_dir / "gen.sh").write_text(GENERATE)
        for name, plan in plans.items():
            (plan_dir / f"{name}.txt").write_text("".join(f"{size} {path}\n" for size, path in plan))
        # busybox + the plan + six RUN steps: eight layers.
        dockerfile = "FROM busybox:1.35.0\nCOPY plan /plan\n" + "\n".join(steps) + "\n"
        Path(context, "Dockerfile").write_text(dockerfile)
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        completed = subprocess.run(
            ["docker", "build", "-q", "--rm", "--force-rm", "--label", "console-bench=layers", context],
            env=env, capture_output=True, text=True, check=False,
        )
    if completed.returncode != 0:
        sys.exit(f"build failed: {completed.stderr}")
    return completed.stdout.strip().splitlines()[-1], written


def child(mode: str, image_id: str, data_dir: str) -> None:
    """Runs in its own process so that its peak memory is its own; prints its measures as JSON."""
    os.environ["CONSOLE_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from builds.layerfiles import analyse_saved_image
    from console.engine import Engine
    from console.engine.images import export_image

    started = time.perf_counter()
    result: dict[str, object] = {}
    with Engine.for_builds(timeout=600) as engine:
        if mode == "reference":
            result["bytes"] = sum(len(chunk) for chunk in export_image(engine, image_id))
        else:
            analysis = analyse_saved_image(export_image(engine, image_id))
            result.update(layers=len(analysis.layers), total_size=analysis.total_size,
                          wasted_bytes=analysis.wasted_bytes, efficiency=analysis.efficiency,
                          changes=sum(len(layer.changes) for layer in analysis.layers))
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, image_id: str, data_dir: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", mode, image_id, data_dir], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        sys.exit(f"{mode} failed: {completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the image it built")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "IMAGE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    started = time.perf_counter()
    image_id, written = build_image(args.scale)
    print(f"built {image_id[:19]} ({written / MB:.0f} MB written by the RUN steps) in "
          f"{time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-layers-data-") as data_dir:
            reference = measure("reference", image_id, data_dir)
            analysis = measure("analyse", image_id, data_dir)
    finally:
        if not args.keep:
            subprocess.run(["docker", "rmi", image_id], capture_output=True, check=False)
    size_mb = reference["bytes"] / MB
    print(f"docker save stream: {size_mb:.0f} MB read in {reference['seconds']:.2f} s "
          f"(peak {reference['peak_mb']:.0f} MB)")
    print(f"analysis: {analysis['layers']} layers, {analysis['changes']} changes, total "
          f"{analysis['total_size'] / MB:.0f} MB, wasted {analysis['wasted_bytes'] / MB:.1f} MB, "
          f"efficiency {analysis['efficiency']:.3f}")
    print(f"analysis time: {analysis['seconds']:.2f} s ({size_mb / analysis['seconds']:.0f} MB/s), "
          f"ratio analysis/reference {analysis['seconds'] / reference['seconds']:.2f}")
    verdict = "OK" if analysis["peak_mb"] < 150 else "OVER TARGET"
    print(f"analysis peak memory: {analysis['peak_mb']:.0f} MB (target < 150 MB: {verdict})")


if __name__ == "__main__":
    main()
