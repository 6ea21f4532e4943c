"""Small network tools the VPC tests run inside a namespace of their own (``nsenter --net=...``):

- ``serve ADDR PORT``: an HTTP server answering every GET with the caller's address (what a
  server "on the internet" sees of an instance: its EIP, or the host's address after SNAT);
- ``fetch URL TIMEOUT``: one GET; prints a JSON line ``{"ok", "status", "body", "bytes",
  "seconds"}`` (``body`` holds at most 200 bytes; ``seconds`` is the transfer's duration from the
  first byte of the answer, so a rate is ``bytes / seconds``).

Standard library only: it runs with whichever Python runs the tests.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import sys
import time
import urllib.error
import urllib.request


class EchoPeer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(addr: str, port: int) -> None:
    srv = Server((addr, port), EchoPeer)
    print("listening", flush=True)
    srv.serve_forever()


def fetch(url: str, timeout: float) -> dict:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            first = r.read(1)
            t0 = time.monotonic()
            rest = r.read()
            seconds = time.monotonic() - t0
            data = first + rest
            return {"ok": True, "status": r.status, "body": data[:200].decode(errors="replace"),
                    "bytes": len(data), "seconds": seconds, "total": time.monotonic() - started}
    except urllib.error.HTTPError as e:
        return {"ok": False, "status": e.code, "error": str(e), "total": time.monotonic() - started}
    except (OSError, ValueError) as e:
        return {"ok": False, "status": None, "error": f"{type(e).__name__}: {e}", "total": time.monotonic() - started}


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "serve" and len(sys.argv) == 4:
        serve(sys.argv[2], int(sys.argv[3]))
        return 0
    if cmd == "fetch" and len(sys.argv) == 4:
        print(json.dumps(fetch(sys.argv[2], float(sys.argv[3]))), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
