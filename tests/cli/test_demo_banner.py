"""The demo's banner ends with the API key and says where the key is kept."""

from __future__ import annotations

from billbyte.cli import _demo_banner


def test_demo_banner_prints_the_key_last_with_its_file() -> None:
    result = {
        "msp_id": "msp_demo",
        "customers": 2,
        "api_key": "bb_abc_secret",
        "sign_in": {
            "staff": {"admin": "admin@example.test"},
            "portal_url": "http://127.0.0.1:8000/portal",
            "portal_users": ["user@example.test"],
            "console_url": "http://127.0.0.1:8000/console",
            "password": "demo-password",
        },
    }
    lines = _demo_banner(result).splitlines()
    assert lines[-1] == "Demo admin API key (also in var/demo_api_key): bb_abc_secret"
    assert sum("bb_abc_secret" in line for line in lines) == 1
    assert any("http://127.0.0.1:8000/portal" in line for line in lines[:-1])
