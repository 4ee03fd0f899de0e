"""``python -m bench [--quick]``: run every benchmark and print the table.

By default a private ``redis-server`` is started for the run (stable numbers); pass
``--redis-url`` to use another Redis (keys go under a random ``hookbus-bench-*`` prefix
and are deleted at the end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.console import Console

from bench.config import FULL, QUICK, Sizes
from bench.crash import Heartbeat, measure_crash
from bench.engine_overhead import measure_engine
from bench.env import BenchEnv, private_redis
from bench.floor import measure_floor
from bench.footprint import measure_footprint
from bench.latency import measure_latency
from bench.locations.noop import feed_sync
from bench.report import Figure, median_run, render, to_json, to_markdown
from bench.throughput import measure_throughput

SECTIONS = ("engine", "latency", "throughput", "crash", "footprint")


@click.command(help="Measure hookbus against the Redis floor and print the table.")
@click.option("--quick", is_flag=True, help="Tiny sizes (CI smoke run); numbers mean little.")
@click.option("--redis-url", help="Use this Redis instead of a private redis-server.")
@click.option("--rss-events", type=int, help="Events for the RSS figure (default 1,000,000).")
@click.option(
    "--only", help=f"Comma-separated sections to run after the floor: {', '.join(SECTIONS)}."
)
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(1, 9),
    help="Run everything this many times; each row is then the median run's.",
)
@click.option("--markdown", type=click.Path(path_type=Path), help="Also write the table here.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write JSON.")
def main(
    quick: bool,
    redis_url: str | None,
    rss_events: int | None,
    only: str | None,
    repeat: int,
    markdown: Path | None,
    json_path: Path | None,
) -> None:
    sizes = QUICK if quick else FULL
    if rss_events:
        sizes = dataclasses.replace(sizes, rss_events=rss_events)
    wanted = set(only.split(",")) if only else set(SECTIONS)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise click.BadParameter(
            f"got {sorted(unknown)}; choose from {SECTIONS}", param_hint="--only"
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # CI logs: keep each row on one line
    started = time.monotonic()
    with _redis(redis_url) as url:
        env = BenchEnv(url)
        failed = True
        try:
            runs = []
            for number in range(1, repeat + 1):
                if repeat > 1:
                    console.print(f"[bold]run {number} of {repeat}[/]")
                runs.append(_run(env, sizes, wanted, console))
            figures = median_run(runs)
            failed = False
        finally:
            env.close(keep_logs=failed)
            if failed:
                console.print(f"[red]benchmark failed; worker logs are in {env.log_dir}[/]")
    title = (
        f"hookbus benchmarks ({'quick' if quick else 'full'}) — {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {time.monotonic() - started:.0f} s"
        + (f", median of {repeat} runs" if repeat > 1 else "")
    )
    render(figures, title=title, console=console)
    if markdown:
        markdown.write_text(f"{title}\n\n{to_markdown(figures)}\n")
    if json_path:
        json_path.write_text(to_json(figures) + "\n")


def _run(env: BenchEnv, sizes: Sizes, wanted: set[str], console: Console) -> list[Figure]:
    console.print("[dim]… Redis floor[/]")
    with env.section("floor") as sub:
        _, payload = sub.template(feed_sync, to_state="completed")
        floor, figures = measure_floor(
            sub, payload, samples=sizes.floor_samples, bulk=sizes.floor_bulk, trials=sizes.trials
        )
    sections: dict[str, Callable[[BenchEnv], list[Figure]]] = {
        "engine": lambda sub: measure_engine(sub, floor, trials=sizes.engine_trials),
        "latency": lambda sub: measure_latency(
            sub, floor, runs=sizes.latency_runs, rate=sizes.load_rate
        ),
        "throughput": lambda sub: measure_throughput(
            sub, floor, trials=sizes.trials, window_s=sizes.burst_window_s
        ),
        "crash": lambda sub: measure_crash(
            sub, samples=sizes.crash_samples, heartbeat=Heartbeat(), grace_s=sizes.crash_grace_s
        ),
        "footprint": lambda sub: measure_footprint(
            sub,
            import_trials=sizes.import_trials,
            events=sizes.rss_events,
            budget_s=sizes.rss_budget_s,
        ),
    }
    for name, measure in sections.items():
        if name in wanted:
            console.print(f"[dim]… {name}[/]", end="")
            started = time.monotonic()
            with env.section(name) as sub:
                figures += measure(sub)
            console.print(f"[dim] {time.monotonic() - started:.1f} s[/]")
    return figures


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
    else:
        with private_redis() as private_url:
            yield private_url


if __name__ == "__main__":
    main()
