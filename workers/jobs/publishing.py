"""Publishing jobs: the dispatcher (periodic), and one job per delivery to publish, reconcile
or delete from its network."""

from __future__ import annotations

from workers.context import job


@job
def dispatch_due_deliveries() -> dict[str, int]:
    """Claim the deliveries due in the next moments, across agencies, and enqueue their jobs;
    enqueue again the jobs Redis lost, and reconcile what dead workers left behind."""
    from app.services import dispatcher

    return dispatcher.dispatch()


@job
def publish_delivery(delivery_id: str, agency_id: str) -> str:
    """Publish one claimed delivery, in its agency (another agency's id finds nothing)."""
    from app.services import publishing

    return publishing.publish(delivery_id, agency_id)


@job
def reconcile_delivery(delivery_id: str, agency_id: str) -> str:
    """Find out whether an unknown delivery's post exists; record it, or publish it."""
    from app.services import publishing

    return publishing.reconcile(delivery_id, agency_id)


@job
def delete_from_network(delivery_id: str, agency_id: str) -> str:
    """Delete one published delivery's post from its network, on a person's request."""
    from app.services import network_deletion

    return network_deletion.delete(delivery_id, agency_id)
