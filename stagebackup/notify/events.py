"""The events a target can tick, and which job endings raise which event."""

from __future__ import annotations

from ..errors import N_
from ..models import FAILED, INTERRUPTED, SUCCEEDED, WARNING

FAILED_EVENT, WARNING_EVENT, WAITING_EVENT, SUCCEEDED_EVENT, STALE_EVENT = (
    "failed", "warning", "waiting_media", "succeeded", "stale")
EVENTS = (FAILED_EVENT, WARNING_EVENT, WAITING_EVENT, SUCCEEDED_EVENT, STALE_EVENT)
#: Ticked when a target is added without a choice: everything but success.
DEFAULT_EVENTS = (FAILED_EVENT, WARNING_EVENT, WAITING_EVENT, STALE_EVENT)
LABELS = {
    FAILED_EVENT: N_("job failed"),
    WARNING_EVENT: N_("job ended with warnings"),
    WAITING_EVENT: N_("job waiting for a tape"),
    SUCCEEDED_EVENT: N_("job succeeded"),
    STALE_EVENT: N_("no good backup for too long"),
}
#: A job's final status -> its event (a cancelled job is the operator's own doing: no message).
ENDINGS = {FAILED: FAILED_EVENT, INTERRUPTED: FAILED_EVENT, WARNING: WARNING_EVENT, SUCCEEDED: SUCCEEDED_EVENT}
