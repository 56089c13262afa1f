"""Per-layer progress of a push or pull, from the engine's JSON lines (no engine: the lines are given)."""

from __future__ import annotations

from registry.services.transfers import Progress


def test_a_layer_sent_in_one_piece_is_done_with_a_full_bar():
    progress = Progress(job=None)
    progress.feed({"status": "Preparing", "id": "0123456789ab"})
    progress.feed({"status": "Pushed", "id": "0123456789ab"})
    progress.feed({"status": "Pushing", "id": "ba9876543210", "progressDetail": {"current": 10, "total": 100}})
    small, big = progress.layers["0123456789ab"], progress.layers["ba9876543210"]
    # No total ever came for the small layer: `done` is what fills its bar.
    assert small == {"id": "0123456789ab", "status": "Pushed", "current": 0, "total": 0, "done": True}
    assert big["done"] is False and (big["current"], big["total"]) == (10, 100)
    progress.feed({"status": "Pushed", "id": "ba9876543210"})
    assert big["done"] is True and big["current"] == 100
