"""A local Web Push service for the tests, written against the RFCs with independent code:
Python's `http_ece` decrypts (RFC 8291 / RFC 8188 aes128gcm) and `cryptography` verifies the
VAPID JWT (RFC 8292, ES256). It plays the browser's part too: it makes the subscriptions (a P-256
key pair and an auth secret each), so it can decrypt what is pushed to them.

    python3 push_service.py        prints "listening PORT", then serves on 127.0.0.1:PORT

GET  /new?status=201|410|404   a fresh subscription (PushSubscription.toJSON()); pushes to it
                               are answered with that status
POST /push/ID                  a push: checked, decrypted and recorded
GET  /received/ID              what was pushed to ID: [{"vapid": ..., "payload": ..., "error": ...}]
"""

import base64
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

LOCK = threading.Lock()
SUBSCRIPTIONS = {}  # id -> {"key": private key, "auth": bytes, "status": int, "received": [...]}


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def check_vapid(header, audiences):
    """Verifies `Authorization: vapid t=<jwt>, k=<key>`; returns the JWT claims or raises.
    `aud` must be this service's origin: with its port, as RFC 8292 means, or without it, as the
    sender's library (web-push-native 0.5) writes it; push services on port 443 see no
    difference."""
    if not header.startswith("vapid "):
        raise ValueError(f"not a vapid authorization: {header!r}")
    fields = dict(part.strip().split("=", 1) for part in header[len("vapid "):].split(","))
    token, key = fields["t"], fields["k"]
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    head, body, signature = token.split(".")
    if json.loads(b64url_decode(head)).get("alg") != "ES256":
        raise ValueError("the JWT is not ES256")
    raw = b64url_decode(signature)
    if len(raw) != 64:
        raise ValueError("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("the VAPID signature does not verify") from None
    claims = json.loads(b64url_decode(body))
    now = time.time()
    if claims.get("aud") not in audiences:
        raise ValueError(f"aud {claims.get('aud')!r} is not one of {audiences!r}")
    if not now < claims.get("exp", 0) <= now + 24 * 3600:
        raise ValueError(f"exp {claims.get('exp')} is not within 24 h")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise ValueError(f"sub {claims.get('sub')!r} is not a contact")
    return {"claims": claims, "key": key}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        port = self.server.server_address[1]
        if url.path == "/new":
            status = int(parse_qs(url.query).get("status", ["201"])[0])
            key = ec.generate_private_key(ec.SECP256R1())
            auth = os.urandom(16)
            sub_id = b64url(os.urandom(9))
            with LOCK:
                SUBSCRIPTIONS[sub_id] = {"key": key, "auth": auth, "status": status, "received": []}
            public = key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            subscription = {
                "endpoint": f"http://127.0.0.1:{port}/push/{sub_id}",
                "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
            }
            return self.answer(200, json.dumps({"id": sub_id, "subscription": subscription}).encode())
        if url.path.startswith("/received/"):
            with LOCK:
                sub = SUBSCRIPTIONS.get(url.path.rsplit("/", 1)[1])
                received = list(sub["received"]) if sub else None
            if received is None:
                return self.answer(404)
            return self.answer(200, json.dumps(received).encode())
        self.answer(404)

    def do_POST(self):
        url = urlparse(self.path)
        port = self.server.server_address[1]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with LOCK:
            sub = SUBSCRIPTIONS.get(url.path.rsplit("/", 1)[1]) if url.path.startswith("/push/") else None
        if sub is None:
            return self.answer(404)
        record = {"vapid": None, "payload": None, "error": None, "ttl": self.headers.get("TTL")}
        try:
            if self.headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError(f"Content-Encoding {self.headers.get('Content-Encoding')!r}")
            origins = (f"http://127.0.0.1:{port}", "http://127.0.0.1")
            record["vapid"] = check_vapid(self.headers.get("Authorization", ""), origins)
            plain = http_ece.decrypt(body, private_key=sub["key"], auth_secret=sub["auth"], version="aes128gcm")
            record["payload"] = json.loads(plain)
        except Exception as error:  # recorded for the test to assert on
            record["error"] = f"{type(error).__name__}: {error}"
        with LOCK:
            sub["received"].append(record)
        self.answer(sub["status"] if record["error"] is None else 400)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    # The test closes stdin when it is done; the service then stops by itself.
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
