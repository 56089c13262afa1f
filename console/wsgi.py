from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
application = get_wsgi_application()

# Everything loaded so far lives as long as the process: keep it out of the garbage collector's full passes,
# which otherwise walk it on every big request (bench/layers.py: p95 of the image list 174 ms -> 104 ms).
# Before gunicorn forks its workers, this also keeps those pages shared between them.
gc.freeze()
