"""Anchoring the audit chain's head outside the database, so cutting entries off its end is caught too.

A hash chain detects an edited, reordered or removed *middle* entry, but whoever can
delete the newest rows leaves a shorter chain that still verifies. An anchor is the
head (seq and hash) written to a file the database's writers cannot change — another
machine, a write-once bucket, a ticket. A later verify checks that the entry at the
anchored seq still exists with the anchored hash, then moves the anchor forward.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select

from moderation.audit import AuditVerification, verify
from moderation.schema import audit_log
from moderation.txn import transient_engine


def read_anchor(path: Path) -> tuple[int, str] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return int(data["seq"]), str(data["hash"])


def verify_with_anchor(url: str, anchor: Path, *, update: bool = True) -> AuditVerification:
    """Verify the chain, then check it still reaches the anchored head; on success move the anchor to the head."""
    result = verify(url)
    if not result.ok:
        return result
    anchored = read_anchor(anchor)
    with transient_engine(url) as engine, engine.connect() as conn:
        found = None if anchored is None else conn.execute(
            select(audit_log.c.hash).where(audit_log.c.seq == anchored[0])).scalar_one_or_none()
        head = conn.execute(select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).first()
    if anchored is not None:
        seq, expected = anchored
        if found is None:
            return AuditVerification(False, result.entries, seq,
                                     f"the chain ends at {result.entries} but {anchor} anchored seq {seq}: "
                                     "entries were cut off its end")
        if found != expected:
            return AuditVerification(False, result.entries, seq,
                                     f"seq {seq} no longer has the hash anchored in {anchor}: the chain was rewritten")
    if update and head is not None:
        _write(anchor, (int(head.seq), str(head.hash)))
    return result


def _write(path: Path, head: tuple[int, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"seq": head[0], "hash": head[1]}) + "\n")
    os.replace(tmp, path)  # atomic: a crash never leaves half an anchor
