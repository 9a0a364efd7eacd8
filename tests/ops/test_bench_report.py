"""The benchmark report's own logic: targets, failing on correctness only, merging other
programs' JSON, the markdown table. The benchmark itself is ``make bench``, not a test."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.callbacks_bench import procfile_options

ROOT = Path(__file__).resolve().parents[2]


def outcome(figures: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    return {"figures": figures, "error": error, "seconds": 1.0}


def build(outcomes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return report.build_report(
        outcomes,
        mode="quick",
        command="make bench-quick",
        machine_info={
            "cores": 2,
            "cpu_model": "test CPU",
            "python": "3.11",
            "sqlalchemy": "2.0",
            "database": {"kind": "SQLite", "version": "3"},
        },
        started_at="2026-01-01 00:00 UTC",
        duration_s=12.0,
    )


@pytest.mark.parametrize(
    ("name", "value", "meets"),
    [
        ("request_economy_full", 1.0, True),
        ("request_economy_full", 10_101 / 10_100, False),
        ("rows_written_unchanged", 0, True),
        ("rows_written_unchanged", 3, False),
        ("full_sync_vs_bound", 1.3, True),
        ("full_sync_vs_bound", 1.31, False),
        ("incremental_vs_full", 0.05, False),
        ("intake_vs_bare_flask", 0.40, True),
        ("intake_p99_ms", 100.0, False),
        ("freshness_gain_vs_uniform_on_uniform_mix", 0.94, False),
        ("faults_acked_lost", None, None),
        ("faults_acked_lost", "n/a", None),
    ],
)
def test_each_target_is_met_or_missed_at_its_bound(name: str, value: Any, meets: Any) -> None:
    assert report.TARGETS[name].meets(value) is meets


def test_a_missed_correctness_figure_fails_the_run_and_a_slow_speed_figure_does_not() -> None:
    slow = build(
        {"sync": outcome({"full_sync_cpu_ms_per_product": report.figure(7.5, "2,000 products")})}
    )
    assert slow["figures"]["full_sync_cpu_ms_per_product"]["meets"] is False
    assert slow["failures"] == []

    wasteful = build({"sync": outcome({"request_economy_incremental": report.figure(1.5, "")})})
    assert wasteful["failures"] == ["request_economy_incremental: 1.5 misses = 1.00"]


def test_a_scenario_error_fails_the_run_and_the_others_still_report() -> None:
    built = build(
        {
            "sync": outcome({"rows_written_unchanged": report.figure(0, "SQLite")}),
            "intake": outcome({}, error="RuntimeError: gunicorn exited 1"),
        }
    )
    assert built["figures"]["rows_written_unchanged"]["meets"] is True
    assert built["failures"] == ["scenario intake: RuntimeError: gunicorn exited 1"]
    markdown = report.render_markdown(built)
    assert "- intake: RuntimeError: gunicorn exited 1" in markdown


def test_every_targeted_figure_shows_even_when_nobody_produced_it() -> None:
    built = build({})
    assert set(report.TARGETS) <= set(built["figures"])
    assert built["figures"]["peak_rss_growth"] == {
        "value": None,
        "conditions": "",
        "note": "not produced",
        "target": "< 2",
        "kind": "speed",
        "meets": None,
    }
    assert built["failures"] == []


def test_external_json_merges_every_scalar_key_and_names_the_missing_ones() -> None:
    data = json.loads(
        '{"faults_acked_lost": 0, "faults_applied_twice": 1, "notices_sent": 2400,'
        ' "by_kind": {"kill": 3}, "label": "storm"}'
    )
    merged = report.merge_external(data, "notice storm", keys=report.FAULT_KEYS)
    assert merged["faults_applied_twice"] == report.figure(1, "notice storm")
    assert merged["label"]["value"] == "storm"
    assert "by_kind" not in merged  # nested objects stay in the scenario, not the table
    assert merged["notices_acked"] == report.figure(None, "notice storm", "not reported")

    built = build({"faults": outcome(merged)})
    assert built["failures"] == ["faults_applied_twice: 1 misses = 0"]


def test_a_program_that_has_not_run_leaves_null_figures_that_do_not_fail() -> None:
    built = build({"freshness": outcome(report.not_run(report.FRESHNESS_KEYS, "not run"))})
    entry = built["figures"]["freshness_gain_vs_uniform"]
    assert (entry["value"], entry["meets"], entry["note"], entry["target"]) == (
        None,
        None,
        "not run",
        ">= 2",
    )
    assert built["failures"] == []


def test_the_markdown_table_has_one_row_per_figure_with_value_target_meets_conditions() -> None:
    built = build(
        {
            "sync": outcome(
                {
                    "request_economy_full": report.figure(1.0, "10,000 products, 0 ms"),
                    "full_sync_cpu_ms_per_product": report.figure(2.391, "10,000 products"),
                    "extra_count": report.figure(12345, "info only"),
                }
            )
        }
    )
    lines = report.render_markdown(built).splitlines()
    assert "| figure | value | target | meets | conditions |" in lines
    assert "| request_economy_full | 1.00 | = 1.00 | yes | 10,000 products, 0 ms |" in lines
    assert "| full_sync_cpu_ms_per_product | 2.39 | <= 1.5 ms | **no** | 10,000 products |" in lines
    assert "| extra_count | 12,345 |  |  | info only |" in lines
    assert "| faults_acked_lost | – | = 0 |  | not produced |" in lines
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    names = [row.split(" | ")[0][2:] for row in rows[1:]]
    assert names.index("request_economy_full") < names.index("faults_acked_lost")
    assert "2 cores (test CPU)" in lines[2]


def test_the_intake_is_served_with_the_procfile_web_options() -> None:
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line[:4] == "web:")
    options = procfile_options()
    assert "--bind" not in options
    assert options[:2] == ["-c", "python:worker.gunicorn_conf"]
    for flag in ("--workers", "--worker-class", "--threads", "--timeout"):
        assert flag in shlex.split(web) and flag in options
    assert options[options.index("--worker-class") + 1] == "gthread"
