#!/opt/hydra/jupyter/bin/python
"""Kernel round trip through the proxy: create kernel (REST), open the
channels websocket, execute `1+1`, expect execute_result '2', delete kernel.

Usage:
  kernel_roundtrip.py BASE_URL USER --token TOKEN
  kernel_roundtrip.py BASE_URL USER --cookie 'username-...=...; _xsrf=X' --xsrf X
Options: --origin ORIGIN (default: BASE_URL's origin), --host HOST (Host header
override, e.g. site.example, to emulate the public name), --unix-socket PATH
(talk to the Jupyter socket directly; BASE_URL is then ignored), --insecure (an https
BASE_URL whose certificate is not checked: a Slurm job's own, pinned by hydra instead).
Only needs tornado (present in the Jupyter venv).
"""
import argparse
import asyncio
import json
import sys
from urllib.parse import urlparse

from tornado.httpclient import AsyncHTTPClient

from kernel_client import delete_kernel, run_code, start_kernel, unix_resolver


def headers_for(a, ws=False):
    h = {}
    if a.token:
        h["Authorization"] = f"token {a.token}"
    if a.cookie:
        h["Cookie"] = a.cookie
    if a.xsrf and not ws:
        h["X-XSRFToken"] = a.xsrf
    if a.host:
        h["Host"] = a.host
    h["Origin"] = a.origin
    for extra in a.header or []:
        k, v = extra.split(":", 1)
        h[k.strip()] = v.strip()
    return h


async def main(a):
    resolver = None
    if a.unix_socket:  # every connection goes to the Unix socket
        resolver = unix_resolver(a.unix_socket)
        AsyncHTTPClient.configure(None, resolver=resolver)
        base = "http://localhost"
    else:
        base = a.base_url.rstrip("/")
    prefix = f"/user/{a.user}"
    client = AsyncHTTPClient()

    verify = not a.insecure
    kid, code, conn = await start_kernel(client, base, prefix, headers_for(a), headers_for(a, ws=True), resolver, verify)
    print("kernel", kid, "HTTP", code)

    if a.idle:  # idle on the websocket (tests proxy timeouts / server pings).
        # Keep reading: tornado's client only answers pings while its 1-slot
        # read queue is drained.
        end = asyncio.get_running_loop().time() + a.idle
        while (left := end - asyncio.get_running_loop().time()) > 0:
            try:
                if await asyncio.wait_for(conn.read_message(), left) is None:
                    raise SystemExit("websocket closed while idle")
            except asyncio.TimeoutError:
                break
    try:
        printed = []
        result, _ = await run_code(conn, a.code, user=a.user, printed=printed)
    except ConnectionError as error:
        raise SystemExit(str(error))
    conn.close()
    deleted = await delete_kernel(client, base, prefix, kid, headers_for(a), verify)
    if a.show_printed:
        print("printed:", json.dumps("".join(printed)))
    print("execute_result:", result, "| delete HTTP", deleted)
    return 0 if result == a.expect else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("base_url")
    p.add_argument("user")
    p.add_argument("--token")
    p.add_argument("--cookie")
    p.add_argument("--xsrf")
    p.add_argument("--origin")
    p.add_argument("--host")
    p.add_argument("--header", action="append", help="extra 'Name: value' header (e.g. site auth)")
    p.add_argument("--unix-socket")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--code", default="1+1")
    p.add_argument("--expect", default="2")
    p.add_argument("--show-printed", action="store_true", help="also print (as JSON) the cell's streams and tracebacks")
    p.add_argument("--idle", type=float, default=0, help="seconds to idle on the open websocket first")
    a = p.parse_args()
    if not a.origin:
        u = urlparse(a.base_url)
        a.origin = f"{u.scheme}://{a.host or u.netloc}"
    sys.exit(asyncio.run(main(a)))
