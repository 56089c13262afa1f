"""Retention rules of the console's registry: which tags of a repository to keep, a dry run that says what a run
would delete and free, and the run itself (a job, daily from the beat or asked for by a person).

A tag is kept when any of these holds, in this order (the first is its reason):
- it matches a `protect` pattern (never deleted, whatever else the rule says);
- it matches a `keep_matching` pattern;
- its image's date is unknown (a manifest the console cannot read is never deleted on a guess);
- its image is younger than `keep_younger_than` days;
- it is among the newest `keep_last` tags (by the image's `created`, then by name);
- it points at the same image as a kept tag: the registry deletes images by digest, with every tag on them.
The others are deleted. A rule naming none of keep_last, keep_matching and keep_younger_than keeps everything.

Patterns are globs (`*` any run of characters, `?` one) or, written `re:<expression>`, regular expressions that
must match the whole tag; both are compiled for RE2 (linear in the tag, whatever the pattern), as user patterns are
everywhere in the console (builds/sources/dockerignore.py).

`frees_bytes` counts the blobs (configs and layers, by digest) of the deleted tags' images that no remaining tag
of the whole registry references, every user's repositories included: what a garbage collection then frees.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

import re2
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from console import jobs
from console.audit.constants import Action
from console.audit.services import record
from console.constants import JobStatus
from registry import storage
from registry.models import RegistryAccount, RetentionRule, RetentionRun
from registry.services import browse
from registry.services.accounts import RegistryError
from registry.tokens import namespace_of

log = logging.getLogger(__name__)

RUN_RETENTION_TASK = "registry.run_retention"
REGEX_PREFIX = "re:"
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 200
MAX_KEEP_LAST = 100_000
MAX_DAYS = 36_500
# RE2's memory for one pattern: a tag is at most 128 characters, patterns stay small.
_RE2_MAX_MEM = 1 << 20
ONLY_CONSOLE = "Retention rules are for repositories of the console's registry."
WORKER_LOST = "The worker running this retention run stopped answering."


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    # A refused pattern is reported to the user; RE2 would also print it to the web process's stderr.
    options.log_errors = False
    return options


_OPTIONS = _options()


@dataclass(frozen=True)
class Pattern:
    text: str
    regexp: object = field(compare=False, repr=False)

    def matches(self, tag: str) -> bool:
        return self.regexp.fullmatch(tag) is not None


def _glob_to_regexp(glob: str) -> str:
    out = []
    for char in glob:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(_escape(char))
    return "".join(out)


def _escape(char: str) -> str:
    # RE2 reads any escaped ASCII punctuation as itself; letters, digits and `_` stand for themselves.
    if char.isalnum() or char == "_" or not char.isascii():
        return char
    return f"\\{char}"


def compile_pattern(text: str) -> Pattern:
    """A glob or `re:` expression, compiled for RE2; ValueError says what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a pattern is a non-empty string")
    text = text.strip()
    if len(text) > MAX_PATTERN_LENGTH:
        raise ValueError(f"{text[:40]!r}… is longer than {MAX_PATTERN_LENGTH} characters")
    expression = text[len(REGEX_PREFIX):] if text.startswith(REGEX_PREFIX) else _glob_to_regexp(text)
    if not expression:
        raise ValueError(f"{text!r} has no expression after {REGEX_PREFIX}")
    try:
        regexp = re2.compile(expression, _OPTIONS)
    except re2.error:
        raise ValueError(f"{text!r} is not a regular expression RE2 accepts") from None
    return Pattern(text, regexp)


def compile_patterns(values, name: str) -> list[Pattern]:
    """The patterns of one field of a rule; ValidationError names the field."""
    if values is None:
        return []
    if not isinstance(values, list | tuple):
        raise ValidationError({name: "A list of patterns, such as [\"latest\", \"v*\", \"re:^prod-[0-9]+$\"]."})
    if len(values) > MAX_PATTERNS:
        raise ValidationError({name: f"At most {MAX_PATTERNS} patterns."})
    patterns = []
    for value in values:
        try:
            patterns.append(compile_pattern(value))
        except ValueError as exc:
            raise ValidationError({name: f"Not a pattern: {exc}."}) from None
    return patterns


