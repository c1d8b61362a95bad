"""Keeps a running request's claim on its key alive.

The lease is short (``idempotency_lease_seconds``) so that a request whose process died
frees its key soon; a live request, however long it runs, renews it from a thread (an
endpoint may be busy in a worker thread for minutes, e.g. a large usage upload).
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from billbyte.idempotency import service
from billbyte.runtime import Runtime

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self, runtime: Runtime, record_id: str, lease: timedelta) -> None:
        self._runtime = runtime
        self._record_id = record_id
        self._lease = lease
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"idempotency-lease-{record_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Does not wait: a renewal still in flight only touches an in-progress record, so
        it cannot undo the completion or release that follows."""
        self._stopped.set()

    def _run(self) -> None:
        # Renew three times per lease, so that one slow or failed renewal is not fatal.
        interval = self._lease.total_seconds() / 3
        while not self._stopped.wait(interval):
            try:
                with self._runtime.uow() as uow:
                    still_ours = service.renew(uow.session, self._record_id, self._lease)
                    uow.commit()
            except Exception:  # a database hiccup: the next renewal may succeed
                log.warning("Could not renew idempotency lease %s", self._record_id, exc_info=True)
                continue
            if not still_ours:
                return
