"""The fleet fixture itself: each engine in its own namespace answers at its own address, with its own driver."""

from __future__ import annotations

from console.engine import Engine
from tests.fixtures.fleet import fleet  # noqa: F401


def test_it_starts_three_engines_each_at_its_own_address(fleet):  # noqa: F811
    addresses = {host.address for host in fleet}
    assert len(addresses) == 3
    for host in fleet:
        with Engine(host.url, tls=host.tls, timeout=10) as engine:
            info = engine.info()
        assert info["storage_driver"] == host.storage_driver
