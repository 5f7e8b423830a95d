"""OpenAPI examples for the operators' endpoints, computed by the domain code itself (so they always
match the models): a morning in Đống Đa, Hanoi — bad air at Kim Liên, then a jam at Ngã Tư Sở."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ioc.alerts import audit, incidents, manager
from ioc.alerts.rules import load_rules
from ioc.alerts.silence import Matchers, Silence
from ioc.city import load_city
from ioc.models.alert import AlertCommand
from ioc.models.anomaly import Anomaly, RuleKind, Severity

T0 = datetime.fromisoformat("2026-11-23T07:00:00+07:00")


def _minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def _build() -> dict[str, Any]:
    rules, city = load_rules("hanoi"), load_city("hanoi")
    air, traffic = manager.new_state(), manager.new_state()
    [air_opened] = manager.apply_anomaly(
        air,
        Anomaly(
            rule="air.aqi_band",
            rule_version=rules.version,
            kind=RuleKind.standard,
            feed="air",
            entity="air-kim-lien",
            district="dong-da",
            firing=True,
            episode_start=_minutes(0),
            observed_at=_minutes(40),
            window="1h",
            metric="vn_aqi",
            value=172.0,
            unit="",
            threshold=150.0,
            band="xau",
            severity=Severity.warning,
        ),
        rules,
        city,
    )
    [traffic_opened] = manager.apply_anomaly(
        traffic,
        Anomaly(
            rule="traffic.incident",
            rule_version=rules.version,
            kind=RuleKind.statistical,
            feed="traffic",
            entity="traffic-nga-tu-so",
            district="dong-da",
            firing=True,
            episode_start=_minutes(15),
            observed_at=_minutes(25),
            window="5m",
            metric="speed_score",
            value=0.97,
            unit="1",
            threshold=0.7,
            baseline=24.0,
            severity=Severity.critical,
        ),
        rules,
        city,
    )
    command = AlertCommand(
        action="acknowledge",
        alert_id=air_opened.alert.id,
        entity="air-kim-lien",
        by="alice",
        at=_minutes(45),
        note="Đã báo Phòng TN-MT quận Đống Đa / Đống Đa environment office informed",
    )
    [acknowledged] = manager.apply_command(air, command).events

    district = incidents.new_state()
    changes = []
    for event in (air_opened, traffic_opened):
        changes += incidents.apply_alert_event(district, event, rules, city)
    incident = changes[-1].incident

    silence = Silence(
        id="0c6f1d0e-5b7a-4f0e-9a51-2f4b8f0f6a11",
        matchers=Matchers(rule="air.*", entity="air-kim-lien"),
        starts_at=_minutes(50),
        ends_at=_minutes(50 + 180),
        created_by="alice",
        created_at=_minutes(50),
        comment="Công trình xây dựng cạnh trạm, bụi đã biết / construction next to the station, known dust",
    )
    ended = silence.model_copy(update={"ends_at": _minutes(95), "ended_by": "duty-admin"})
    trail = [audit.of_silence(ended), audit.of_silence(silence), audit.of_alert_event(acknowledged)]

    def wire(model: Any) -> dict[str, Any]:
        return model.model_dump(mode="json", by_alias=True)

    return {
        "alert": wire(acknowledged.alert),
        "open_alert": wire(traffic_opened.alert),
        "command": wire(command),
        "incident": wire(incident),
        "silence": wire(silence),
        "ended_silence": wire(ended),
        "audit": [wire(entry) for entry in trail if entry is not None],
    }


EXAMPLES = _build()
