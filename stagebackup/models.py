"""Tables. ``jobs.status`` and ``job_stages`` are the single source of truth for what pages show."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .dbtypes import BigIntPK, FSPath, JSONText, MessageText, utcnow
from .extensions import db

# Job statuses. "Active" ones are shown as running cards and keep polling.
QUEUED, RUNNING = "queued", "running"
SUCCEEDED, WARNING, FAILED = "succeeded", "warning", "failed"
INTERRUPTED, CANCELLED, WAITING_MEDIA = "interrupted", "cancelled", "waiting_media"
ACTIVE_STATUSES = (QUEUED, RUNNING, WAITING_MEDIA)
FINAL_STATUSES = (SUCCEEDED, WARNING, FAILED, INTERRUPTED, CANCELLED)
LOG_TAGS = ("INFO", "ADD", "SYNC", "PACK", "SKIP", "ERROR")


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Lists of path strings (surrogate-escaped where names are not UTF-8).
    sources: Mapped[list] = mapped_column(JSONText, default=list)
    includes: Mapped[list] = mapped_column(JSONText, default=list)
    excludes: Mapped[list] = mapped_column(JSONText, default=list)
    mode: Mapped[str] = mapped_column(String(16), default="archive")  # archive | sync
    archive_format: Mapped[str] = mapped_column(String(8), default="tgz")  # tgz | 7z
    compression_level: Mapped[int] = mapped_column(Integer, default=6)
    dest_kind: Mapped[str] = mapped_column(String(16), default="directory")  # directory | tape
    dest_path: Mapped[str | None] = mapped_column(FSPath, nullable=True)
    # Encryption: the password lives in ``secrets``, encrypted with the master key; never shown back.
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    secret_id: Mapped[int | None] = mapped_column(ForeignKey("secrets.id"), nullable=True)
    sync_strategy: Mapped[str] = mapped_column(String(16), default="overwrite")  # overwrite | incremental
    allow_mass_delete: Mapped[bool] = mapped_column(Boolean, default=False)
    group_max_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None = server default
    dest_drive: Mapped[str | None] = mapped_column(String(100), nullable=True)
    dest_pool: Mapped[str | None] = mapped_column(String(64), nullable=True)
    verify_after_write: Mapped[bool] = mapped_column(Boolean, default=True)
    # Tape: after each session's index, append a copy of the catalog (tape/catalog_copy.py) to the same tape.
    catalog_copy_to_tape: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # A job of this project running longer than this ends failed (None: no limit).
    job_timeout_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Jobs read the sources at most this fast, bytes per second, averaged over the job (None: no limit).
    # BIGINT: a limit for a fast disk array is past INTEGER's 2 GiB/s.
    read_limit_bytes_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Without an enabled schedule, the health panel holds the last good backup to this age (None: the server's
    # HEALTH_MAX_AGE_H); a scheduled project is held to its schedule's interval.
    max_age_h: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A 5-field cron expression (None: no schedule), read in ``schedule_timezone`` (an IANA name).
    schedule_cron: Mapped[str | None] = mapped_column(String(100), nullable=True)
    schedule_timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    schedule_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Retention (stagebackup/retention.py, the restic/borg "forget" model); all None: keep every backup.
    keep_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_daily: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_weekly: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_monthly: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_yearly: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_within_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The scheduler polls max(updated_at) to notice schedule edits.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SchedulerLease(db.Model):
    """Who may enqueue scheduled runs: one row per lease name, taken and renewed by compare-and-set."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column()


