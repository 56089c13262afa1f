"""Browser pages of this app (mounted at the site root; each path names its own prefix)."""

from __future__ import annotations

urlpatterns: list = []
