"""`pullzone zones set` and `client.zones.update_block`: zone and block fields by name,
against the real API app served on a loopback port."""

from __future__ import annotations

import json

import pytest
import typer
from cli_support import run, said
from conftest import LIVE_ADMIN_KEY

from pullzone.cli.zones import parse_settings
from pullzone.client import Client


def as_admin(url: str) -> dict[str, str]:
    return {"PULLZONE_API_URL": url, "PULLZONE_API_KEY": LIVE_ADMIN_KEY, "COLUMNS": "200"}


def test_settings_become_one_update_body() -> None:
    assert parse_settings(
        ["ipaccess.list=10.0.0.0/8,192.0.2.1", "ipaccess.policy=N", "backup=", "name=a=b"]
    ) == {"ipaccess": {"list": "10.0.0.0/8,192.0.2.1", "policy": "N"}, "backup": "", "name": "a=b"}


@pytest.mark.parametrize(
    "word", ["enabled", "=Y", "a.=1", "a.b.c=1", ".b=1", "name=x name=y", "edge=1 edge.cors=N"]
)
def test_malformed_settings_are_refused(word: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_settings(word.split())


def test_zones_set_changes_blocks_and_shows_them(live_api: str) -> None:
    env = as_admin(live_api)
    made = run("zones", "create", "--name", "s", "--origin", "http://o.test", env=env)
    assert made.exit_code == 0, made.output
    result = run(
        "zones", "set", "s", "geoblock.list=us,de", "edge.compressionlevel=9",
        "securetoken.list=s3cret", "--json", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    zone = json.loads(result.stdout)["zone"]
    assert zone["geoblock"]["list"] == ["US", "DE"]
    assert zone["edge"]["compressionlevel"] == "9"
    shown = said(run("zones", "show", "s", env=env).stdout)
    assert "geoblock.list" in shown and "US,DE" in shown and "securetoken.list" in shown
    refused = run("zones", "set", "s", "ipaccess.list=10.0.0.0/33", env=env)
    assert refused.exit_code == 1
    assert "10.0.0.0/33" in said(refused.stderr)


def test_update_block_in_the_sdk(live_api: str) -> None:
    with Client(live_api, LIVE_ADMIN_KEY) as client:
        zone = client.zones.create("sdk", "http://o.test")
        changed = client.zones.update_block(
            zone.id, "domainlock", list=["example.com", "example.org"], noreferer=True
        )
        assert changed.blocks["domainlock"]["list"] == "example.com,example.org"
        assert changed.blocks["domainlock"]["noreferer"] == "Y"
        assert client.zones.get(zone.id).blocks == changed.blocks
        with pytest.raises(TypeError):
            client.zones.update_block(zone.id, "../keys")
