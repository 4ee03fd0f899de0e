"""Asking a running run to stop, from any process (``hookbus runs cancel RUN_ID``)."""

from __future__ import annotations

import logging
from typing import Final

from bus.connection import connect
from bus.settings import BusSettings

logger = logging.getLogger(__name__)

#: A cancel request for a run that never looks at it is forgotten after this, in seconds.
CANCEL_REQUEST_TTL_S: Final = 24 * 3600


def cancel_run(run_id: str, *, settings: BusSettings, reason: str = "cancel requested") -> bool:
    """Ask run ``run_id`` to stop; it goes ``cancelling`` within a heartbeat interval,
    stops at its next op boundary and ends ``cancelled``.

    Returns:
        Whether the run is alive (registered in its shard's liveness set) right now.
    """
    keys = settings.keys
    client = connect(settings)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.set(keys.run_cancel(run_id), reason, ex=CANCEL_REQUEST_TTL_S)
        pipe.zscore(keys.runs_alive_for_run(run_id), run_id)
        _, score = pipe.execute()
    finally:
        client.close()
    logger.info("cancel requested run_id=%s alive=%s", run_id, score is not None)
    return score is not None