@dataclass(frozen=True)
class Rule:
    keep_last: int | None = None
    keep_matching: tuple[Pattern, ...] = ()
    keep_younger_than: int | None = None
    protect: tuple[Pattern, ...] = ()

    @property
    def active(self) -> bool:
        return self.keep_last is not None or bool(self.keep_matching) or self.keep_younger_than is not None

    @classmethod
    def of(cls, rule: RetentionRule | None) -> Rule:
        if rule is None:
            return cls()
        return cls(rule.keep_last, tuple(compile_patterns(rule.keep_matching, "keep_matching")),
                   rule.keep_younger_than, tuple(compile_patterns(rule.protect, "protect")))


@dataclass(frozen=True)
class TagInfo:
    name: str
    digest: str
    created: datetime.datetime | None


@dataclass
class Selection:
    delete: list[str]
    keep: list[str]
    reasons: dict[str, str]


def select(tags: list[TagInfo], rule: Rule, now: datetime.datetime) -> Selection:
    """Which tags `rule` deletes and keeps, and why each is kept (the module's docstring says how)."""
    reasons: dict[str, str] = {}
    if not rule.active:
        off = "the rule names no keep_last, keep_matching or keep_younger_than: retention is off"
        return Selection([], sorted(tag.name for tag in tags), {tag.name: off for tag in tags})
    newest = sorted((tag for tag in tags if tag.created is not None), key=lambda tag: (tag.created, tag.name),
                    reverse=True)
    last = {tag.name for tag in newest[:rule.keep_last]} if rule.keep_last is not None else set()
    young_since = now - datetime.timedelta(days=rule.keep_younger_than) if rule.keep_younger_than is not None else None
    for tag in tags:
        protected = next((p.text for p in rule.protect if p.matches(tag.name)), None)
        matching = next((p.text for p in rule.keep_matching if p.matches(tag.name)), None)
        if protected:
            reasons[tag.name] = f"protected ({protected})"
        elif matching:
            reasons[tag.name] = f"matches {matching}"
        elif tag.created is None:
            reasons[tag.name] = "its image's date is unknown"
        elif young_since is not None and tag.created > young_since:
            reasons[tag.name] = f"younger than {rule.keep_younger_than} days"
        elif tag.name in last:
            reasons[tag.name] = f"among the newest {rule.keep_last}"
    kept_images = {tag.digest: tag.name for tag in tags if tag.name in reasons}
    for tag in tags:
        if tag.name not in reasons and tag.digest in kept_images:
            reasons[tag.name] = f"the same image as kept tag {kept_images[tag.digest]}"
    delete = sorted(tag.name for tag in tags if tag.name not in reasons)
    return Selection(delete, sorted(reasons), {name: reasons[name] for name in sorted(reasons)})


def frees_bytes(index: storage.StorageIndex, repository: str, delete: list[str]) -> int:
    """The bytes of the blobs of `delete`'s images that no other tag in the registry references."""
    gone = set(delete)
    freed = index.blobs_of(repository, gone)
    for name, tags in index.tags.items():
        remaining = [tag for tag in tags if name != repository or tag not in gone]
        freed -= index.blobs_of(name, remaining)
        if not freed:
            break
    return index.bytes_of(freed)


# -- rules and previews, for the page and the API ---------------------------------------------------------------


@dataclass
class Preview:
    repository: str
    delete: list[str]
    keep: list[str]
    reasons: dict[str, str]
    frees_bytes: int
    # {tag: digest} of the tags to delete, as the preview saw them: a run deletes only what still points there.
    digests: dict[str, str] = field(default_factory=dict)


def _check_console(account: RegistryAccount, repository: str) -> None:
    if not account.is_console:
        raise ValidationError({"registry": ONLY_CONSOLE})
    browse._check_repository(repository)
    if not repository.startswith(f"{namespace_of(account.owner)}/"):
        raise browse.DeleteRefused(f"Only repositories under {namespace_of(account.owner)}/ are yours.")


