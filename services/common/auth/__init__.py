"""Who may read what, on every service: tokens file and OIDC bearer tokens, browser sessions,
and the audit trail of every access decision. See docs/operations.md, "Access"."""

from services.common.auth.access import Access, Browser
from services.common.auth.guard import (
    AuditSlot,
    Forbidden,
    Guard,
    Unauthorized,
    Unavailable,
    audit_slot,
    case_data,
    case_data_or_session,
)
from services.common.auth.principal import ALL, Principal, parse_scope
from services.common.auth.sessions import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, SESSION_MAX_AGE_S
from services.common.auth.tokens import TokenBook, new_token

__all__ = [
    "ALL",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_S",
    "Access",
    "AuditSlot",
    "Browser",
    "Forbidden",
    "Guard",
    "Principal",
    "TokenBook",
    "Unauthorized",
    "Unavailable",
    "audit_slot",
    "case_data",
    "case_data_or_session",
    "new_token",
    "parse_scope",
]
