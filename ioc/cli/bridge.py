"""``ioc bridge``: bridges from other transports into Kafka (MQTT today)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from ioc.cli.startup import card_key_or_exit
from ioc.settings import Settings

bridge_app = typer.Typer(help="Bridge other transports into Kafka: MQTT.", no_args_is_help=True)
err = Console(stderr=True)


@bridge_app.command()
def mqtt(
    report_every: Annotated[
        float, typer.Option(min=1, help="Seconds between progress lines in the log.")
    ] = 30,
) -> None:
    """Bridge MQTT <root>/<feed>/<sensor> into Kafka: QoS 1, acknowledged once Kafka has it; Ctrl-C stops."""
    from aiokafka.errors import KafkaError as AIOKafkaError
    from kafka.errors import KafkaError

    from connectors.sources.mqtt import BridgeError, run_bridge

    settings = Settings()
    card_key_or_exit(settings)  # the edge pseudonymises transit card ids
    # While Kafka is down aiokafka logs every reconnection attempt (ten a second); the bridge itself
    # reports how long Kafka has not acknowledged and how many MQTT messages wait.
    # kafka-python (topic creation) narrates every refused connection the same way.
    for chatty in ("aiokafka", "kafka"):
        logging.getLogger(chatty).setLevel(logging.CRITICAL)
    try:
        asyncio.run(run_bridge(settings, report_every=report_every))
    except (BridgeError, KafkaError, AIOKafkaError, OSError, ValueError) as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
