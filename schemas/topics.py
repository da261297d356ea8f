"""Topic names and their partition counts."""

from __future__ import annotations

APPLICATIONS = "taskforce.applications"
NOTIFICATIONS = "taskforce.notifications"
CASE_REVIEWS = "taskforce.case-reviews"
MILESTONES = "taskforce.milestones"
COMMANDS = "taskforce.commands"
REPORTING = "taskforce.reporting"
SUMMARIES = "taskforce.summaries"
DLQ = "taskforce.dlq"

INPUT_TOPICS: tuple[str, ...] = (APPLICATIONS, NOTIFICATIONS, CASE_REVIEWS, MILESTONES)

DEFAULT_PARTITIONS: dict[str, int] = {
    APPLICATIONS: 6,
    NOTIFICATIONS: 6,
    CASE_REVIEWS: 6,
    MILESTONES: 6,
    COMMANDS: 3,
    REPORTING: 6,
    SUMMARIES: 3,
    DLQ: 3,
}

#: Who read what: one record per access decision on case data (services.common.auth.audit).
#: Created by each service at start, and by the deployment's topic job and compose (where
#: services may not create topics); not in DEFAULT_PARTITIONS, the input and pipeline topics.
AUDIT = "taskforce.audit"
AUDIT_PARTITIONS: dict[str, int] = {AUDIT: 3}