class Secret(db.Model):
    """A password encrypted with the server's master key (Fernet token). Rows are never deleted while an
    archive refers to them: old archives keep the password they were written with."""

    __tablename__ = "secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(16))  # fingerprint of the key that encrypted it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(db.Model):
    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    drive: Mapped[str | None] = mapped_column(String(100), nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Job(db.Model):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    # A snapshot, so history still names the project after it is removed.
    project_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="backup")  # backup | restore | verify
    # Which stage flow the badges follow (see stages.py), fixed when the job is queued.
    flow: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | schedule | cli
    remark: Mapped[str | None] = mapped_column(Text, nullable=True)
    drive: Mapped[str | None] = mapped_column(String(100), nullable=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)  # whole percent
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    files_done: Mapped[int] = mapped_column(BigInteger, default=0)
    files_total: Mapped[int] = mapped_column(BigInteger, default=0)  # regular files: what "N 个文件" counts
    folders_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # shown beside them
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    current_file: Mapped[str | None] = mapped_column(MessageText, nullable=True)  # display form
    # Bytes per second over the last few seconds (smoothed), so the card shows the current rate.
    rate_bytes_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    # The worker process is alive (written by its heartbeat thread, whatever the job does).
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Bytes or files last advanced: a live worker whose job has not moved for long is stalled, not dead.
    progress_at: Mapped[datetime | None] = mapped_column(nullable=True)
    timeout_s: Mapped[int | None] = mapped_column(Integer, nullable=True)  # from the project when queued
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error_class: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(MessageText, nullable=True)  # English
    # The error's N_ template and named values: the card shows the error in the page's language (errors.py).
    error_template: Mapped[str | None] = mapped_column(MessageText, nullable=True)
    error_values: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    # Paths this attempt may leave half-written; recovery deletes them.
    partial_outputs: Mapped[list] = mapped_column(JSONText, default=list)
    # Restore/verify: the backup job they read from, and their options (target, paths, conflict...).
    source_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    params: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    # Sync: the mirror was found unchanged, so its catalog is the one that job recorded (not written again).
    catalog_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    # Tape plan recorded when the scan ends: bytes to write, tapes needed, hours at the drive's rate.
    plan: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    # Restore/verify waiting for a tape: the label it asks for (a waiting backup takes any suitable tape).
    waiting_label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        # Partial unique indexes are the locks: one queued backup per project, one running job per drive
        # (on MySQL/MariaDB, see MYSQL_LOCKS).
        Index(
            "uq_jobs_one_queued_per_project", "project_id", unique=True,
            sqlite_where=text("status = 'queued' AND kind = 'backup'"),
            postgresql_where=text("status = 'queued' AND kind = 'backup'"),
        ),
        Index(
            "uq_jobs_one_running_per_drive", "drive", unique=True,
            sqlite_where=text("status = 'running' AND drive IS NOT NULL"),
            postgresql_where=text("status = 'running' AND drive IS NOT NULL"),
        ),
        Index("ix_jobs_status_run_after", "status", "run_after", "id"),
        Index("ix_jobs_project_created", "project_id", "created_at"),
    )


# MySQL and MariaDB have no partial indexes: there each lock above is a unique index of the same name on a
# stored generated column that holds the key while the lock's condition holds and NULL otherwise (NULLs never
# collide). Migration "mariadb" creates them; index name -> generated column.
MYSQL_LOCKS = {
    "uq_jobs_one_queued_per_project": "lock_queued_backup_project",
    "uq_jobs_one_running_per_drive": "lock_running_drive",
}


class JobStage(db.Model):
    """One row per stage a job has entered; its state is derived from the timestamps."""

    __tablename__ = "job_stages"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    message: Mapped[str | None] = mapped_column(MessageText, nullable=True)


