"""Image and layer rows made directly in the database, for the tests (and the benchmark) that need no engine."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from builds.models import Image, Layer

BASE_DIFF = "sha256:" + "b" * 64


def diff(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def make_image(owner, name: str, layers: list[str] | None = None, labels: dict | None = None,
               tags: list[str] | None = None, **fields) -> Image:
    """An image whose non-empty layers have the diff_ids `layers` (names are hashed), over the busybox-like base;
    each layer is followed by an ENV entry that makes no layer."""
    image = Image.objects.create(
        owner=owner, image_id="sha256:" + hashlib.sha256(f"{owner.pk}/{name}".encode()).hexdigest(),
        tags=[f"{name}:1"] if tags is None else tags, size=1000, labels=labels or {},
        created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), architecture="amd64", os="linux",
        config={"env": ["PATH=/bin"], "cmd": ["sh"], "entrypoint": None, "user": "", "workdir": "",
                "exposed_ports": [], "volumes": [], "healthcheck": None}, **fields,
    )
    rows = [Layer(image=image, index=0, diff_id=BASE_DIFF, created_by="/bin/sh -c #(nop) ADD file:base in /",
                  size=1_000_000)]
    for number, layer in enumerate(layers or [], start=1):
        rows.append(Layer(image=image, index=2 * number - 1, diff_id=diff(layer), created_by=f"RUN make {layer}",
                          size=100 * number))
        rows.append(Layer(image=image, index=2 * number, created_by=f"/bin/sh -c #(nop)  ENV STEP={number}",
                          empty_layer=True))
    Layer.objects.bulk_create(rows)
    return image
