"""``ioc backtest``: two rule sets over one recording, offline, and how their alerts differ.

One simulated recording (6 hours of air and traffic, a pollution episode and a traffic incident) is
made once per module with ``ioc simulate --out``; a candidate lowers ``air.aqi_band``'s trigger far
into ordinary air, so it must add alerts of that rule and of no other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ioc.alerts.rules import RULES_DIR, load_rules
from ioc.backtest.compare import compare, pair_alerts, to_json
from ioc.backtest.run import manage, run_rules
from ioc.backtest.scoring import load_truth
from ioc.city import load_city
from ioc.cli import app
from ioc.models.alert import Alert, AlertStatus
from ioc.models.anomaly import Anomaly, RuleKind, Severity
from ioc.settings import Settings

CITY = load_city("hanoi")
RULES = load_rules("hanoi")
CHANGED_RULE = "air.aqi_band"
T0 = datetime(2026, 7, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("backtest")
    paths = {
        "recording": folder / "six-hours.jsonl.gz",
        "truth": folder / "truth.jsonl",
        "candidate": folder / "candidate.yaml",
        "same": folder / "same.yaml",
    }
    result = CliRunner().invoke(
        app,
        ["simulate", "--start", "2026-07-06T06:00:00+07:00", "--duration", "21600", "--seed", "7",
         "--feeds", "air,traffic", "--scenarios", "pollution_episode,traffic_incident",
         "--truth", str(paths["truth"]), "--out", str(paths["recording"])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = yaml.safe_load((RULES_DIR / "hanoi.yaml").read_text(encoding="utf-8"))
    document["version"] = "the-same-rules"
    paths["same"].write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    document["version"] = "candidate-aqi-60"
    rule = next(rule for rule in document["rules"] if rule["id"] == CHANGED_RULE)
    rule["trigger"], rule["clear"] = {"above": 60}, {"below": 50}  # ordinary Hanoi air is above 60
    paths["candidate"].write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return paths


def backtest(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["backtest", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_a_lowered_trigger_adds_alerts_of_that_rule_only(recorded):
    code, stdout, stderr = backtest(
        str(recorded["recording"]), "--rules", str(recorded["candidate"]), "--json", "-"
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    diff = report["diff"]
    assert diff["counts"]["onlyCandidate"] > 0
    assert {alert["rule"] for alert in diff["onlyCandidate"]} == {CHANGED_RULE}
    assert diff["onlyBaseline"] == []
    assert {pair["rule"] for pair in diff["changed"]} <= {CHANGED_RULE}
    for rule, counts in report["perRule"].items():
        if rule != CHANGED_RULE:
            assert counts["delta"] == 0, (rule, counts)
    assert report["perRule"][CHANGED_RULE]["delta"] == diff["counts"]["onlyCandidate"]
    assert sum(c["delta"] for c in report["perDistrict"].values()) == diff["counts"]["onlyCandidate"]
    assert report["baseline"]["version"] == RULES.version
    assert report["candidate"]["version"] == "candidate-aqi-60"
    assert "Alerts per rule" in stderr, "with --json - the tables go to stderr"


def test_the_same_rules_give_an_empty_diff(recorded):
    # Only the version differs, so both rule sets really run (equal rule sets would share one run).
    code, stdout, stderr = backtest(
        str(recorded["recording"]), "--rules", str(recorded["same"]), "--baseline", "hanoi", "--json", "-"
    )
    assert code == 0, stderr
    assert "none: both rule sets raise the same alerts" in stderr
    report = json.loads(stdout)
    counts = report["diff"]["counts"]
    assert counts | {"same": 0} == dict.fromkeys(counts, 0)
    assert counts["same"] == report["baseline"]["alerts"] == report["candidate"]["alerts"] > 0
    assert all(c["delta"] == 0 for c in [*report["perRule"].values(), *report["perDistrict"].values()])


def test_with_a_truth_both_rule_sets_are_scored_and_the_json_has_its_shape(recorded, tmp_path):
    out = tmp_path / "report.json"
    code, stdout, stderr = backtest(
        str(recorded["recording"]), "--rules", str(recorded["candidate"]),
        "--truth", str(recorded["truth"]), "--json", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "truth: recall" in stdout and "Alerts that differ" in stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report) == ["format", "version", "run", "baseline", "candidate", "diff", "perRule",
                            "perDistrict"]  # fmt: skip
    assert list(report["diff"]) == ["counts", "onlyCandidate", "onlyBaseline", "changed"]
    assert report["run"]["events"] > 0 and report["run"]["truth"] == str(recorded["truth"])
    base, cand = report["baseline"]["truth"], report["candidate"]["truth"]
    for truth in (base, cand):
        assert {"recall", "precision", "medianDelayWindows", "missed", "unmatched"} <= set(truth)
        assert truth["scenarios"] == len(load_truth(recorded["truth"])) == 2
    assert base["recall"] == cand["recall"] == 1.0
    assert cand["precision"] < base["precision"], "the extra alerts match no scenario"
    alert = report["diff"]["onlyCandidate"][0]
    assert list(alert) == ["id", "rule", "entity", "district", "severity", "status", "episodeStart",
                           "openedAt", "resolvedAt", "peak", "count"]  # fmt: skip
    assert datetime.fromisoformat(alert["episodeStart"]).tzinfo is not None


def test_a_file_that_is_no_recording_is_a_clear_error(recorded, tmp_path):
    not_a_recording = tmp_path / "notes.jsonl"
    not_a_recording.write_text('{"hello": "world"}\n', encoding="utf-8")
    code, _, stderr = backtest(str(not_a_recording), "--rules", str(recorded["candidate"]))
    assert code == 2
    assert "not an ioc recording" in stderr


def test_a_bad_truth_line_is_named_by_its_number(recorded, tmp_path):
    truth = tmp_path / "truth.jsonl"
    lines = recorded["truth"].read_text(encoding="utf-8").splitlines()
    truth.write_text(lines[0] + "\n\n" + '{"id": "x"}\n', encoding="utf-8")
    code, _, stderr = backtest(
        str(recorded["recording"]), "--rules", str(recorded["candidate"]), "--truth", str(truth)
    )
    assert code == 2
    assert f"{truth}:3" in " ".join(stderr.split())


def anomaly(at_minutes: float, firing: bool, severity: Severity, start_minutes: float = 0) -> Anomaly:
    return Anomaly(
        rule=CHANGED_RULE, rule_version=RULES.version, kind=RuleKind.standard, feed="air",
        entity="air-hoan-kiem", district="hoan-kiem", metric="vn_aqi", window="1h", value=160.0,
        unit="", threshold=150.0, severity=severity, firing=firing,
        episode_start=T0 + timedelta(minutes=start_minutes),
        observed_at=T0 + timedelta(minutes=at_minutes),
    )  # fmt: skip


def test_the_managed_alert_is_its_latest_version():
    alerts = manage(
        [anomaly(0, True, Severity.warning), anomaly(5, True, Severity.critical),
         anomaly(10, True, Severity.warning), anomaly(40, False, Severity.warning)],
        RULES, CITY,
    ).alerts  # fmt: skip
    assert len(alerts) == 1
    assert alerts[0].severity == Severity.critical, "the highest severity reached"
    assert alerts[0].status == AlertStatus.resolved and alerts[0].count == 3


def test_an_episode_that_starts_earlier_is_one_moved_alert():
    earlier = manage([anomaly(0, True, Severity.warning), anomaly(60, False, Severity.warning)], RULES, CITY)
    later = manage(
        [anomaly(20, True, Severity.critical, start_minutes=20), anomaly(50, False, Severity.warning, 20)],
        RULES, CITY,
    ).alerts  # fmt: skip
    pairs, only_baseline, only_candidate = pair_alerts(later, earlier.alerts)
    assert (len(pairs), only_baseline, only_candidate) == (1, [], [])
    assert pairs[0].start_shift_seconds == -20 * 60 and pairs[0].severity_changed


def test_the_report_of_two_empty_runs_is_json():
    run = run_rules([], RULES, CITY, Settings(), "hanoi", truth=[])
    report = to_json(compare(run, run), {"events": 0})
    assert json.loads(json.dumps(report)) == report
    assert report["diff"]["counts"] == {"onlyCandidate": 0, "onlyBaseline": 0, "changed": 0,
                                        "severityChanged": 0, "moved": 0, "same": 0}  # fmt: skip
    assert set(report["perRule"]) == {rule.id for rule in RULES.rules}
    assert all(isinstance(alert, Alert) for alert in run.managed.alerts)