def get_rule(account: RegistryAccount, repository: str) -> RetentionRule | None:
    _check_console(account, repository)
    return RetentionRule.objects.for_user(account.owner).filter(repository=repository).first()


def _number(data: dict, name: str, maximum: int) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError({name: "A whole number, or null."})
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: "A whole number, or null."}) from None
    if not 0 <= number <= maximum:
        raise ValidationError({name: f"Between 0 and {maximum}."})
    return number


def clean_rule(data: dict) -> dict:
    """The rule's fields from what a user sent; ValidationError names the field at fault."""
    cleaned = {
        "keep_last": _number(data, "keep_last", MAX_KEEP_LAST),
        "keep_younger_than": _number(data, "keep_younger_than", MAX_DAYS),
    }
    for name in ("keep_matching", "protect"):
        cleaned[name] = [pattern.text for pattern in compile_patterns(data.get(name) or [], name)]
    return cleaned


def set_rule(user, account: RegistryAccount, repository: str, data: dict, request=None) -> RetentionRule:
    """Create or replace the repository's rule."""
    _check_console(account, repository)
    cleaned = clean_rule(data)
    with transaction.atomic():
        rule, _created = RetentionRule.objects.update_or_create(
            repository=repository, owner=account.owner, defaults=cleaned)
        record(user, Action.REGISTRY_RETENTION_SET, target=account.endpoint.reference(repository),
               detail={"repository": repository, **cleaned}, request=request)
    return rule


def remove_rule(user, account: RegistryAccount, repository: str, request=None) -> bool:
    _check_console(account, repository)
    removed = RetentionRule.objects.for_user(account.owner).filter(repository=repository).delete()[0] > 0
    if removed:
        record(user, Action.REGISTRY_RETENTION_REMOVED, target=account.endpoint.reference(repository),
               detail={"repository": repository}, request=request)
    return removed


def plan(repository: str, rule: Rule, index: storage.StorageIndex | None = None, now=None) -> Preview:
    """What `rule` would delete and keep in `repository` now, read from the registry's storage."""
    index = index if index is not None else storage.read_index()
    tags = index.tags.get(repository, {})
    infos = []
    for name, digest in tags.items():
        image = index.images.get(digest)
        created = image.created if image is not None and image.readable else None
        infos.append(TagInfo(name, digest, created))
    chosen = select(infos, rule, now or timezone.now())
    freed = frees_bytes(index, repository, chosen.delete)
    return Preview(repository, chosen.delete, chosen.keep, chosen.reasons, freed,
                   {name: tags[name] for name in chosen.delete})


def preview(account: RegistryAccount, repository: str, data: dict | None = None) -> Preview:
    """The dry run of the repository's rule (or of the rule `data` would set, for a form not saved yet)."""
    _check_console(account, repository)
    if data is not None:
        cleaned = clean_rule(data)
        rule = Rule(cleaned["keep_last"], tuple(compile_patterns(cleaned["keep_matching"], "keep_matching")),
                    cleaned["keep_younger_than"], tuple(compile_patterns(cleaned["protect"], "protect")))
    else:
        rule = Rule.of(get_rule(account, repository))
    return plan(repository, rule)


# -- runs -------------------------------------------------------------------------------------------------------


def trigger_run(user, account: RegistryAccount, repository: str, *, scheduled: bool = False,
                request=None) -> RetentionRun:
    """Queue an application of the repository's rule (one at a time per repository: a queued or running one is
    answered instead of a second)."""
    _check_console(account, repository)
    if get_rule(account, repository) is None:
        raise ValidationError({"retention": f"{repository} has no retention rule."})
    with transaction.atomic():
        active = RetentionRun.objects.filter(repository=repository, status__in=[JobStatus.QUEUED,
                                                                                 JobStatus.RUNNING]).first()
        if active is not None:
            return active
        run = RetentionRun.objects.create(owner=account.owner, repository=repository, scheduled=scheduled)
        if not scheduled:
            record(user, Action.REGISTRY_RETENTION_STARTED, target=account.endpoint.reference(repository),
                   detail={"repository": repository, "run": run.pk}, request=request)
        jobs.enqueue_on_commit(run, RUN_RETENTION_TASK, failed_error="The console could not queue the run.")
    return run


