"""Creating consumer groups, with the ``hooks`` group always first on a new stream.

Redis creates a stream for whichever group is created first (``MKSTREAM``). The ``hooks``
group must exist before any entry is added, or the entries before it are never delivered
to hooks: so whoever creates a stream for another group (a sensor's or a rule's worker,
``hookbus sensors replay``) creates the ``hooks`` group on it first, at ``$``, as the
publisher and the publish script do (``bus.runs.PUBLISH_SCRIPT``). After Redis restarted
empty, whichever comes first then leaves the stream as the publisher would.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from bus.keys import HOOKS_GROUP


def ensure_group(client: redis.Redis, stream: str, group: str, *, start_id: str = "$") -> None:
    """Create ``group`` on ``stream`` at ``start_id`` unless it exists, and before it the
    ``hooks`` group at ``$`` where that is missing (on a new stream, or one whose ``hooks``
    group was deleted: as the ``hooks`` worker would create it)."""
    for name, start in _groups_to_create(group, start_id):
        try:
            client.xgroup_create(stream, name, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def ensure_group_async(
    client: aioredis.Redis, stream: str, group: str, *, start_id: str = "$"
) -> None:
    """``ensure_group`` with an asyncio client."""
    for name, start in _groups_to_create(group, start_id):
        try:
            await client.xgroup_create(stream, name, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def missing_group(exc: redis.ResponseError) -> bool:
    """Whether ``XGROUP SETID`` failed for want of the group, or of its whole stream (a
    shard nothing was published to yet, or a Redis restarted empty)."""
    message = str(exc)
    return "NOGROUP" in message or "requires the key to exist" in message


def _groups_to_create(group: str, start_id: str) -> list[tuple[str, str]]:
    if group == HOOKS_GROUP:
        return [(HOOKS_GROUP, start_id)]
    return [(HOOKS_GROUP, "$"), (group, start_id)]
