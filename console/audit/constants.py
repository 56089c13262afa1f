"""What the audit log records: one named action per kind of event (README "Security")."""

from __future__ import annotations

from django.db import models


class Action(models.TextChoices):
    # Accounts (console/accounts/).
    SIGNUP = "signup", "Signed up"
    SIGNIN = "signin", "Signed in"
    SIGNIN_FAILED = "signin_failed", "Sign-in failed"
    SIGNOUT = "signout", "Signed out"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    TOKEN_CREATED = "token_created", "Access token created"
    TOKEN_REVOKED = "token_revoked", "Access token revoked"
    # Sources and builds (builds/).
    REPOSITORY_CREATED = "repository_created", "Repository created"
    REPOSITORY_UPDATED = "repository_updated", "Repository updated"
    REPOSITORY_DELETED = "repository_deleted", "Repository deleted"
    SOURCE_ADDED = "source_added", "Source added"
    SOURCE_DELETED = "source_deleted", "Source deleted"
    BUILD_STARTED = "build_started", "Build started"
    BUILD_CANCELLED = "build_cancelled", "Build cancelled"
    # Registries (registry/).
    REGISTRY_CREATED = "registry_created", "Registry created"
    REGISTRY_UPDATED = "registry_updated", "Registry updated"
    REGISTRY_DELETED = "registry_deleted", "Registry deleted"
    PUSH_STARTED = "push_started", "Push started"
    PULL_STARTED = "pull_started", "Pull started"
    REGISTRY_REPOSITORY_PUBLIC = "registry_repository_public", "Registry repository made public"
    REGISTRY_REPOSITORY_PRIVATE = "registry_repository_private", "Registry repository made private"
    REGISTRY_TAG_DELETED = "registry_tag_deleted", "Registry tag deleted"
    REGISTRY_REPOSITORY_DELETED = "registry_repository_deleted", "Registry repository deleted"
    REGISTRY_RETENTION_SET = "registry_retention_set", "Registry retention rule set"
    REGISTRY_RETENTION_REMOVED = "registry_retention_removed", "Registry retention rule removed"
    REGISTRY_RETENTION_STARTED = "registry_retention_started", "Registry retention run started"
    REGISTRY_GC_STARTED = "registry_gc_started", "Registry garbage collection started"
    # Fleet (fleet/).
    HOST_CREATED = "host_created", "Host created"
    HOST_UPDATED = "host_updated", "Host updated"
    HOST_DELETED = "host_deleted", "Host deleted"
    NODE_AVAILABILITY_SET = "node_availability_set", "Swarm node availability set"
    DEPLOY_STARTED = "deploy_started", "Deployment started"
    ROLLBACK = "rollback", "Rolled back"
    SCALE = "scale", "Scaled"
    SERVICE_REMOVED = "service_removed", "Swarm service removed"
    RELEASE_DECLINED = "release_declined", "Pending release declined"
    CONTAINER_STOPPED = "container_stopped", "Container stopped"
    CONTAINER_REMOVED = "container_removed", "Container removed"


# Why a sign-in failed, kept in the event's detail["reason"].
REASON_BAD_CREDENTIALS = "bad_credentials"
REASON_LOCKED = "locked"
