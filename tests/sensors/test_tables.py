"""Identifiers in the CLI's tables stay whole in an 80-column terminal."""

from __future__ import annotations

from rich.console import Console

from bus.inspection import ActiveRun, BusStatus, GroupStatus, StreamStatus, WorkerStatus
from sensors.status import render_status

STREAM = "hookbus:events:{3}"
GROUP = "notify:oncall:#data-alerts"
LAST_ID = "1795402801123-12"
CONSUMER = "worker-7f9c6d5b8-xk2lp-12345"
RUN_ID = "3f2c9a1e-5b7d-4c8e-9f10-2a3b4c5d6e7f"


def test_status_never_cuts_stream_group_consumer_or_run_ids_at_80_columns() -> None:
    group = GroupStatus(name=GROUP, lag=3, pending=1, oldest_pending_s=2.5, consumers=[])
    stream = StreamStatus(name=STREAM, length=120, first_id="1-0", last_id=LAST_ID, groups=[group])
    run = ActiveRun(
        run_id=RUN_ID,
        job_name="nightly_etl",
        state="running",
        seq=4,
        running_ops=["load_orders_into_the_warehouse"],
        host="etl-host-1",
        pid=4242,
        deadline_in_s=12.0,
    )
    status = BusStatus(
        streams=[stream],
        dead_letters=0,
        workers=[WorkerStatus(consumer=CONSUMER, location="my_pipelines", expires_in_s=9.0)],
        active_runs=[run],
    )
    console = Console(width=80, record=True, color_system=None)

    render_status(status, [], console)

    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    for identifier in (STREAM, GROUP, LAST_ID, CONSUMER, RUN_ID):
        assert any(identifier in line for line in lines), identifier
    [group_row] = [line for line in lines if GROUP in line]
    assert [cell.strip() for cell in group_row.split("│")[3:6]] == ["3", "1", "2.5s"]
