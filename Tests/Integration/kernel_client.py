"""The Jupyter kernel protocol as a notebook tab speaks it over the channels websocket: one
`execute_request` and its answer, and a kernel started and deleted through the REST API. Shared
by kernel_roundtrip.py (the tests) and scripts/bench.py. Needs only tornado (present in the
Jupyter and JupyterHub venvs)."""
import asyncio
import json
import socket
import time
import uuid
from datetime import datetime, timezone

from tornado import netutil
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


def unix_resolver(path):
    """A tornado resolver that sends every connection to the Unix socket `path` (a server's own)."""
    class UnixResolver(netutil.Resolver):
        async def resolve(self, host, port, family=socket.AF_UNSPEC):
            return [(socket.AF_UNIX, path)]
    return UnixResolver()


async def start_kernel(client, base, prefix, headers, ws_headers, resolver=None, validate_cert=True):
    """A python3 kernel POSTed to the server at BASE + PREFIX and its channels websocket opened:
    (kernel id, the POST's status, the websocket connection)."""
    response = await client.fetch(HTTPRequest(f"{base}{prefix}/api/kernels", method="POST", validate_cert=validate_cert,
                                              headers=headers, body=json.dumps({"name": "python3"})))
    kernel = json.loads(response.body)["id"]
    url = base.replace("http", "ws", 1) + f"{prefix}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
    connection = await websocket_connect(HTTPRequest(url, headers=ws_headers, validate_cert=validate_cert), resolver=resolver)
    return kernel, response.code, connection


async def delete_kernel(client, base, prefix, kernel, headers, validate_cert=True):
    """DELETEs the kernel; returns the status."""
    response = await client.fetch(HTTPRequest(f"{base}{prefix}/api/kernels/{kernel}", method="DELETE",
                                              validate_cert=validate_cert, headers=headers))
    return response.code


def execute_request(code, user="hydra-test"):
    """(message id, the execute_request message as text) for the channels websocket."""
    msg_id = uuid.uuid4().hex
    return msg_id, json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": user, "session": uuid.uuid4().hex,
                   "version": "5.3", "date": datetime.now(timezone.utc).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}})


async def run_code(connection, code, user="hydra-test", timeout=30, printed=None):
    """Executes `code` on the kernel behind `connection`. Returns (its result's text/plain, or
    "ERROR <name>", or None when it printed no result; milliseconds until both the shell's
    execute_reply and the kernel's return to idle arrived; iopub keeps its order, so the result
    is in by then). Raises ConnectionError when the websocket closes first. With a list as
    `printed`, what the cell shows besides its result is appended to it: streams, tracebacks."""
    msg_id, message = execute_request(code, user)
    started = time.perf_counter()
    connection.write_message(message)
    result, replied, idle = None, False, False
    while not (replied and idle):
        raw = await asyncio.wait_for(connection.read_message(), timeout)
        if raw is None:
            raise ConnectionError("websocket closed")
        answer = json.loads(raw)
        if answer.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = answer["header"]["msg_type"]
        if kind == "execute_result":
            result = answer["content"]["data"]["text/plain"]
        elif kind == "error":
            result = "ERROR " + answer["content"]["ename"]
            if printed is not None:
                printed.append("\n".join(answer["content"]["traceback"]) + "\n")
        elif kind == "stream" and printed is not None:
            printed.append(answer["content"]["text"])
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and answer["content"]["execution_state"] == "idle":
            idle = True
    return result, (time.perf_counter() - started) * 1000
