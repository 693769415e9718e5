"""deploy/compose.yaml names only settings newsbot has, and runs the commands newsbot has."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from bot.cli import cli
from bot.settings import Settings

COMPOSE = Path(__file__).resolve().parents[1] / "deploy" / "compose.yaml"


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_newsbot_variable_in_the_compose_file_is_a_setting():
    known = {f"NEWSBOT_{name.upper()}" for name in Settings.model_fields}
    named = {
        key
        for service in _services().values()
        for key in (service.get("environment") or {})
        if key.startswith("NEWSBOT_")
    }
    assert named, "the replicas and the worker are configured through NEWSBOT_* variables"
    assert named <= known, sorted(named - known)


def test_the_layout_is_one_worker_two_replicas_one_database():
    services = _services()
    replicas = [s for s in services.values() if s.get("command") == ["serve"]]
    assert len(replicas) == 2
    for replica in replicas:
        assert replica["environment"]["NEWSBOT_STORE"] == "postgres"
        assert replica["environment"]["NEWSBOT_WEBHOOK_URL"].startswith("https://")
    worker = " ".join(services["worker"]["command"])
    assert "newsbot db migrate" in worker and "newsbot refresh" in worker
    assert services["db"]["image"].startswith("pgvector/pgvector:")


def test_the_commands_the_compose_file_runs_exist():
    runner = CliRunner()
    for command in (["db", "migrate", "--help"], ["refresh", "--help"], ["serve", "--help"]):
        assert runner.invoke(cli, command).exit_code == 0, command
