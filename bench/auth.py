#!/usr/bin/env python3
"""Connect rate with auth off and on: joins welcomed per second, p50/p99 connect time and server
CPU per join, for `switchboard serve` without auth, with an HS256 secret and with an Ed25519
public key (EdDSA), in alternating rounds of one run.

Builds the release binaries, mints the tokens itself (HS256 with hmac; EdDSA with `openssl`),
prints a table and writes it to bench/results/auth-<UTC time>.md. Knobs: ROUNDS (3), COUNT
(5000 joins per round), CONCURRENCY (32).
"""

import base64
import hashlib
import hmac
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, cpu_seconds, publish, utc_stamp
from signaling import BENCH, Server, bench, sh

ROUNDS = int(os.environ.get("ROUNDS", "3"))
COUNT = int(os.environ.get("COUNT", "5000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
SECRET = "a benchmark secret of reasonable length"
KEYS = ROOT / "crates/auth/testdata"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims():
    return b64(json.dumps({"exp": int(time.time()) + 3600, "host": True}).encode())


def hs256_token():
    unsigned = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{claims()}"
    signature = hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64(signature)}"


def eddsa_token():
    unsigned = f"{b64(json.dumps({'alg': 'EdDSA', 'typ': 'JWT'}).encode())}.{claims()}"
    with tempfile.NamedTemporaryFile() as message:
        message.write(unsigned.encode())
        message.flush()
        signature = subprocess.run(
            ["openssl", "pkeyutl", "-sign", "-inkey", str(KEYS / "ed25519.pem"), "-rawin", "-in", message.name],
            check=True, capture_output=True).stdout
    return f"{unsigned}.{b64(signature)}"


VARIANTS = {
    "off": ([], ""),
    "HS256": (["--auth-jwt-secret", SECRET], None),
    "EdDSA": (["--auth-jwt-public-key", str(KEYS / "ed25519.pub.pem")], None),
}


def run(variant, token):
    args, _ = VARIANTS[variant]
    server = Server("switchboard", args)
    try:
        before = cpu_seconds(server.proc.pid)
        query = f"token={token}" if token else ""
        [result] = bench("connects", "--server", f"127.0.0.1:{server.port}", "--count", str(COUNT),
                         "--concurrency", str(CONCURRENCY), "--query", query)
        result["server_cpu_us_per_join"] = (cpu_seconds(server.proc.pid) - before) * 1e6 / COUNT
        return result
    finally:
        server.stop()


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    assert BENCH.exists()
    tokens = {"off": "", "HS256": hs256_token(), "EdDSA": eddsa_token()}
    rounds = {name: [] for name in VARIANTS}
    for _ in range(ROUNDS):
        for name in VARIANTS:
            rounds[name].append(run(name, tokens[name]))

    def med(name, key):
        return statistics.median(r[key] for r in rounds[name])

    def spread(name, key, scale=1.0, fmt="{:.0f}"):
        values = [r[key] * scale for r in rounds[name]]
        return f"{fmt.format(min(values))}-{fmt.format(max(values))}"

    rows = []
    for name in VARIANTS:
        rows.append((
            name,
            f"{med(name, 'connects_per_sec'):,.0f} ({spread(name, 'connects_per_sec')})",
            f"{med('off', 'connects_per_sec') and med(name, 'connects_per_sec') / med('off', 'connects_per_sec'):.2f}x",
            f"{med(name, 'p50_us') / 1000:.2f}",
            f"{med(name, 'p99_us') / 1000:.2f} ({spread(name, 'p99_us', 1e-3, '{:.2f}')})",
            f"{med(name, 'server_cpu_us_per_join'):.0f} ({spread(name, 'server_cpu_us_per_join')})",
            str(sum(r["failed"] for r in rounds[name])),
        ))
    stamp = utc_stamp()
    lines = [
        f"# Auth connect benchmark, {stamp}",
        "",
        f"`switchboard serve` (release, --no-stun, per-address limits raised for one load generator) "
        f"on loopback; {COUNT} joins per round ({CONCURRENCY} in flight, from 32 source addresses), each "
        f"TCP + upgrade + `welcome` + close; every join's token is verified (no cache). Medians of "
        f"{ROUNDS} alternating rounds, spread (min-max) in brackets. {os.cpu_count()} cores shared by "
        f"server and load generator.",
        "",
        "| auth | joins/s | vs off | connect p50 ms | connect p99 ms | server CPU per join, µs | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
        "Raw: " + json.dumps(rounds),
        "",
    ]
    publish("auth", stamp, lines)


if __name__ == "__main__":
    main()
