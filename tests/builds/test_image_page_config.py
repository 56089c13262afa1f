"""The image page shows the config as Docker shows it (exec form as JSON, readable healthcheck) and each layer's
instruction as written in the Dockerfile, the builder's text kept in its title; the layer tree likewise."""

from __future__ import annotations

import pytest

from builds.models import Image, Layer
from tests.builds.test_images_fixtures import make_image

CONFIG = {
    "env": ["PATH=/usr/bin", "GREETING=hello world"], "cmd": ["sh", "-c", "echo 'hi' && sleep 1"],
    "entrypoint": ["/entrypoint.sh"], "user": "app", "workdir": "/app", "exposed_ports": ["8000/tcp"],
    "volumes": ["/data"],
    "healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost:8000"], "Interval": 5_000_000_000, "Retries": 2},
}


@pytest.fixture
def image(owner):
    image = make_image(owner, "shown", ["app"])
    Image.objects.filter(pk=image.pk).update(config=CONFIG)
    Layer.objects.filter(image=image, index=1).update(created_by="RUN /bin/sh -c echo hi > /app/x # buildkit")
    return image


@pytest.mark.django_db
def test_the_config_is_json_exec_form_and_nothing_is_a_python_repr(owner_client, image):
    body = owner_client.get(f"/images/{image.pk}/").content.decode()

    cmd = "[&quot;sh&quot;, &quot;-c&quot;, &quot;echo &#x27;hi&#x27; &amp;&amp; sleep 1&quot;]"
    assert f'<code id="config-cmd">{cmd}</code>' in body
    assert '<code id="config-entrypoint">[&quot;/entrypoint.sh&quot;]</code>' in body
    assert '<code id="config-healthcheck">--interval=5s --retries=2 CMD wget -q localhost:8000</code>' in body
    assert "<code>GREETING=hello world</code>" in body and "<code>8000/tcp</code>" in body
    assert "<code>/data</code>" in body
    # No Python list or dict reprs: `['sh'`, `{'Test'`, `None`.
    assert "[&#x27;" not in body and "{&#x27;" not in body and "None" not in body


@pytest.mark.django_db
def test_a_missing_cmd_is_a_dash(owner_client, owner):
    image = make_image(owner, "bare", [])
    Image.objects.filter(pk=image.pk).update(config={**CONFIG, "cmd": None, "entrypoint": None, "healthcheck": None})
    body = owner_client.get(f"/images/{image.pk}/").content.decode()
    assert 'id="config-cmd"' not in body and 'id="config-entrypoint"' not in body and "None" not in body


@pytest.mark.django_db
def test_the_layers_show_the_instruction_as_written_and_keep_the_builders_text(owner_client, image):
    body = owner_client.get(f"/images/{image.pk}/").content.decode()
    layers = body[body.index('id="image-layers"'):]

    assert 'title="/bin/sh -c #(nop)  ENV STEP=1">ENV STEP=1</code>' in layers
    assert 'title="RUN /bin/sh -c echo hi &gt; /app/x # buildkit">RUN echo hi &gt; /app/x</code>' in layers
    assert 'title="/bin/sh -c #(nop) ADD file:base in /">ADD file:base /</code>' in layers
    assert ">/bin/sh -c" not in layers


@pytest.mark.django_db
def test_the_layer_tree_shows_instructions_as_written(owner_client, image):
    body = owner_client.get("/images/tree/").content.decode()

    assert ">RUN echo hi &gt; /app/x</code>" in body and ">ADD file:base /</code>" in body
    assert ">/bin/sh -c" not in body


@pytest.mark.django_db
def test_old_records_keep_working(owner_client, owner):
    image = make_image(owner, "legacy", [])
    Image.objects.filter(pk=image.pk).update(config={})
    assert owner_client.get(f"/images/{image.pk}/").status_code == 200
