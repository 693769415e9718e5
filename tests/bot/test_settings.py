"""Settings: every one documented, secrets kept secret, bad values refused clearly."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings

ROOT = Path(__file__).parents[2]


def test_env_example_documents_every_setting():
    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"NEWSBOT_{name.upper()}=" in example, (
            f"NEWSBOT_{name.upper()} is not in .env.example"
        )


def test_settings_come_from_the_environment_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("NEWSBOT_TOP_K=7\nNEWSBOT_TELEGRAM_TOKEN=123:secret-token\n")
    monkeypatch.setenv("NEWSBOT_CHUNK_SIZE", "90")
    settings = Settings()
    assert (settings.top_k, settings.chunk_size) == (7, 90)
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == "123:secret-token"
    assert "secret-token" not in repr(settings) and "secret-token" not in str(settings)


def test_overlap_must_be_smaller_than_chunk_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_size=50, chunk_overlap=50)
