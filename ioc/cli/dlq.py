"""``ioc dlq``: inspect the dead-letter topic by reason and feed, and replay corrected events."""

from __future__ import annotations

import heapq
import json
import logging
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import click
import typer
from kafka.errors import KafkaError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ioc.cli.startup import card_key_or_exit
from ioc.settings import Settings

dlq_app = typer.Typer(
    help="Inspect the dead-letter topic (<prefix>.dlq) and replay corrected events.", no_args_is_help=True
)

out = Console()
if not out.is_terminal:
    out = Console(width=200)  # piped: don't fold at 80 columns
err = Console(stderr=True)

FeedOption = Annotated[str | None, typer.Option(help="Only dead letters of this feed (air, traffic, …).")]
ReasonOption = Annotated[str | None, typer.Option(help="Only this reason: invalid, unparseable, late …")]
SinceOption = Annotated[
    str | None, typer.Option(help="Only dead letters rejected at or after this time (ISO 8601 with offset).")
]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--since") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no UTC offset; write e.g. 2026-01-15T00:00:00+07:00", param_hint="--since"
        )
    return moment


@dlq_app.callback()
def _quiet() -> None:
    # kafka-python logs at ERROR what it retries or what closing a consumer cancels; the commands
    # report what failed themselves.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _zone(settings: Settings) -> ZoneInfo:
    from ioc.city import load_city

    return ZoneInfo(load_city(settings.city).timezone)


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _counts_table(title: str, counts: Counter[str]) -> Table:
    table = Table(title, "dead letters", box=box.SIMPLE_HEAD, title_justify="left")
    for name, count in counts.most_common():
        table.add_row(Text(name), f"{count:,}")
    return table


def _plain(*cells: str) -> list[Text]:
    """Table cells shown as they are: a dead letter's text is anyone's, and may look like Rich markup."""
    return [Text(cell) for cell in cells]


@dlq_app.command("list")
def list_(
    feed: FeedOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, the newest.")] = 50,
) -> None:
    """List dead letters (offset, time, feed, reason, detail) with counts per reason and feed."""
    from connectors.dlq import Selection, read_dlq

    settings = Settings()
    selection = Selection(feed, reason, _since(since))
    zone = _zone(settings)
    by_reason: Counter[str] = Counter()
    by_feed: Counter[str] = Counter()
    newest: list[tuple[datetime, tuple[int, int], object]] = []
    try:
        for stored in read_dlq(settings, since=selection.since):
            if not selection(stored):
                continue
            by_reason[stored.reason] += 1
            by_feed[stored.feed] += 1
            entry = (stored.time, (stored.position.partition, stored.position.offset), stored)
            if len(newest) < limit:
                heapq.heappush(newest, entry)
            else:
                heapq.heappushpop(newest, entry)
    except (KafkaError, OSError, TimeoutError, RuntimeError) as error:
        raise _fail(str(error)) from None
    total = sum(by_reason.values())
    table = Table("offset", "time", "feed", "reason", "detail", box=box.SIMPLE_HEAD)
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    table.columns[4].overflow = "fold"
    for moment, _, stored in sorted(newest, key=lambda e: (e[0], e[1])):
        table.add_row(
            *_plain(
                str(stored.position),
                moment.astimezone(zone).isoformat(timespec="seconds"),
                stored.feed,
                stored.reason,
                stored.detail if len(stored.detail) <= 300 else stored.detail[:299] + "…",
            )
        )
    if not total:
        out.print(
            f"no dead letters in {settings.dlq_topic}" + (" that match" if feed or reason or since else "")
        )
        return
    out.print(table)
    shown = len(newest)
    more = f" (the newest {shown}; --limit to see more)" if shown < total else ""
    out.print(f"{total:,} dead letter{'s' if total != 1 else ''} in {settings.dlq_topic}{more}")
    out.print(_counts_table("reason", by_reason))
    out.print(_counts_table("feed", by_feed))


@dlq_app.command()
def show(
    offset: Annotated[str, typer.Argument(help="The dead letter's position: partition:offset, e.g. 0:17.")],
) -> None:
    """Show one dead letter in full, payload included, as JSON."""
    from connectors.dlq import DlqError, Position, fetch

    settings = Settings()
    try:
        (stored,) = fetch(settings, [Position.parse(offset)])
    except DlqError as error:
        raise _fail(str(error)) from None
    except (KafkaError, OSError, TimeoutError, RuntimeError) as error:
        raise _fail(str(error)) from None
    print(json.dumps(stored.as_json(), indent=2, ensure_ascii=False))


