"""Silences: the ``hookbus silences`` commands, matching, and their error paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from click.testing import CliRunner, Result

from bus import RunState
from notifiers import NotifierConfigError, Silence, new_silence, parse_duration
from notifiers.errors import SilenceNotFoundError
from notifiers.silences import with_silences
from sensors import WorkerSettings
from sensors.cli import main
from tests.conftest import TEST_PREFIX
from tests.notifiers.events import op_failed, run_ended


@pytest.fixture
def cli(redis_url: str, redis_client: redis.Redis) -> Iterator[CliRunner]:
    yield CliRunner(env={"HOOKBUS_REDIS_URL": redis_url, "HOOKBUS_KEY_PREFIX": TEST_PREFIX})


def invoke(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(main, list(args), catch_exceptions=False)


def test_add_list_and_remove_a_silence(cli: CliRunner) -> None:
    added = invoke(
        cli, "silences", "add", "--job", "nightly_etl", "--tag", "team=data", "--for", "2h",
        "--comment", "warehouse maintenance", "--by", "ana",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added: job=nightly_etl tag:team=data until" in added.output

    [listed] = [
        json.loads(line) for line in invoke(cli, "silences", "list", "--json").output.splitlines()
    ]
    assert (listed["job"], listed["tags"], listed["suppressed"]) == (
        "nightly_etl",
        {"team": "data"},
        0,
    )
    assert (listed["created_by"], listed["comment"]) == ("ana", "warehouse maintenance")
    assert listed["id"] in invoke(cli, "silences", "list").output

    removed = invoke(cli, "silences", "remove", listed["id"])
    assert removed.output == f"silence {listed['id']} removed\n"
    assert invoke(cli, "silences", "list", "--json").output == ""


def test_cli_errors_are_one_clear_line(cli: CliRunner) -> None:
    gone = invoke(cli, "silences", "remove", "nope")
    assert gone.exit_code == 2
    assert "error: silence 'nope' does not exist" in gone.output
    everything = invoke(cli, "silences", "add", "--for", "1h")
    assert everything.exit_code == 2 and "a silence must not mute every alert" in everything.output
    bad_tag = invoke(cli, "silences", "add", "--tag", "team", "--for", "1h")
    assert bad_tag.exit_code == 2 and "tag 'team' is not key=value" in bad_tag.output
    bad_for = invoke(cli, "silences", "add", "--job", "x", "--for", "soon")
    assert bad_for.exit_code == 2 and "silence duration 'soon' is not understood" in bad_for.output


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert parse_duration(" 2 d ") == timedelta(days=2)
    with pytest.raises(NotifierConfigError, match="silence duration '0m' is not understood"):
        parse_duration("0m")


def test_every_matcher_must_match() -> None:
    silence = new_silence(
        duration=timedelta(hours=1), job="nightly_etl", op="load", tags={"t": "1"}
    )
    assert silence.matches(op_failed("load", tags={"t": "1"}), rule="any")
    assert not silence.matches(op_failed("extract", tags={"t": "1"}), rule="any")
    assert not silence.matches(op_failed("load"), rule="any")
    assert not silence.matches(run_ended(RunState.FAILED), rule="any")  # no op on a run event
    by_rule = new_silence(duration=timedelta(hours=1), rule="oncall")
    assert by_rule.matches(run_ended(), rule="oncall") and not by_rule.matches(
        run_ended(), rule="x"
    )


def test_a_silence_without_matchers_is_refused() -> None:
    with pytest.raises(NotifierConfigError, match="silence matches nothing in particular: got no"):
        new_silence(duration=timedelta(hours=1))


def test_silence_repr_and_expiry() -> None:
    silence = new_silence(duration=timedelta(minutes=5), job="etl", op="load")
    assert repr(silence) == (
        f"<Silence id={silence.id!r} job=etl op=load until={silence.ends_at.isoformat()}>"
    )
    assert silence.active(silence.starts_at) and not silence.active(silence.ends_at)
    assert isinstance(Silence.model_validate_json(silence.model_dump_json()), Silence)


def test_removing_an_unknown_silence_raises(worker_settings: WorkerSettings) -> None:
    with pytest.raises(SilenceNotFoundError, match="silence 'x1' does not exist: got no silence"):
        with_silences(worker_settings, lambda store: store.remove("x1"))
