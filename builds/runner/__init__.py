"""The worker's side of a build, run by builds/tasks.py:

- `build`: `BuildRunner` (claim where the build is placed -> stream the context -> record the image), the reaper;
- `progress`: the log buffer and the watcher thread (heartbeats, cancel, timeout);
- `steps`: the step plan from the Dockerfile, the step rows from the engine's stream, their layer ids;
- `dockerfile`: the Dockerfile the engine is sent (image ids, a hidden name when it cannot replace the user's);
- `last_good_layer`: the image a failed step started from;
- `analysis`: `AnalysisRunner`, the per-layer file analysis of an image as a job.
"""

from builds.runner.analysis import AnalysisRunner, run_analysis, run_queued_analysis_of
from builds.runner.build import BuildRunner, reap_lost_builds, run_build
from builds.runner.buildkit import remove_stale_build_folders
from builds.runner.last_good_layer import last_good_layer
from builds.runner.steps import plan_steps

__all__ = ["AnalysisRunner", "BuildRunner", "last_good_layer", "plan_steps", "reap_lost_builds", "run_analysis",
           "remove_stale_build_folders", "run_build",
           "run_queued_analysis_of"]
