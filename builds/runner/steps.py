"""A build's steps: the plan read from the Dockerfile (numbered as the classic builder numbers them), the step
rows recorded from the engine's `Step N/M` lines (for display only), and their layer ids from the image's history.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from django.utils import timezone

from builds import dockerfile as dockerfiles
from builds.constants import StepStatus
from builds.models import Build, BuildStep
from builds.services.builds import mask_secrets
from console.engine import Engine, EngineError
from console.engine.images import image_history

log = logging.getLogger(__name__)

STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
# Layer ids as the steps keep them (the classic builder's short form); builds/services/images.py matches on these.
SHORT_ID = 12


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """A step as the classic builder numbers it: its instruction word, where it is in the Dockerfile (0-based
    line, -1 for the LABEL steps the engine adds for the API's labels) and its stage (-1 before the first FROM)."""

    number: int
    keyword: str
    startline: int
    stage: int


def plan_steps(text: str, build_args: dict[str, str], target: str, labels: dict[str, str]) -> list[PlannedStep]:
    """The steps the classic builder runs, numbered as it numbers them: the global ARGs and every stage up to
    `target` (all stages without one), then one LABEL step per API label (builder.addNodesForLabelOption)."""
    steps: list[PlannedStep] = []
    stage, target_seen = -1, False
    for item in dockerfiles.parse(text, build_args).instructions:
        keyword = item["instruction"].upper()
        if keyword == "FROM":
            if target_seen:
                break
            stage += 1
            words = [word for word in item["value"].split() if not word.startswith("--")]
            if target and len(words) >= 3 and words[1].upper() == "AS" and words[2].lower() == target.lower():
                target_seen = True
        steps.append(PlannedStep(len(steps) + 1, keyword, item["startline"], stage))
    if target and not target_seen:
        raise ValueError(f"no stage {target!r}")
    steps.extend(PlannedStep(len(steps) + 1, "LABEL", -1, stage) for _ in labels)
    return steps


class StepRecorder:
    """Turns the classic builder's `Step N/M : ...` lines into BuildStep rows, as they happen: for display only.

    A RUN step prints what it likes, fake `Step` lines included, so a line is taken only as the very next step,
    of the total the first line gave (nothing has run before the first), and of the instruction the Dockerfile
    has at that number. No id is read from the text (see the module's docstring)."""

    def __init__(self, build: Build, plan: list[PlannedStep] | None, shown: dict[int, str] | None = None) -> None:
        self.build, self.plan, self.shown = build, plan, shown or {}
        self.current: BuildStep | None = None
        self.number = 0
        self.total = 0

    def feed(self, line: str) -> str:
        """Record what the line says of the steps; returns the line as the log shows it."""
        step = STEP_LINE.match(line)
        if step:
            number, total, instruction = int(step.group(1)), int(step.group(2)), step.group(3)
            if not self._is_next(number, total, instruction):
                return line
            self.finish_current(StepStatus.SUCCEEDED)
            self.number, self.total = number, total
            if self.build.step_count != total:
                self.build.step_count = total
                Build.objects.filter(pk=self.build.pk).update(step_count=total)
            self.current = BuildStep.objects.create(
                build=self.build, number=number, instruction=mask_secrets(self.shown.get(number, instruction), {}),
                started_at=timezone.now()
            )
            return f"Step {number}/{total} : {self.shown[number]}" if number in self.shown else line
        if self.current is not None and line.strip() == "---> Using cache":
            # Shown to the user; nothing is decided on it.
            self.current.cached = True
            self.current.save(update_fields=["cached"])
        return line

    def _is_next(self, number: int, total: int, instruction: str) -> bool:
        if number != self.number + 1 or (self.number and total != self.total):
            return False
        if self.plan is not None and number == 1 and total != len(self.plan):
            # The engine counts otherwise than the plan: keep the order check only, and decide nothing on the plan.
            log.warning("Build %s: the engine counts %s steps, the Dockerfile %s", self.build.pk, total, len(self.plan))
            self.plan = None
        if self.plan is not None:
            words = instruction.split(None, 1)
            return bool(words) and words[0].upper() == self.plan[number - 1].keyword
        return True

    def finish_current(self, status: str) -> None:
        if self.current is None:
            return
        self.current.status = status
        self.current.finished_at = timezone.now()
        self.current.save(update_fields=["status", "finished_at"])
        self.current = None


def record_layers(engine: Engine, build: Build, plan: list[PlannedStep] | None, image_id: str) -> None:
    """Give the final stage's steps their layer ids from the image's history, as the engine reports it.

    The classic builder commits one history entry per instruction after FROM (ARG, ENV and LABEL included, and the
    LABEL steps of the API's labels), so the final stage's steps are the newest entries of the history, and the
    entry before them is what its FROM started from. Steps of earlier stages are in no history of the image:
    they keep no layer id."""
    if plan is None:
        return
    final = [step for step in plan if step.stage == plan[-1].stage and step.stage >= 0]
    after_from = [step for step in final if step.keyword != "FROM"]
    try:
        history = image_history(engine, image_id)
    except EngineError as exc:
        log.warning("Build %s: no history for its image: %s", build.pk, exc)
        return
    if len(history) <= len(after_from) or history[0].get("Id") != image_id:
        log.warning("Build %s: the image's history does not fit its %s steps", build.pk, len(after_from))
        return
    # Newest first: the last step is entry 0, the FROM's image is the entry just older than the stage's first step.
    entries = {step.number: history[index] for index, step in enumerate(reversed(after_from))}
    if final and final[0].keyword == "FROM":
        entries[final[0].number] = history[len(after_from)]
    for number, entry in entries.items():
        layer = str(entry.get("Id") or "")
        if layer.startswith("sha256:"):
            BuildStep.objects.filter(build=build, number=number).update(
                layer_id=layer.removeprefix("sha256:")[:SHORT_ID])


def plan_for(build: Build, text: str | None, build_args: dict[str, str],
          labels: dict[str, str]) -> list[PlannedStep] | None:
    """The build's step plan, None when there is no Dockerfile text or the parser cannot read it."""
    if text is None:
        return None
    try:
        return plan_steps(text, build_args, build.target, labels)
    except Exception as exc:  # a Dockerfile the parser cannot read: the engine will say what is wrong with it
        log.info("Build %s: no step plan (%s)", build.pk, exc)
        return None