@dlq_app.command()
def replay(
    feed: FeedOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    offset: Annotated[
        list[str] | None, typer.Option(help="Replay this dead letter (partition:offset); repeat for more.")
    ] = None,
    fix: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help='Corrected items, JSON Lines: {"offset": "0:17", "item": {…}} per line ({"feed": …, '
            '"item": …} or a bare item with --feed for items without a dead letter).',
        ),
    ] = None,
    edit: Annotated[
        bool, typer.Option("--edit", help="Open the selected dead letters in $EDITOR as a fix file first.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and report; write nothing to Kafka.")
    ] = False,
) -> None:
    """Re-inject dead letters (or corrected items) through the ingest edge; what still fails is reported."""
    from connectors.dlq import (
        DlqError,
        Position,
        Selection,
        candidates_from_fix,
        candidates_from_letters,
        fetch,
        fix_lines,
        read_dlq,
    )
    from connectors.dlq import replay as run_replay
    from ioc.ingest.edge import Accepted

    settings = Settings()
    card_key_or_exit(settings)  # the edge pseudonymises transit card ids
    if fix is not None and (edit or offset or reason or since):
        raise typer.BadParameter(
            "--fix brings its own items: use it without --edit, --offset, --reason, --since"
        )
    try:
        if fix is not None:
            candidates = candidates_from_fix(fix, settings, default_feed=feed)
        else:
            if not (offset or feed or reason or since):
                raise typer.BadParameter("choose what to replay: --offset, --feed, --reason or --since")
            if offset:
                letters = fetch(settings, [Position.parse(o) for o in offset])
                letters = [s for s in letters if Selection(feed, reason, _since(since))(s)]
            else:
                selection = Selection(feed, reason, _since(since))
                letters = [s for s in read_dlq(settings, since=selection.since) if selection(s)]
            if not letters:
                out.print("no dead letters match: nothing to replay")
                return
            if edit:
                text = click.edit(fix_lines(letters), extension=".jsonl", require_save=True)
                if text is None:
                    out.print("the fix file was not saved: nothing replayed")
                    return
                edited = settings.run_dir / "dlq-edit.jsonl"
                edited.parent.mkdir(parents=True, exist_ok=True)
                edited.write_text(text)
                candidates = candidates_from_fix(edited, settings, default_feed=feed)
            else:
                candidates = candidates_from_letters(letters)
        results = run_replay(candidates, settings, dry_run=dry_run)
    except DlqError as error:
        raise _fail(str(error)) from None
    except (KafkaError, OSError, TimeoutError, RuntimeError) as error:
        raise _fail(str(error)) from None
    _report(results, settings, dry_run=dry_run)
    if not all(isinstance(r.outcome, Accepted) for r in results):
        raise typer.Exit(1)  # something still fails: scripts can tell


def _report(results: list, settings: Settings, *, dry_run: bool) -> None:
    from ioc.ingest.edge import Accepted

    accepted = Counter(r.outcome.feed for r in results if isinstance(r.outcome, Accepted))
    failing = [r for r in results if not isinstance(r.outcome, Accepted)]
    verb = "would go" if dry_run else "went"
    for feed_name, count in sorted(accepted.items()):
        out.print(f"{count:,} {verb} to {settings.raw_topic(feed_name)}")
    if not failing:
        out.print(f"all {len(results):,} replayed" + (" (dry run: nothing written)" if dry_run else ""))
        return
    table = Table("from", "feed", "outcome", "detail", box=box.SIMPLE_HEAD, title_justify="left")
    table.title = f"{len(failing):,} still failing" + (
        "" if dry_run else f" (back in {settings.dlq_topic}, source naming where they came from)"
    )
    table.columns[3].overflow = "fold"
    for result in failing:
        if result.outcome is None:
            table.add_row(*_plain(result.candidate.origin, result.candidate.feed, "skipped", result.skipped))
        else:
            table.add_row(
                *_plain(
                    result.candidate.origin, result.outcome.feed, result.outcome.kind, result.outcome.detail
                )
            )
    out.print(table)
