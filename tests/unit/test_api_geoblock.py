"""geoblock through the API on a node started with --geoip-db: switched on, stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ApiHarness, api_settings_for

from pullzone.config import Settings


@pytest.fixture()
def api_settings(tmp_path: Path) -> Settings:
    # The API only asks whether the node has a database; the edge workers open it.
    return api_settings_for(tmp_path / "data", geoip_db=str(tmp_path / "countries.mmdb"))


async def test_geoblock_switches_on_when_the_node_has_a_geoip_db(api: ApiHarness) -> None:
    zone: dict[str, Any] = await api.create(geoblock={"enabled": "Y", "list": "fr,DE"})
    assert zone["geoblock"]["enabled"] == "Y"
    assert zone["geoblock"]["active"] == "Y"
    assert zone["geoblock"]["list"] == ["FR", "DE"]
    response = await api.client.post(
        f"/zones/http/pull/{zone['id']}/geoblock", json={"policy": "N", "ips": "10.0.0.0/8"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["zone"]["geoblock"]["policy"] == "N"
