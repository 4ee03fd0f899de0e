"""``hookbus status``: is alerting healthy right now, and if not, what is stuck."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bus.inspection import ActiveRun, BusStatus, GroupStatus
from sensors.settings import HealthThresholds


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
    groups = Table(title="Streams and consumer groups", title_justify="left")
    for column in ("stream", "length", "last id", "group", "lag", "pending", "oldest pending"):
        groups.add_column(column)
    for stream in status.streams:
        rows: list[GroupStatus | None] = list(stream.groups) or [None]
        for group in rows:
            groups.add_row(
                stream.name,
                str(stream.length),
                stream.last_id or "-",
                group.name if group else "-",
                "?" if group is None or group.lag is None else str(group.lag),
                str(group.pending) if group else "-",
                _age(group.oldest_pending_s) if group else "-",
            )
    console.print(groups)
    workers = Table(title="Live workers", title_justify="left")
    for column in ("consumer", "code location", "liveness expires in"):
        workers.add_column(column)
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


def active_runs_table(runs: list[ActiveRun]) -> Table:
    """Runs that have not ended: what they do now and how long until they count as lost."""
    table = Table(title="Active runs", title_justify="left")
    for column in ("run id", "job", "state", "running ops", "host/pid", "lost in"):
        table.add_column(column)
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
