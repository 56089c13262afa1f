"""Browser pages of the builds app: repositories and sources, builds, images (routed by builds/urls.py)."""
