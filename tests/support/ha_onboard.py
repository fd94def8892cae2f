"""Onboards a fresh Home Assistant and prints a long-lived access token.

Run with Home Assistant's own Python (its venv has aiohttp), not the project's:

    <ha venv>/bin/python tests/support/ha_onboard.py http://127.0.0.1:8123

The steps are the ones Home Assistant's frontend takes (onboarding API, then the
OAuth code exchange, then the websocket command ``auth/long_lived_access_token``),
see homeassistant/components/onboarding/views.py and auth/__init__.py in 2024.3.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp


async def _onboard(base: str) -> str:
    client_id = f"{base}/"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/api/onboarding/users",
            json={
                "client_id": client_id,
                "name": "Test owner",
                "username": "owner",
                "password": "owner-password-for-tests",
                "language": "en",
            },
        ) as response:
            response.raise_for_status()
            code = (await response.json())["auth_code"]
        async with session.post(
            f"{base}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
        ) as response:
            response.raise_for_status()
            access = (await response.json())["access_token"]
        ws_url = base.replace("http://", "ws://") + "/api/websocket"
        async with session.ws_connect(ws_url) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "auth_required", hello
            await ws.send_json({"type": "auth", "access_token": access})
            ok = await ws.receive_json()
            if ok["type"] != "auth_ok":
                raise RuntimeError(f"websocket auth failed: {ok}")
            await ws.send_json(
                {
                    "id": 1,
                    "type": "auth/long_lived_access_token",
                    "client_name": "reorder-gateway tests",
                    "lifespan": 30,
                }
            )
            answer = await ws.receive_json()
            if not answer.get("success"):
                raise RuntimeError(f"no long-lived token: {answer}")
            return str(answer["result"])


if __name__ == "__main__":
    print(asyncio.run(_onboard(sys.argv[1].rstrip("/"))))
