"""What the browser views and the API call: one function per action, the same for both.

- `repositories`: repositories, their sources (archives, git imports as jobs of their own);
- `checks`: what the console says about a source before it is built (lint, context warnings);
- `options`: a build's options checked before anything is queued (tags, memory, CPUs, target, build args);
- `builds`: trigger, cancel, rebuild, the debug box, handing queued builds to the workers;
- `nodes`: the build farm (registration, heartbeats, placing builds, lost nodes, which queue holds an image);
- `images`: image records, their layers, tags, removal and sync with the engine;
- `analysis`: the per-layer file analysis: asking for it (a job), storing and reading its result.

The worker's side of a build and an analysis is builds/runner/; who may use an image is builds/access.py.
"""