class JobLog(db.Model):
    """Append-only terminal log; ``id`` is the sequence pages fetch ``after``."""

    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    tag: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(MessageText)

    __table_args__ = (
        Index("ix_job_logs_job_id_id", "job_id", "id"),
        # The log page's tag filter and its "first error" link: a seek, not a scan of a long log.
        Index("ix_job_logs_job_id_tag_id", "job_id", "tag", "id"),
    )


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The project's name when the event concerns one (a copy: it outlives the project and its jobs).
    project: Mapped[str | None] = mapped_column(String(200), nullable=True)
    remark: Mapped[str | None] = mapped_column(MessageText, nullable=True)
    details: Mapped[dict | None] = mapped_column(JSONText, nullable=True)

    __table_args__ = (
        Index("ix_audit_events_project_id", "project", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
    )


class Archive(db.Model):
    """One archive a backup produced, and where it lives."""

    __tablename__ = "archives"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)  # archive group number within the job
    format: Mapped[str] = mapped_column(String(8))
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    location_kind: Mapped[str] = mapped_column(String(16), default="directory")
    path: Mapped[str | None] = mapped_column(FSPath, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    member_count: Mapped[int] = mapped_column(BigInteger, default=0)
    input_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # file bytes before compression
    name: Mapped[str | None] = mapped_column(MessageText, nullable=True)  # file name, e.g. for tape files
    secret_id: Mapped[int | None] = mapped_column(ForeignKey("secrets.id"), nullable=True)
    kdf_iterations: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Pruned by retention: a directory archive's file and members are gone; a tape archive's rows stay as history.
    expired_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ArchiveMember(db.Model):
    """The catalog restore browses without reading archives: one row per member, written in batches."""

    __tablename__ = "archive_members"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    archive_id: Mapped[int] = mapped_column(ForeignKey("archives.id"), index=True)
    # Path relative to the archive root, split so a folder listing is one indexed range scan.
    parent: Mapped[str] = mapped_column(FSPath)  # b"" at the root
    name: Mapped[str] = mapped_column(FSPath)
    kind: Mapped[str] = mapped_column(String(8))  # file | dir | symlink | hardlink
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime: Mapped[float] = mapped_column(Float, default=0.0)
    mode: Mapped[int] = mapped_column(Integer, default=0)
    link_target: Mapped[str | None] = mapped_column(FSPath, nullable=True)

    __table_args__ = (
        # MySQL/MariaDB index a BLOB by a prefix (index keys hold 3072 bytes); a name is at most 255 bytes.
        Index("ix_archive_members_job_parent_name", "job_id", "parent", "name",
              mysql_length={"parent": 2048, "name": 255}),
        # Restore's name search (migration 0004): a prefix is one range, paged by (name, id).
        Index("ix_archive_members_job_name", "job_id", "name", "id", mysql_length={"name": 255}),
        # 历史版本: every backup holding one path is one range of this index (migration restoreui).
        Index("ix_archive_members_parent_name", "parent", "name", "job_id", mysql_length={"parent": 2048, "name": 255}),
    )


class User(db.Model):
    """Someone who signs in to the web pages. ``role`` is viewer, operator or admin (stagebackup/auth/roles.py).

    ``session_token`` is part of the id the session cookie carries: a new password replaces it, which signs
    the user out everywhere.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    session_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(nullable=True)


class NotificationTarget(db.Model):
    """Where notifications go: an Apprise URL (a secret: encrypted in ``secrets``, shown back only masked).

    ``project_id`` None: every project. ``events`` lists the ticked ones (notify/events.py);
    ``stale_after_hours`` is X in "no good backup for longer than X".
    """

    __tablename__ = "notification_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    secret_id: Mapped[int] = mapped_column(ForeignKey("secrets.id"))
    masked_url: Mapped[str] = mapped_column(String(255))  # Apprise's privacy form, safe to show
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    events: Mapped[list] = mapped_column(JSONText, default=list)
    stale_after_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    language: Mapped[str] = mapped_column(String(16), default="zh_CN")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(db.Model):
    """The outbox: one message to one target, written in the transaction of the event, delivered later by the
    scheduler process with retries (notify/outbox.py). A failed delivery never touches the job."""

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("notification_targets.id"))
    event: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    project_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the stale check's dedup key
    details: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    gave_up_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(MessageText, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_notification_outbox_pending", "delivered_at", "gave_up_at", "next_attempt_at"),
                      Index("ix_notification_outbox_target_event", "target_id", "event", "project_id"))


class Setting(db.Model):
    """Small server-wide facts, e.g. when an admin confirmed the master key was saved (key escrow)."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BasketItem(db.Model):
    """A path an operator ticked in one backup's browser: kept per user and backup, so ticks survive moving
    between folders and searches (a cookie session is too small for thousands of paths)."""

    __tablename__ = "basket_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(FSPath)
    kind: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # a folder: the bytes of the files under it
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    # A unique index rather than a constraint: MariaDB can only key the first bytes of a BLOB (3,000 here).
    __table_args__ = (Index("uq_basket_items_user_job_path", "user_id", "job_id", "path", unique=True,
                            mysql_length={"path": 3000}),)
