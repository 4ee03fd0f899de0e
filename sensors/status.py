"""``hookbus status``: is alerting healthy right now, and if not, what is stuck."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bus.inspection import ActiveRun, BusStatus, StreamStatus
from sensors.settings import HealthThresholds
from sensors.tables import id_column


def find_problems(status: BusStatus, thresholds: HealthThresholds) -> list[str]:
    """What is unhealthy, one line each (empty: healthy)."""
    problems: list[str] = []
    if len(status.workers) < thresholds.min_workers:
        problems.append(
            f"{len(status.workers)} live worker(s), {thresholds.min_workers} required: start "
            "one with: hookbus worker <code location>"
        )
    for stream in status.streams:
        for group in stream.groups:
            where = f"group {group.name!r} on {stream.name}"
            if group.lag is not None and group.lag > thresholds.max_lag:
                problems.append(f"{where} is {group.lag} entries behind (max {thresholds.max_lag})")
            oldest = group.oldest_pending_s
            if oldest is not None and oldest > thresholds.max_pending_age_s:
                problems.append(
                    f"{where} has an entry pending for {oldest:.0f}s "
                    f"(max {thresholds.max_pending_age_s:.0f}s): is its worker stuck?"
                )
    return problems


def render_status(status: BusStatus, problems: list[str], console: Console) -> None:
    """Print the status as tables, then the verdict."""
    console.print(streams_table(status.streams))
    console.print(groups_table(status.streams))
    consumers = id_column("consumer", [worker.consumer for worker in status.workers])
    workers = Table(
        consumers,
        "code location",
        "liveness expires in",
        title="Live workers",
        title_justify="left",
    )
    for worker in status.workers:
        workers.add_row(worker.consumer, worker.location, f"{worker.expires_in_s:.1f}s")
    console.print(workers)
    console.print(active_runs_table(status.active_runs))
    dead = "[yellow]" if status.dead_letters else "[green]"
    console.print(f"Dead letters: {dead}{status.dead_letters}[/] (hookbus dlq list)")
    if problems:
        console.print("[bold red]UNHEALTHY[/]")
        for problem in problems:
            console.print(f"  [red]✗[/] {problem}")
    else:
        console.print("[bold green]HEALTHY[/]")


def streams_table(streams: list[StreamStatus]) -> Table:
    """Each event stream: its length and last entry id."""
    table = Table(
        id_column("stream", [stream.name for stream in streams]),
        id_column("length", [str(stream.length) for stream in streams]),
        id_column("last id", [stream.last_id or "-" for stream in streams]),
        title="Streams",
        title_justify="left",
    )
    for stream in streams:
        table.add_row(stream.name, str(stream.length), stream.last_id or "-")
    return table


def groups_table(streams: list[StreamStatus]) -> Table:
    """Each consumer group on each stream: lag, pending entries and the oldest one's age."""
    rows = [
        (
            group.name,
            stream.name,
            "?" if group.lag is None else str(group.lag),
            str(group.pending),
            _age(group.oldest_pending_s),
        )
        for stream in streams
        for group in stream.groups
    ]
    whole = ("group", "stream", "lag", "pending")  # the age may wrap, not these
    columns = [id_column(header, [row[n] for row in rows]) for n, header in enumerate(whole)]
    table = Table(*columns, "oldest pending", title="Consumer groups", title_justify="left")
    for row in rows:
        table.add_row(*row)
    return table


def active_runs_table(runs: list[ActiveRun]) -> Table:
    """Runs that have not ended: what they do now and how long until they count as lost."""
    run_ids = id_column("run id", [run.run_id for run in runs])
    table = Table(
        run_ids,
        "job",
        "state",
        "running ops",
        "host/pid",
        "lost in",
        title="Active runs",
        title_justify="left",
    )
    for run in runs:
        overdue = run.deadline_in_s < 0
        table.add_row(
            run.run_id,
            run.job_name,
            run.state,
            ", ".join(run.running_ops) or "-",
            f"{run.host or '?'}/{run.pid or '?'}",
            f"[red]overdue {-run.deadline_in_s:.1f}s[/]"
            if overdue
            else f"{run.deadline_in_s:.1f}s",
        )
    return table


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"
