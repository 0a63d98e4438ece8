#!/usr/bin/python3
"""Participants for the control API fuzzing (scripts/api-fuzz.sh): joins every identity
of every room given over signaling (no media) and keeps the sockets open, so that the
participant routes schemathesis calls meet real participants, not only 404s.

    participants.py http://127.0.0.1:7880 ROOMS IDENTITIES

ROOMS and IDENTITIES are comma-separated. Prints "ready" when all have joined. No one
joins again once removed: a removed participant (or a deleted room) must stay gone, or
schemathesis's use-after-free check would see it come back.
"""
import asyncio
import base64
import json
import sys
import urllib.request

import websockets

BASE = sys.argv[1]
ROOMS = sys.argv[2].split(",")
IDENTITIES = sys.argv[3].split(",")
AUTH = "Basic " + base64.b64encode(b"devkey:devsecret-change-me-0123456789abcdef").decode()


def signaling_url(room, identity):
    body = json.dumps({"room": room, "identity": identity}).encode()
    request = urllib.request.Request(
        BASE + "/v1/tokens",
        data=body,
        headers={"authorization": AUTH, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = json.load(answer)
    return token["url"] + "?access_token=" + token["token"]


async def join(room, identity):
    """Joins; returns the socket once `joined` arrived."""
    url = await asyncio.to_thread(signaling_url, room, identity)
    ws = await websockets.connect(url, open_timeout=10, ping_interval=None)
    await ws.send(json.dumps({"type": "join"}))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("type") == "joined":
            return ws
        if message.get("type") == "error":
            raise RuntimeError(f"{room}/{identity}: {message}")


async def stay(ws):
    """Reads (and ignores) what the server sends until it closes the socket."""
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


async def main():
    sockets = []
    for room in ROOMS:
        for identity in IDENTITIES:
            sockets.append(await join(room, identity))
    print("ready", flush=True)
    await asyncio.gather(*(stay(ws) for ws in sockets))
    # Everyone removed: wait to be stopped.
    await asyncio.Event().wait()


asyncio.run(main())
