#!/opt/hydra/jupyter/bin/python
"""A class's open notebooks, as websockets through the site: opens PER_PERSON websockets for each
person (by default Jupyter's events API, which every open JupyterLab holds), keeps them open for
HOLD seconds, pings each every PING seconds and counts the pongs, then reports.

Reads the crowd from stdin as JSON: {"site": "http://localhost", "path": "api/events/subscribe",
"per_person": 20, "hold": 60, "ping": 10, "people": [{"user": "...", "headers": {...}}]}.
Prints one JSON line when every websocket has been tried ({"event": "open", ...}), then holds,
then one more ({"event": "done", ...}). Also used by scripts/bench. Needs only tornado.
"""
import asyncio
import json
import resource
import sys
import time

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

PONGS = {}


def count_pong(self, data):
    PONGS[id(self)] = PONGS.get(id(self), 0) + 1


WebSocketClientConnection.on_pong = count_pong


async def open_one(site, path, person, index):
    url = site.replace("http", "ws", 1).rstrip("/") + f"/user/{person['user']}/{path}"
    started = time.monotonic()
    try:
        connection = await websocket_connect(HTTPRequest(url, headers=person["headers"], connect_timeout=60, request_timeout=60))
        return {"user": person["user"], "index": index, "connection": connection, "seconds": time.monotonic() - started}
    except Exception as error:  # noqa: BLE001 (every failure is a figure)
        status = getattr(error, "code", None)
        return {"user": person["user"], "index": index, "error": f"{type(error).__name__}: {error}", "status": status,
                "seconds": time.monotonic() - started}


async def main(spec):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    site, path = spec["site"], spec.get("path", "api/events/subscribe")
    # At most 64 handshakes at once, as a class arriving over a minute would.
    gate = asyncio.Semaphore(spec.get("concurrency", 64))

    async def bounded(person, index):
        async with gate:
            return await open_one(site, path, person, index)

    attempts = await asyncio.gather(*(bounded(p, i) for p in spec["people"] for i in range(spec["per_person"])))
    opened = [a for a in attempts if "connection" in a]
    failed = [{k: v for k, v in a.items() if k != "connection"} for a in attempts if "connection" not in a]
    connect_times = sorted(a["seconds"] for a in opened)
    print(json.dumps({"event": "open", "opened": len(opened), "failed": failed[:20], "failed_count": len(failed),
                      "connect_p50": connect_times[len(connect_times) // 2] if connect_times else None,
                      "connect_max": connect_times[-1] if connect_times else None}), flush=True)

    pings = 0
    deadline = time.monotonic() + spec["hold"]
    while time.monotonic() < deadline:
        for entry in opened:
            connection = entry["connection"]
            if connection.protocol is not None:
                connection.ping(b"hydra")
                pings += 1
        await asyncio.sleep(min(spec.get("ping", 10), max(0.0, deadline - time.monotonic())))
    await asyncio.sleep(1)  # the last pongs
    still_open = [e for e in opened if e["connection"].protocol is not None and e["connection"].close_code is None]
    answered = sum(1 for e in opened if PONGS.get(id(e["connection"]), 0) > 0)
    for entry in opened:
        entry["connection"].close()
    print(json.dumps({"event": "done", "opened": len(opened), "open_at_end": len(still_open), "pings": pings,
                      "pongs": sum(PONGS.values()), "answered_pings": answered,
                      "closed_early": [{"user": e["user"], "index": e["index"], "code": e["connection"].close_code,
                                        "reason": e["connection"].close_reason}
                                       for e in opened if e not in still_open][:20]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.load(sys.stdin)))
