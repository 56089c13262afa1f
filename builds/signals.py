"""The signals builds sends for other parts of the console to act on, without builds importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent (sender=Image, image=<Image>) once an analysis has recorded an image's packages (all at once, replacing
# the earlier ones): builds/services/packages.py `record_packages`. Vulnerability matching connects to it.
packages_recorded = Signal()
