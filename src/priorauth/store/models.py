"""Tables: cases, their history, claims history lines, PAS subscriptions and their outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp read back timezone-aware in UTC on every database."""

    # SQLite keeps no offset and hands back naive values; PostgreSQL hands back the
    # session's zone. Readers get UTC either way, so nothing above the store converts.
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    auth_number: Mapped[str] = mapped_column(String(40), unique=True)
    submitter: Mapped[str] = mapped_column(String(200), index=True)  # "system|value"
    claim_identifier: Mapped[str] = mapped_column(String(300))  # "system|value"
    member_id: Mapped[str | None] = mapped_column(String(100), index=True)
    service_codes: Mapped[str] = mapped_column(String(400))  # space-separated
    policy_id: Mapped[str | None] = mapped_column(String(100))
    policy_version: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)
    expedited: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    recommendation: Mapped[str | None] = mapped_column(String(20))
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_bundle: Mapped[bytes] = mapped_column(LargeBinary)  # exactly as received
    keys: Mapped[dict[str, Any]] = mapped_column(JSON)
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decision_criteria: Mapped[list[str] | None] = mapped_column(JSON)
    # What the decision authorized: the product (NDC, where the policy names products),
    # the vials it holds, and the quantity in the policy's billing unit.
    product_ndc: Mapped[str | None] = mapped_column(String(20))
    product_vials: Mapped[int | None] = mapped_column(Integer)
    quantity: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))
    auth_start: Mapped[date | None] = mapped_column(Date)
    auth_end: Mapped[date | None] = mapped_column(Date)
    # The member's normalised identifier, "system|value" (pas.members.member_key):
    # what the lifetime rule, revisions and inquiries compare.
    member_key: Mapped[str | None] = mapped_column(String(400), index=True)
    # Set only while the case holds an approval: "therapy class|member key|slot", one
    # slot per approval the policy allows in a lifetime. Unique, so the database itself
    # refuses an approval beyond the limit (NULLs never clash).
    lifetime_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    # A provider's cancellation after the decision: a request to withdraw, not a release.
    withdrawal_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A Medical Director voided the approval (the only way to free the lifetime record).
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    voided_by: Mapped[str | None] = mapped_column(String(200))
    void_reason: Mapped[str | None] = mapped_column(Text)
    # Who and what the request is about, in words (intake.summary), read once at
    # submission so that the case lists never decode the stored bundles.
    member_name: Mapped[str | None] = mapped_column(String(200))
    member_birth_date: Mapped[str | None] = mapped_column(String(200))
    provider_name: Mapped[str | None] = mapped_column(String(200))
    prescriber_name: Mapped[str | None] = mapped_column(String(200))
    service_name: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of the request's content (pas.digest): a resubmission under the same
    # identifier is the same request only when this matches. NULL for older cases.
    request_digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("submitter", "claim_identifier", name="uq_cases_submission"),
        Index("ix_cases_inquiry", "member_id", "submitter"),
        Index("ix_cases_member_inquiry", "member_key", "submitter"),
    )


class CaseEventRow(Base):
    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ClaimLineRow(Base):
    __tablename__ = "claim_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    eob_id: Mapped[str] = mapped_column(String(200))
    sequence: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[str] = mapped_column(String(100), index=True)
    codes: Mapped[list[list[str]]] = mapped_column(JSON)  # [[system, code], ...]
    service_date: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("eob_id", "sequence", name="uq_claim_lines_line"),)


# Claims are looked up by the member id trimmed and case-folded (store.claims.history_for).
Index("ix_claim_lines_member_norm", func.lower(func.trim(ClaimLineRow.member_id)))


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    org_identifier: Mapped[str] = mapped_column(String(200), index=True)
    endpoint: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(String(20))
    headers: Mapped[list[str]] = mapped_column(JSON)
    topic: Mapped[str] = mapped_column(Text)
    events_sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # channel.payload: the Content-Type notifications are sent with (NULL: fhir+json).
    payload_type: Mapped[str | None] = mapped_column(String(40))


class OutboxRow(Base):
    """A notification to deliver, written in the transaction of the event it announces.

    The delivery worker sends it, retries with backoff, and marks it delivered or failed.
    `body` is the notification as it will be sent (it may hold PHI: never shown in a
    listing); it is cleared once the notification is delivered or cancelled.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36), index=True)
    org_identifier: Mapped[str] = mapped_column(String(200), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # handshake | event-notification
    event_number: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20))  # pending | delivered | failed | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))  # never PHI
    last_http_status: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class UserRow(Base):
    """A reviewer who signs in to the web app."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(40))  # "intake" | "medical_director"
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # A quickstart account with a published password: it may sign in in development mode only.
    demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class UiSessionRow(Base):
    """A signed-in web session; the cookie names it, so signing out or disabling ends it."""

    __tablename__ = "ui_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's id
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())


class LoginThrottleRow(Base):
    """Failed sign-ins per account ("user:NAME") and per address ("addr:IP"), shared by workers."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class RateBucketRow(Base):
    """A token bucket of the database rate-limit backend: one budget for every worker."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)  # seconds since the epoch, by the limiter's clock


class CoverageAssertionRow(Base):
    """A CRD coverage-information answer, kept so its coverage-assertion-id can be looked up."""

    __tablename__ = "coverage_assertions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    member_id: Mapped[str | None] = mapped_column(String(100), index=True)
    policy_id: Mapped[str | None] = mapped_column(String(100))
    policy_version: Mapped[str | None] = mapped_column(String(40))
    order: Mapped[dict[str, Any]] = mapped_column(JSON)  # the ordered resource and its context
    coverage: Mapped[dict[str, Any]] = mapped_column(JSON)  # the coverage-information content
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The NPI of the organization whose call created it; NULL: a payer-side caller's.
    organization: Mapped[str | None] = mapped_column(String(200))


class AuditRow(Base):
    """One audit record. Append-only; each carries the HMAC of the one before it.

    Sizes match store/audit.LIMITS: longer values are cut with a marker, never refused.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))  # user name, client id, or "anonymous"
    actor_kind: Mapped[str] = mapped_column(String(20))  # user | client | system | anonymous
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(20))  # success | failure
    entity: Mapped[str | None] = mapped_column(String(1000))  # "case/<id>", "GET /path"
    source: Mapped[str | None] = mapped_column(String(200))  # the caller's address
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)  # never PHI
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The chain's head, one row, locked while a record is appended so the chain never forks.

    It only moves forward: database triggers refuse deleting it or setting it back.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class ApiClientRow(Base):
    """A system registered for SMART Backend Services (client credentials + signed JWT)."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # client_id
    name: Mapped[str] = mapped_column(String(200))
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    # An EHR's JWKS URL (CDS Hooks `jku`): the one URL its hook JWTs may name; fetched per call.
    jku: Mapped[str | None] = mapped_column(String(500), nullable=True)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    organization: Mapped[str | None] = mapped_column(String(200))  # NPI of its organization
    # "provider": acts for its organization only; "payer-system": the payer's own, every one.
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "(role = 'provider' AND organization IS NOT NULL) "
            "OR (role = 'payer-system' AND organization IS NULL)",
            name="ck_api_clients_role",
        ),
    )


class UsedJtiRow(Base):
    """Assertion ids already used, kept until the assertion expires: a replay is refused."""

    __tablename__ = "used_jtis"

    jti: Mapped[str] = mapped_column(String(300), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
