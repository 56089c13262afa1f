from __future__ import annotations

from django.urls import reverse


def test_the_dashboard_shows_the_console_registrys_address(owner_client, settings):
    settings.REGISTRY_ADDRESS = "127.0.0.1:5077"
    content = owner_client.get(reverse("dashboard")).content.decode()
    assert "docker login 127.0.0.1:5077 -u alice" in content
    assert "127.0.0.1:5077/alice/" in content
