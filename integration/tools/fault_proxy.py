#!/usr/bin/python3
"""An HTTP/1.1 reverse proxy that injects faults, put between a client and a test registry.

    fault_proxy.py --upstream HOST:PORT --plan FILE --log FILE --port-file FILE [--listen HOST]

Binds HOST:0 (127.0.0.1 by default), writes the chosen port to --port-file, then forwards every
request to the plain-HTTP upstream: keep-alive on both sides, bodies streamed (Content-Length or
chunked, both ways), the Host header kept, so the registry's Location URLs point at the proxy.

The fault plan is the JSON file --plan, re-read on every request (a missing or empty file means
no faults). It is a list of rules, or {"rules": [...]}; the first rule that matches a request and
has hits left decides what happens to it:

    {"method": "GET|HEAD",        regex, full match on the method (default: any)
     "path": "/blobs/sha256:",    regex, searched in the request target (default: any)
     "times": 1,                  how many matching requests the rule hits (default: all)
     ...one action...}

Actions:
    "status": 503                 answer 503 without asking the upstream, with a registry-style
                                  JSON error body; "retry_after": "2" adds a Retry-After header,
                                  "headers": {...} adds more.
    "drop": true | "after"        close the connection without answering: before forwarding
                                  (true) or after the upstream has handled the request ("after":
                                  the registry did the work, the client never hears of it).
    "truncate_after": BYTES       forward, send the upstream's headers (full Content-Length), then
                                  close after BYTES bytes of body.
    "corrupt_byte": OFFSET        forward, flipping every bit of body byte OFFSET.
    "delay": SECONDS              sleep before handling; alone it then passes the request through,
                                  with another action it delays that action.

Hit counters belong to the plan's content: writing a different plan starts them again (the
registry_lib.sh helper adds a generation number so that even the same rules start again).

A request whose target is an absolute http:// URI (a client using this process as its
http_proxy) is forwarded to the upstream like any other, and logged once more as
"METHOD forward-proxy-request for HOST".

Every request gets one log line in --log: the rule that hit it (- for none), the action, the
status sent, the request body bytes read, and the response body bytes sent/read from upstream:
    GET /v2/a/blobs/sha256:ab.. rule=0 action=truncate_after:10 status=200 req=0 body=10/65536
    PATCH /v2/a/blobs/uploads/x?.. rule=- action=pass status=202 req=300337 body=0/0
    GET /v2/ rule=1 action=drop status=- req=0 body=0/0
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
CHUNK = 64 * 1024
ERROR_CODES = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND", 429: "TOOMANYREQUESTS"}


class ClientGone(Exception):
    """The client closed its connection while we were reading or writing."""


class Plan:
    """The rules from the control file, with hit counters keyed by the file's content."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.hits = {}  # (content sha256, rule index) -> hits so far

    def choose(self, method, target):
        """Returns (rule index, rule) for the first matching rule with hits left, or None."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        if not raw.strip():
            return None
        plan = json.loads(raw)
        rules = plan.get("rules", []) if isinstance(plan, dict) else plan
        key = hashlib.sha256(raw).hexdigest()
        with self.lock:
            for index, rule in enumerate(rules):
                if not re.fullmatch(rule.get("method", ".*"), method):
                    continue
                if not re.search(rule.get("path", ""), target):
                    continue
                done = self.hits.get((key, index), 0)
                times = rule.get("times")
                if times is not None and done >= times:
                    continue
                self.hits[(key, index)] = done + 1
                return index, rule
        return None


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, options):
        super().__init__(address, ProxyHandler)
        host, _, port = options.upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.plan = Plan(options.plan)
        self.log_lock = threading.Lock()
        self.log_file = open(options.log, "a", buffering=1)

    def log_line(self, line):
        with self.log_lock:
            self.log_file.write(line + "\n")


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.upstream = None

    def finish(self):
        if self.upstream is not None:
            self.upstream.close()
        try:
            super().finish()
        except OSError:
            pass  # the client is gone; nothing left to flush

    def log_message(self, fmt, *args):
        pass  # one line per request in our own log instead

    # ---- the client side ----

    def read_body(self):
        """Yields the request body in pieces, de-chunked; yields nothing without a body."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                while True:
                    line = self.rfile.readline(1024)
                    if not line:
                        raise ClientGone()
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass  # trailers are dropped
                        return
                    while size > 0:
                        piece = self.rfile.read(min(size, CHUNK))
                        if not piece:
                            raise ClientGone()
                        size -= len(piece)
                        self.request_bytes += len(piece)
                        yield piece
                    self.rfile.readline(1024)  # the CRLF after each chunk
            else:
                left = int(self.headers.get("Content-Length", "0") or "0")
                while left > 0:
                    piece = self.rfile.read(min(left, CHUNK))
                    if not piece:
                        raise ClientGone()
                    left -= len(piece)
                    self.request_bytes += len(piece)
                    yield piece
        except (ConnectionError, socket.timeout) as e:
            raise ClientGone() from e

    def drain_body(self):
        for _ in self.read_body():
            pass

    def drop_connection(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- the upstream side ----

    def upstream_connection(self):
        """The kept-alive upstream connection, replaced when the upstream has closed it."""
        if self.upstream is not None and self.upstream.sock is not None:
            readable, _, _ = select.select([self.upstream.sock], [], [], 0)
            if readable:  # EOF (or junk) on an idle connection: it is no longer usable
                self.upstream.close()
        if self.upstream is None:
            host, port = self.server.upstream
            self.upstream = http.client.HTTPConnection(host, port, timeout=120)
        return self.upstream

    def forward(self):
        """Sends the request upstream, streaming its body; returns the HTTPResponse."""
        conn = self.upstream_connection()
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            lower = name.lower()
            if lower not in HOP_BY_HOP and not (chunked and lower == "content-length"):
                conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in self.read_body():
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            conn.send(b"0\r\n\r\n")
        return conn.getresponse()

    def forward_with_retry(self):
        """forward(), retried once on a fresh connection when a reused one turns out closed.

        Only for requests without a body: a streamed body cannot be sent twice."""
        reused = self.upstream is not None and self.upstream.sock is not None
        has_body = "chunked" in self.headers.get("Transfer-Encoding", "").lower() or \
            int(self.headers.get("Content-Length", "0") or "0") > 0
        try:
            return self.forward()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused or has_body:
                raise
            self.upstream.close()
            return self.forward()

    # ---- one request ----

    def handle_request(self):
        # A client configured with http_proxy sends the absolute URI ("GET http://host/v2/"):
        # act as that forward proxy too, sending every such request to the upstream.
        if self.path.startswith("http://"):
            rest = self.path[len("http://"):]
            self.path = rest[rest.find("/"):] if "/" in rest else "/"
            self.server.log_line(f"{self.command} forward-proxy-request for {rest.split('/')[0]}")
        target = self.path
        action, status, sent, total = "pass", "-", 0, 0
        self.request_bytes = 0
        try:
            chosen = self.server.plan.choose(self.command, target)
        except (ValueError, re.error, AttributeError, TypeError) as e:
            # A broken plan is a broken test: say so loudly instead of passing through.
            self.server.log_line(f"{self.command} {target} rule=- action=plan-error:{e} status=500")
            self.close_connection = True
            try:
                self.send_injected(500, {})
            except ClientGone:
                pass
            return
        index, rule = chosen if chosen else ("-", {})
        try:
            if "delay" in rule:
                time.sleep(float(rule["delay"]))
                action = f"delay:{rule['delay']}"
            if "status" in rule:
                status = int(rule["status"])
                action = "status"
                self.drain_body()
                self.send_injected(status, rule)
                return
            drop = rule.get("drop")
            if drop is True or drop == "before":
                action = "drop"
                self.drain_body()
                self.drop_connection()
                return
            try:
                response = self.forward_with_retry()
            except ClientGone:
                raise
            except OSError as e:
                if self.upstream is not None:
                    self.upstream.close()
                status, action = 502, action + f" upstream-error:{type(e).__name__}"
                self.send_injected(502, {})
                self.close_connection = True
                return
            status = response.status
            if drop == "after":
                action = "drop:after"
                while response.read(CHUNK):
                    pass
                self.drop_connection()
                return
            truncate = rule.get("truncate_after")
            corrupt = rule.get("corrupt_byte")
            if truncate is not None:
                action = f"truncate_after:{truncate}"
            elif corrupt is not None:
                action = f"corrupt_byte:{corrupt}"
            sent, total = self.relay(response, truncate, corrupt)
        except ClientGone:
            action += " client-gone"
            self.close_connection = True
            if self.upstream is not None:
                self.upstream.close()  # it may hold half a request or an unread answer
        finally:
            self.server.log_line(f"{self.command} {target} rule={index} action={action} "
                                 f"status={status} req={self.request_bytes} body={sent}/{total}")

    def send_injected(self, status, rule):
        code = ERROR_CODES.get(status, "UNAVAILABLE" if status >= 500 else "UNKNOWN")
        body = json.dumps({"errors": [{"code": code, "message": "injected by fault_proxy",
                                       "detail": None}]}).encode()
        if self.command == "HEAD":
            body = b""
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if "retry_after" in rule:
                self.send_header("Retry-After", str(rule["retry_after"]))
            for name, value in rule.get("headers", {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError as e:
            raise ClientGone() from e

    def relay(self, response, truncate, corrupt):
        """Streams the upstream response to the client, applying truncate/corrupt.

        Returns (body bytes sent, body bytes the upstream had for us as far as we read)."""
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        has_length = any(k.lower() == "content-length" for k, _ in headers)
        no_body = self.command == "HEAD" or response.status in (204, 304) or \
            100 <= response.status < 200
        rechunk = not no_body and not has_length
        sent = total = 0
        try:
            self.send_response_only(response.status, response.reason)
            for name, value in headers:
                self.send_header(name, value)
            if rechunk:
                self.send_header("Transfer-Encoding", "chunked")
            if response.will_close:
                self.send_header("Connection", "close")
            self.end_headers()
            if no_body:
                return 0, 0
            while True:
                piece = response.read(CHUNK)
                if not piece:
                    break
                start = total
                total += len(piece)
                if corrupt is not None and start <= int(corrupt) < total:
                    at = int(corrupt) - start
                    piece = piece[:at] + bytes([piece[at] ^ 0xFF]) + piece[at + 1:]
                if truncate is not None and total > int(truncate):
                    piece = piece[:max(0, int(truncate) - start)]
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if rechunk else piece)
                    sent += len(piece)
                if truncate is not None and total > int(truncate):
                    self.wfile.flush()
                    self.drop_connection()
                    self.upstream.close()  # the rest of the upstream body is unread
                    return sent, total
            if rechunk:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except ConnectionError as e:
            self.upstream.close()
            raise ClientGone() from e
        return sent, total

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_request


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file", required=True)
    options = parser.parse_args()

    server = ProxyServer((options.listen, 0), options)
    tmp = options.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, options.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