def schedule_all() -> list[int]:
    """The daily application of every active rule (console/celery.py's beat): a run per repository."""
    from registry.services.accounts import ensure_console_account

    started = []
    for rule in RetentionRule.objects.select_related("owner"):
        try:
            account = ensure_console_account(rule.owner)
            if Rule.of(rule).active:
                started.append(trigger_run(None, account, rule.repository, scheduled=True).pk)
        except (ValidationError, RegistryError):
            log.exception("Retention of %s could not be scheduled", rule.repository)
    return started


class RetentionRunner(jobs.JobRunner):
    """Deletes exactly the preview's tags: each image whose tags all go, by digest, once the registry confirms
    that those tags (and no others) still point at it."""

    model = RetentionRun
    related = ("owner",)

    def work(self, run: RetentionRun) -> tuple[str, str]:
        from registry.services.accounts import ensure_console_account

        account = ensure_console_account(run.owner)
        rule = RetentionRule.objects.filter(owner=run.owner, repository=run.repository).first()
        if rule is None:
            self.log(run, ["The repository has no retention rule any more: nothing to do."])
            return JobStatus.SUCCEEDED, ""
        chosen = plan(run.repository, Rule.of(rule))
        RetentionRun.objects.filter(pk=run.pk).update(kept=chosen.keep, frees_bytes=chosen.frees_bytes)
        self.log(run, [f"keep {tag}: {chosen.reasons[tag]}" for tag in chosen.keep])
        if not chosen.delete:
            self.log(run, ["Nothing to delete."])
            return JobStatus.SUCCEEDED, ""
        try:
            browse.check_writable(account)
        except RegistryError as exc:
            return JobStatus.FAILED, str(exc)
        client = browse._delete_client(account, run.repository)
        now = browse.tags_by_digest(client, run.repository)
        current = {tag: digest for digest, names in now.items() for tag in names}
        by_image: dict[str, set[str]] = {}
        for tag in chosen.delete:
            if current.get(tag) != chosen.digests[tag]:
                self.log(run, [f"skip {tag}: it points at another image since the preview"])
                continue
            by_image.setdefault(chosen.digests[tag], set()).add(tag)
        deleted: list[str] = []
        problems = []
        for digest, tags in sorted(by_image.items()):
            try:
                browse.delete_image(client, run.repository, digest, tags, current=now)
            except RegistryError as exc:
                problems.append(str(exc))
                self.log(run, [f"not deleted {', '.join(sorted(tags))}: {exc}"])
                continue
            deleted.extend(sorted(tags))
            self.log(run, [f"deleted {', '.join(sorted(tags))} ({digest})"])
            RetentionRun.objects.filter(pk=run.pk).update(deleted=sorted(deleted))
        if deleted:
            record(None, Action.REGISTRY_TAG_DELETED, target=account.endpoint.reference(run.repository),
                   detail={"repository": run.repository, "retention_run": run.pk, "tags": sorted(deleted)})
        if problems:
            return JobStatus.FAILED, f"{len(problems)} image(s) could not be deleted: {problems[0]}"
        return JobStatus.SUCCEEDED, ""


def run_retention(run_id: int) -> RetentionRun | None:
    return RetentionRunner().run(run_id)


def reap_lost_runs(older_than: datetime.timedelta | None = None) -> list[int]:
    from django.conf import settings

    if older_than is None:
        older_than = datetime.timedelta(seconds=settings.BUILD_HEARTBEAT_TIMEOUT)
    return [run.pk for run in jobs.reap_lost(RetentionRun, older_than, WORKER_LOST, log_line=f"error: {WORKER_LOST}")]
