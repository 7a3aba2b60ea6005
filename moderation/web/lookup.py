"""Case details for one viewer, remembered for a minute.

`ReviewService.case_detail` audits every view of biometric evidence. A case page
pulls the audio (one request per seek, HTTP Range) and the waveform right after
rendering; going back to the service for each would write a dozen audit entries
for one look at a case. So the detail fetched for the page is reused, per viewer
and case, for a short while: one page view, one audit entry.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from moderation.review import CaseDetail, ReviewService, User

TTL_S = 60.0
MAX_ENTRIES = 512


class CaseLookup:
    def __init__(self, service: ReviewService, ttl_s: float = TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service, self.ttl_s, self.clock = service, ttl_s, clock
        self._cache: OrderedDict[tuple[int, int], tuple[float, CaseDetail]] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, case_id: int, viewer: User) -> CaseDetail:
        """From the service (audited), and remembered: the page itself always shows current data."""
        detail = self.service.case_detail(case_id, viewer)
        with self._lock:
            self._cache[(viewer.id, case_id)] = (self.clock(), detail)
            self._cache.move_to_end((viewer.id, case_id))
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
        return detail

    def recent(self, case_id: int, viewer: User) -> CaseDetail:
        """For media requests that follow a page view: the remembered detail, else a fresh one."""
        with self._lock:
            hit = self._cache.get((viewer.id, case_id))
        if hit is not None and self.clock() - hit[0] <= self.ttl_s:
            return hit[1]
        return self.fresh(case_id, viewer)
