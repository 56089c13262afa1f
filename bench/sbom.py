"""Benchmark: the packages and SBOM of a ~300 MB Debian image with 200+ packages, against reading its `docker save`
stream.

It makes a Debian bookworm with mmdebstrap (minbase plus python3, perl, git and a few dozen tools; the tarball is
kept in test-artifacts/mmdebstrap/ for the day, as the tests keep theirs), `docker import`s it, migrates a
throw-away SQLite database, then, each in its own process so that the peak memory is its own:
  - the reference: read the `docker save` stream through `export_image` and throw it away;
  - the console: record the image, run its analysis job as the worker does (`run_analysis`: the files and the
    packages, read in one pass over the stream, and the rows written), then make its CycloneDX and SPDX SBOMs.
It prints both times, the ratio, the analysis' peak memory (ru_maxrss of the process, target < 150 MB), the
packages found against `dpkg-query -W` in a container of the image, and removes the image it imported.

Run: .venv/bin/python bench/sbom.py [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "mmdebstrap"
MB = 1024 * 1024
# About 300 MB and 200+ packages (with gcc it is 540 MB for the same count).
INCLUDE = ("python3,python3-pip,python3-venv,perl,git,curl,ca-certificates,openssl,gnupg,procps,less,vim-tiny,"
           "iproute2,iputils-ping,netbase,xz-utils,bzip2,unzip,file,make,openssh-client,rsync,wget,jq,sqlite3,"
           "tzdata,sudo,nano,lsof,strace,bind9-dnsutils,netcat-openbsd,zstd,patch,tree,htop")
TAG = "console-bench/sbom:bookworm"


def debian_tarball() -> Path:
    target = ARTIFACTS / f"bench-bookworm-{datetime.date.today().isoformat()}.tar"
    if target.exists():
        return target
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("bench-bookworm-*.tar"):
        old.unlink()
    partial = target.with_suffix(".partial")
    print(f"mmdebstrap bookworm (minbase + {INCLUDE}) ...", flush=True)
    completed = subprocess.run(["mmdebstrap", "--variant=minbase", f"--include={INCLUDE}", "--format=tar",
                                "bookworm", str(partial)], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"mmdebstrap failed: {completed.stderr[-3000:]}")
    partial.rename(target)
    return target


def import_image(tarball: Path) -> str:
    with tarball.open("rb") as data:
        completed = subprocess.run(["docker", "import", "-", TAG], stdin=data, capture_output=True, text=True,
                                   check=False)
    if completed.returncode != 0:
        sys.exit(f"docker import failed: {completed.stderr}")
    return completed.stdout.strip()


def installed(image_id: str) -> set[tuple[str, str]]:
    completed = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image_id, "dpkg-query", "-W",
         "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"], capture_output=True, text=True, check=True)
    return {tuple(line.split("\t")[1:]) for line in completed.stdout.splitlines() if line.startswith("ii")}


def _django(data_dir: str) -> None:
    os.environ["CONSOLE_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def child(mode: str, image_id: str, data_dir: str) -> None:
    """Runs in its own process so that its peak memory is its own; prints its measures as JSON."""
    _django(data_dir)
    from console.engine import Engine
    from console.engine.images import export_image

    result: dict[str, object] = {}
    if mode == "reference":
        started = time.perf_counter()
        with Engine.for_builds(timeout=600) as engine:
            result["bytes"] = sum(len(chunk) for chunk in export_image(engine, image_id))
        result["seconds"] = time.perf_counter() - started
    else:
        from django.contrib.auth import get_user_model

        from builds.constants import ImageOrigin
        from builds.models import Image, ImageAnalysis
        from builds.runner.analysis import run_analysis
        from builds.services.images import record_image
        from builds.services.packages import packages_of, sbom

        owner = get_user_model().objects.create_user("bench", "bench@example.com", "bench password 1234")
        with Engine.for_builds(timeout=600) as engine:
            image = record_image(owner, engine, image_id, ImageOrigin.SYNCED)
        run = ImageAnalysis.objects.create(image=image)
        Image.objects.filter(pk=image.pk).update(analysis=run)
        started = time.perf_counter()
        run_analysis(run.pk)
        result["seconds"] = time.perf_counter() - started
        result["analysis_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        image.refresh_from_db()
        result["status"], result["error"] = image.analysis_status, image.analysis_error
        result["packages"] = sorted(packages_of(image).values_list("ecosystem", "name", "version"))
        for kind in ("cyclonedx", "spdx"):
            started = time.perf_counter()
            document = sbom(image, kind)
            result[f"{kind}_seconds"] = time.perf_counter() - started
            result[f"{kind}_bytes"] = len(document.body)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(mode: str, image_id: str, data_dir: str) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--child", mode, image_id, data_dir], capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        sys.exit(f"{mode} failed: {completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the image it imported")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "IMAGE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    image_id = import_image(debian_tarball())
    try:
        expected = installed(image_id)
        with tempfile.TemporaryDirectory(prefix="bench-sbom-data-") as data_dir:
            subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                           env={**os.environ, "CONSOLE_DATA_DIR": data_dir, "CELERY_BROKER_URL": "memory://",
                                "DATABASE_URL": f"sqlite:///{data_dir}/console.sqlite3"})
            reference = measure("reference", image_id, data_dir)
            console = measure("sbom", image_id, data_dir)
    finally:
        if not args.keep:
            subprocess.run(["docker", "rmi", image_id], capture_output=True, check=False)
    if console["status"] != "succeeded":
        sys.exit(f"the analysis {console['status']}: {console['error']}")
    size_mb = reference["bytes"] / MB
    found = {(name, version) for ecosystem, name, version in console["packages"] if ecosystem == "deb"}
    others = [f"{name} {version} ({ecosystem})" for ecosystem, name, version in console["packages"]
              if ecosystem != "deb"]
    print(f"docker save stream: {size_mb:.0f} MB read in {reference['seconds']:.2f} s")
    print(f"analysis job (files + packages + rows): {console['seconds']:.2f} s "
          f"({size_mb / console['seconds']:.0f} MB/s), ratio analysis/reference "
          f"{console['seconds'] / reference['seconds']:.2f}")
    print(f"dpkg packages: {len(found)} found, {len(expected)} in dpkg-query -W, "
          f"{'the same' if found == expected else 'DIFFERENT: ' + str(sorted(found ^ expected)[:10])}; "
          f"and {len(others)} others: {', '.join(others[:10])}")
    print(f"SBOM: CycloneDX {console['cyclonedx_bytes'] / 1024:.0f} KiB in {console['cyclonedx_seconds']:.2f} s, "
          f"SPDX {console['spdx_bytes'] / 1024:.0f} KiB in {console['spdx_seconds']:.2f} s")
    verdict = "OK" if console["peak_mb"] < 150 else "OVER TARGET"
    print(f"peak memory of the process: {console['analysis_peak_mb']:.0f} MB after the analysis, "
          f"{console['peak_mb']:.0f} MB after both SBOMs (target < 150 MB: {verdict})")


if __name__ == "__main__":
    main()
