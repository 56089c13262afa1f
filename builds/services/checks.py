"""What the console says about a source before it is built: the Dockerfile's lint and the context's warnings.

Shown on the source page, the build form and the build page; one function so all three say the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builds.dockerfile.lint import Finding, LintError, lint_dockerfile
from builds.models import Source
from builds.sources.context import ContextError, plan_context, plan_dockerfile_text


@dataclass
class SourceChecks:
    findings: list[Finding] = field(default_factory=list)
    lint_error: str = ""
    warnings: list[dict[str, str]] = field(default_factory=list)
    context_error: str = ""


def lint_source(source: Source, dockerfile: str = "Dockerfile", path: str = ".") -> list[Finding]:
    """The Dockerfile's findings; ContextError when it is missing, LintError when it cannot be linted."""
    return lint_dockerfile(plan_dockerfile_text(source, dockerfile, path))


def check_source(source: Source, dockerfile: str = "Dockerfile", path: str = ".") -> SourceChecks:
    checks = SourceChecks()
    try:
        checks.warnings = plan_context(source, dockerfile, path).warnings()
    except ContextError as exc:
        checks.context_error = str(exc)
        return checks
    try:
        checks.findings = lint_source(source, dockerfile, path)
    except (LintError, ContextError) as exc:
        checks.lint_error = str(exc)
    return checks
