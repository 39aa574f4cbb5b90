"""Mail jobs: send one message of the outbox, and the sweep for what Redis lost."""

from __future__ import annotations

from workers.context import job


@job
def send_email(outbound_id: str) -> str:
    """Send one outbox message (retried by RQ on temporary failures)."""
    from app.services import outbox

    return outbox.deliver(outbound_id)


@job
def enqueue_stalled_mail() -> int:
    """Enqueue again the messages that are overdue (lost by Redis, or by a dead worker)."""
    from app.services import outbox

    return outbox.enqueue_stalled()


@job
def start_password_reset(email: str) -> bool:
    """Mail a reset link if an account has this address (the API answers the same either way,
    and leaves the look-up to this job so that its timing tells nothing either)."""
    from app.services import password_reset

    return password_reset.start(email)
