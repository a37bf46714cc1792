#!/usr/bin/python3
"""A small token server for the distribution registry's `token` auth, for tests only.

    token_server.py --port-file FILE --cert-out PEM --log FILE --credentials FILE
                    [--issuer ISS] [--service SVC] [--expires-in SECONDS] [--grant ACTIONS]
                    [--anonymous-401] [--tls-cert PEM --tls-key PEM] [--listen HOST]

Binds HOST:0 (127.0.0.1 by default) and writes the chosen port to --port-file once it listens.
At start it makes an RSA key and a self-signed certificate for it, written to --cert-out: that
file is the registry's `rootcertbundle`. Tokens are JWTs signed RS256 whose header carries the
certificate in `x5c`; the registry verifies that chain against rootcertbundle.

GET /token?service=SVC&scope=repository:NAME:pull,push[&scope=...][&account=USER]
    with optional Basic auth. --credentials holds `user:password` lines. A right password gets
    every requested action that --grant allows (default pull,push,delete,*) on each scope; no
    credentials get a token with an empty `access` list (or 401 with --anonymous-401); a wrong
    password or an unknown user gets 401. The answer is
    {"token", "access_token", "expires_in", "issued_at"}.
POST /token (OAuth2, form-encoded): grant_type=password (username, password) or
    grant_type=refresh_token (refresh_token), plus service, scope (space-separated) and
    client_id. A password grant also returns a `refresh_token`.

Every request is logged to --log as one line, without secrets, e.g.
    GET /token user=tester auth=basic service=S scope=repository:a:pull,push -> 200 \
        access=repository:a:pull,push        (one line; wrapped here)
so tests can count token requests (caching) and see which scopes were asked for.
"""

import argparse
import base64
import datetime
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_signing_identity(cert_out):
    """Returns (private key, base64 DER certificate) and writes the certificate PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minibuild test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    tmp = cert_out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, cert_out)
    return key, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def parse_scope(scope):
    """"repository:a/b:pull,push" -> ("repository", "a/b", ["pull", "push"]); None if malformed.

    The name sits between the first and the last colon (a name never holds one, but a
    registry-prefixed one could)."""
    first, last = scope.find(":"), scope.rfind(":")
    if first <= 0 or last == first:
        return None
    return scope[:first], scope[first + 1:last], [a for a in scope[last + 1:].split(",") if a]


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, options):
        super().__init__(address, TokenHandler)
        self.options = options
        self.users = {}
        with open(options.credentials) as f:
            for line in f:
                user, sep, password = line.rstrip("\n").partition(":")
                if sep:
                    self.users[user] = password
        self.key, self.cert_b64 = make_signing_identity(options.cert_out)
        self.grant = set(a for a in options.grant.split(",") if a)
        self.refresh_tokens = {}  # refresh token -> user
        self.lock = threading.Lock()
        self.log_file = open(options.log, "a", buffering=1)

    def log_line(self, line):
        with self.lock:
            self.log_file.write(line + "\n")

    def issue(self, user, service, scopes):
        """Returns (JWT, granted access list)."""
        access = []
        if user is not None:
            for scope in scopes:
                parsed = parse_scope(scope)
                if parsed is None:
                    continue
                kind, name, actions = parsed
                allowed = [a for a in actions if a in self.grant]
                if allowed:
                    access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.cert_b64]}
        claims = {
            "iss": self.options.issuer,
            "sub": user or "",
            "aud": service,
            "exp": now + self.options.expires_in,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature), access


class TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minibuild-test-token-server"

    def log_message(self, fmt, *args):
        pass  # our own log line replaces http.server's stderr line

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="minibuild-test-token"')
        self.end_headers()
        self.wfile.write(data)

    def reply(self, status, body, log):
        self.send_json(status, body)
        self.server.log_line(f"{log} -> {status}")

    def token_reply(self, user, service, scopes, log, refresh=False):
        token, access = self.server.issue(user, service, scopes)
        body = {
            "token": token,
            "access_token": token,
            "expires_in": self.server.options.expires_in,
            "issued_at": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
        }
        if refresh and user is not None:
            refresh_token = secrets.token_hex(16)
            with self.server.lock:
                self.server.refresh_tokens[refresh_token] = user
            body["refresh_token"] = refresh_token
        self.send_json(200, body)
        granted = " ".join(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
        self.server.log_line(f"{log} -> 200 access={granted or 'none'}")

    def check_password(self, user, password):
        expected = self.server.users.get(user)
        return expected is not None and secrets.compare_digest(expected, password)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [""])[0]
        scopes = query.get("scope", [])
        log = f"GET {url.path}"
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]}, log)
        user = None
        authorization = self.headers.get("Authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except ValueError:
                decoded = ""
            name, _, password = decoded.partition(":")
            log += f" user={name} auth=basic"
            if not self.check_password(name, password):
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "bad credentials"}]},
                                  log + f" service={service} scope={' '.join(scopes)}")
            user = name
        else:
            log += " user=- auth=none"
        log += f" service={service} scope={' '.join(scopes)}"
        if user is None and self.server.options.anonymous_401:
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                "message": "anonymous access refused"}]}, log)
        self.token_reply(user, service, scopes, log)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0") or "0")
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        get = lambda k: form.get(k, [""])[0]
        grant_type, service = get("grant_type"), get("service")
        scopes = [s for s in get("scope").split(" ") if s]
        log = f"POST {url.path} grant_type={grant_type} client_id={get('client_id')}"
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]}, log)
        if grant_type == "password":
            user = get("username")
            log += f" user={user} service={service} scope={' '.join(scopes)}"
            if not self.check_password(user, get("password")):
                return self.reply(401, {"error": "invalid_grant"}, log)
            return self.token_reply(user, service, scopes, log, refresh=True)
        if grant_type == "refresh_token":
            with self.server.lock:
                user = self.server.refresh_tokens.get(get("refresh_token"))
            log += f" user={user or '-'} service={service} scope={' '.join(scopes)}"
            if user is None:
                return self.reply(401, {"error": "invalid_grant"}, log)
            return self.token_reply(user, service, scopes, log)
        return self.reply(400, {"error": "unsupported_grant_type"}, log)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--cert-out", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--issuer", default="minibuild-test-issuer")
    parser.add_argument("--service", default="minibuild-test-registry")
    parser.add_argument("--expires-in", type=int, default=300)
    parser.add_argument("--grant", default="pull,push,delete,*")
    parser.add_argument("--anonymous-401", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    options = parser.parse_args()

    server = TokenServer((options.listen, 0), options)
    if options.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options.tls_cert, options.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    tmp = options.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, options.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
