"""The outbox relay: (re-)publish accepted uploads that have no verdict yet, from the ledger.

The upload API publishes right after the ledger commit, but that publish can fail
or the process can die in between; and Beam's local Pub/Sub read acknowledges a
message when it reads it, so a message lost inside the pipeline is never
redelivered by the broker. The ledger row is the durable record: this relay
publishes accepted uploads never published, and again those published more than
``republish_after_s`` ago that still have no row in ``verdicts``. The pipeline
writes by upload_id, so a second delivery never makes a second verdict or case.
"""

from __future__ import annotations

import datetime as dt
import logging

from moderation.hook_ledger import HookLedger
from pipelines.events import EventPublisher, PublishError, UploadEvent

log = logging.getLogger(__name__)


def relay_outbox(ledger: HookLedger, publisher: EventPublisher, now: dt.datetime, republish_after_s: float = 120.0,
                 limit: int = 200) -> int:
    """Publish due uploads (at most ``limit``); returns how many were published.

    The first `PublishError` ends the round (the broker is most likely down: the
    rest would each wait for the publish timeout); what is left stays due.
    """
    published = 0
    for record in ledger.outbox_due(now, republish_after_s, limit):
        assert record.accepted_at is not None  # outbox rows are accepted
        event = UploadEvent(upload_id=record.upload_id, manifest=dict(record.manifest),
                            accepted_at=record.accepted_at)
        try:
            publisher.publish(event)
        except PublishError as exc:
            log.warning("outbox relay: publishing %s failed, retrying next round: %s", record.upload_id, exc)
            break
        ledger.mark_published(record.upload_id, now)
        published += 1
    return published

