#!/usr/bin/env python3
"""STUN benchmark: Switchboard's built-in STUN server against coturn, same load, one run.

Builds the release binaries, installs coturn (Debian) when missing, runs each server on loopback
in alternating rounds with the same load generator (`switchboard-bench stun`), prints a table of
medians and writes it to bench/results/stun-<UTC time>.md. See bench/README.md.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import ROOT, cpu_seconds, free_port, publish, rss_kib, utc_stamp
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECS = int(os.environ.get("SECS", "8"))
SOCKETS = int(os.environ.get("SOCKETS", "64"))
WINDOW = int(os.environ.get("WINDOW", "4"))
BENCH = ROOT / "target/release/switchboard-bench"
SWITCHBOARD = ROOT / "target/release/switchboard"


def sh(*args, **kw):
    print("+", " ".join(str(a) for a in args), file=sys.stderr)
    return subprocess.run(args, check=True, **kw)


def start(flavor, port, workdir):
    if flavor == "switchboard":
        cmd = [SWITCHBOARD, "serve", "--listen", f"127.0.0.1:{free_port()}", "--stun-listen", f"127.0.0.1:{port}"]
    else:
        # STUN only, no TLS/DTLS, no CLI, no config file; state files in a temporary folder.
        cmd = ["turnserver", "-n", "--stun-only", "-L", "127.0.0.1", "-p", str(port), "--no-cli", "--no-tls",
               "--no-dtls", "--no-stdout-log", "--log-file", f"{workdir}/turn.log", "--simple-log",
               "--pidfile", f"{workdir}/turn.pid", "--userdb", f"{workdir}/turndb"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    # Wait until it answers a Binding request.
    request = bytes.fromhex("000100002112a442") + os.urandom(12)
    deadline = time.time() + 15
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.time() < deadline:
            try:
                s.sendto(request, ("127.0.0.1", port))
                if s.recv(512)[:2] == b"\x01\x01":
                    return proc
            except OSError:
                pass
    proc.kill()
    raise RuntimeError(f"{flavor} did not answer STUN")


def one_round(flavor, workdir):
    port = free_port(socket.SOCK_DGRAM)
    proc = start(flavor, port, workdir)
    try:
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run([BENCH, "stun", "--server", f"127.0.0.1:{port}", "--sockets", str(SOCKETS),
                              "--window", str(WINDOW), "--secs", str(SECS)],
                             check=True, capture_output=True, text=True).stdout
        cpu1, rss = cpu_seconds(proc.pid), rss_kib(proc.pid)
        result = json.loads(out.strip().splitlines()[-1])
        answered = result["answered_per_sec"] * SECS
        result["cpu_us_per_request"] = (cpu1 - cpu0) * 1e6 / answered if answered else 0
        result["rss_mib"] = rss / 1024
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main():
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    if not shutil.which("turnserver"):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        sh(*sudo, "apt-get", "update", "-qq")
        sh(*sudo, "apt-get", "install", "-y", "-qq", "coturn")
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "coturn"], capture_output=True, text=True).stdout
    runs = {"switchboard": [], "coturn": []}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(ROUNDS):
            for flavor in runs:
                runs[flavor].append(one_round(flavor, workdir))

    def med(flavor, key):
        return statistics.median(r[key] for r in runs[flavor])

    def row(name, key, fmt, higher_is_better=True):
        a, b = med("switchboard", key), med("coturn", key)
        ratio = (a / b if higher_is_better else b / a) if a and b else float("nan")
        return f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {ratio:.2f}x |"

    def loss(flavor):
        sent = sum(r["sent"] for r in runs[flavor])
        return 100.0 * sum(r["lost"] for r in runs[flavor]) / sent if sent else 0.0

    stamp = utc_stamp()
    lines = [
        f"# STUN benchmark, {stamp}",
        "",
        f"Machine: {os.cpu_count()} cores shared by server and load generator. coturn {version} (Debian, "
        f"`--stun-only`). Load: {SOCKETS} client sockets (distinct source ports), {WINDOW} Binding requests "
        f"in flight each, {SECS} s measured after 2 s warm-up; a request unanswered after 250 ms counts as "
        f"lost. Median of {ROUNDS} alternating rounds. Ratio > 1: Switchboard better.",
        "",
        "| metric | switchboard | coturn | ratio |",
        "|---|---:|---:|---:|",
        row("requests answered / s", "answered_per_sec", "{:,.0f}"),
        row("p50 latency µs", "p50_us", "{:,.0f}", higher_is_better=False),
        row("p99 latency µs", "p99_us", "{:,.0f}", higher_is_better=False),
        row("server CPU per request µs", "cpu_us_per_request", "{:.2f}", higher_is_better=False),
        row("server memory (RSS) MiB", "rss_mib", "{:.1f}", higher_is_better=False),
        f"| loss | {loss('switchboard'):.3f}% | {loss('coturn'):.3f}% | |",
        "",
        "Raw: " + json.dumps(runs),
        "",
    ]
    publish("stun", stamp, lines)


if __name__ == "__main__":
    main()
