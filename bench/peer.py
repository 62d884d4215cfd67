#!/usr/bin/env python3
"""Server peer benchmark: Switchboard's server peer against webrtc-rs and Pion servers, same load,
one run.

The servers do the same job (crates/peer/examples/echo.rs, bench/anchors/webrtc-rs-echo,
bench/anchors/pion-echo), each with every peer on one UDP port: accept
a browser-style offer on POST /connect (data channels pre-negotiated with ids 0 and 1) and echo
every message on its channel. For each size in COUNTS (1,000, 5,000, 10,000) the load generator
(`switchboard-bench peer`, on str0m) opens that many connections, CONCURRENCY at a time, then
pumps OFFERED messages per second in all for SECS seconds: 64-byte unreliable, then 1 KiB
reliable; then a FLOOD of 64-byte unreliable messages, more than either server can echo on this
machine, to see how much each gets through when overloaded. The game row: GAME_PEERS peers each
send GAME_HZ unreliable 64-byte inputs a second while the server (ECHO_SNAPSHOT_HZ) broadcasts a
GAME_HZ unreliable 256-byte snapshot to all. ROUNDS rounds in rotating order, medians and
spreads. Pion is built with Debian's Go and packaged Pion sources when they are installed
(`apt-get install golang-go golang-github-pion-webrtc.v3-dev`), else left out.
geckos.io does not install here (its node-datachannel needs a prebuilt binary from GitHub).

Prints a table and writes it to bench/results/peer-<UTC time>.md.
"""

import json
import os
import re
import resource
import subprocess
import sys
import shutil
import threading
from pathlib import Path

from benchlib import ROOT, publish, utc_stamp

COUNTS = [int(c) for c in os.environ.get("COUNTS", "1000,5000,10000").split(",")]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
SECS = int(os.environ.get("SECS", "6"))
# The offered load is the same total at every size: OFFERED msgs/s in the echo phases, FLOOD in
# the flood (more than either server can echo on this machine), spread over the peers.
OFFERED = int(os.environ.get("OFFERED", "10000"))
FLOOD = int(os.environ.get("FLOOD", "100000"))
GAME_PEERS = int(os.environ.get("GAME_PEERS", "1000"))
GAME_HZ = int(os.environ.get("GAME_HZ", "30"))
BENCH = ROOT / "target/release/switchboard-bench"
ECHO = ROOT / "target/release/examples/echo"
ANCHOR_DIR = ROOT / "bench/anchors/webrtc-rs-echo"
ANCHOR = ANCHOR_DIR / "target/release/webrtc-rs-echo"
PION_DIR = ROOT / "bench/anchors/pion-echo"
PION = ROOT / "target/pion-echo"
# Debian's Go 1.19 and its packaged Pion v3 sources (golang-github-pion-webrtc.v3-dev): there is
# no module proxy here, so the anchor is built in GOPATH mode against them.
PION_SOURCES = Path("/usr/share/gocode/src/github.com/pion/webrtc")
SERVERS = {
    "switchboard": [ECHO, "127.0.0.1:0", "127.0.0.1:0"],
    "webrtc_rs": [ANCHOR, "127.0.0.1:0"],
    "pion": [PION, "127.0.0.1:0"],
}
HEADS = {"switchboard": "Switchboard server peer (str0m)", "webrtc_rs": "webrtc-rs 0.14", "pion": "Pion v3.1.56",
         "switchboard_1": "Switchboard, 1 shard"}
# Switchboard with one shard, at the first size: what the shards bring on this machine.
ONE_SHARD = [ECHO, "127.0.0.1:0", "127.0.0.1:0"]


def sh(*args, **kw):
    print("+", " ".join(str(a) for a in args), file=sys.stderr)
    subprocess.run(args, check=True, **kw)


def serve(cmd, env=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, **(env or {})})
    first = proc.stdout.readline()
    match = re.search(r"http://([^/\s]+)/", first)
    if not match:
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not start: {first!r}")
    # Keep draining its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, match.group(1)


def measure(name, count, game=False):
    """One server process, COUNT connections, then the echo phases (or the game row)."""
    # Every peer comes from 127.0.0.1: the per-address limit is lifted for the load.
    env = {"ECHO_MAX_PEERS": "50000", "ECHO_MAX_PEERS_PER_IP": "50000"}
    if game:
        env["ECHO_SNAPSHOT_HZ"] = str(GAME_HZ)
    if name == "switchboard_1":
        env["ECHO_SHARDS"] = "1"
    proc, http = serve(ONE_SHARD if name == "switchboard_1" else SERVERS[name], env)
    rate = GAME_HZ if game else max(1, OFFERED // count)
    args = [BENCH, "peer", "--http", http, "--server-pid", str(proc.pid), "--count", str(count),
            "--concurrency", str(CONCURRENCY), "--secs", str(SECS), "--rate", str(rate),
            "--flood-rate", str(max(1, FLOOD // count))]
    if game:
        args += ["--snapshot-hz", str(GAME_HZ)]
    try:
        run = subprocess.run(args, capture_output=True, text=True)
        if run.returncode != 0 or proc.poll() is not None:
            # A server that dies (or a load that fails) is a result, not the end of the bench.
            reason = (run.stderr.strip().splitlines() or ["exited"])[-1][:200]
            print(f"{name} at {count}: failed: {reason}", file=sys.stderr)
            return {"failed_run": reason}
        result = json.loads(run.stdout.strip().splitlines()[-1])
        # Server CPU per 1,000 echoed messages: the servers' own cost, whatever the offered load.
        for phase in ("unreliable64", "reliable1k", "flood64"):
            echoed = result.get(f"{phase}_echoed_per_s", 0) * SECS
            if echoed:
                result[f"{phase}_cpu_ms_per_1k"] = result[f"{phase}_server_cpu_s"] * 1e6 / echoed
            # What the server kept up with, whatever the load generator managed to offer.
            offered = result.get(f"{phase}_offered_per_s", 0)
            if offered:
                result[f"{phase}_echoed_share"] = result.get(f"{phase}_echoed_per_s", 0) / offered
        if game:
            moved = result["game_inputs_delivered_per_s"] + result["game_snapshots_received_per_s"]
            if moved:
                result["game_cpu_ms_per_1k"] = result["game_server_cpu_s"] * 1e6 / (moved * SECS)
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


ECHO_ROWS = [
    ("connections opened", "connected", True, "{:,.0f}"),
    ("connections per second", "connections_per_s", True, "{:,.1f}"),
    ("connect time p50, ms (offer to both channels open)", "connect_p50_ms", False, "{:,.1f}"),
    ("connect time p99, ms", "connect_p99_ms", False, "{:,.1f}"),
    ("server CPU to accept all, s", "server_cpu_connect_s", False, "{:,.2f}"),
    ("memory per idle peer, KiB", "idle_bytes_per_peer", False, "{:,.1f}"),
    ("unreliable 64 B offered by the load generator, msgs/s", "unreliable64_offered_per_s", None, "{:,.0f}"),
    ("unreliable 64 B echoed, msgs/s", "unreliable64_echoed_per_s", True, "{:,.0f}"),
    ("unreliable 64 B echoed, share of offered", "unreliable64_echoed_share", True, "{:.1%}"),
    ("server CPU per 1,000 unreliable echoes, ms", "unreliable64_cpu_ms_per_1k", False, "{:,.0f}"),
    ("reliable 1 KiB goodput echoed, KiB/s", "reliable1k_bytes_per_s", True, "{:,.0f}"),
    ("reliable 1 KiB echoed, share of offered", "reliable1k_echoed_share", True, "{:.1%}"),
    ("server CPU per 1,000 reliable 1 KiB echoes, ms", "reliable1k_cpu_ms_per_1k", False, "{:,.0f}"),
    ("memory per busy peer, KiB", "reliable1k_busy_bytes_per_peer", False, "{:,.1f}"),
    ("flood: unreliable 64 B offered by the load generator, msgs/s", "flood64_offered_per_s", None, "{:,.0f}"),
    ("flood: unreliable 64 B echoed, msgs/s", "flood64_echoed_per_s", True, "{:,.0f}"),
    ("flood: unreliable 64 B echoed, share of offered", "flood64_echoed_share", True, "{:.1%}"),
    ("flood: server CPU per 1,000 echoes, ms", "flood64_cpu_ms_per_1k", False, "{:,.0f}"),
]
GAME_ROWS = [
    ("inputs sent by the load generator, msgs/s", "game_inputs_sent_per_s", None, "{:,.0f}"),
    ("inputs delivered, msgs/s", "game_inputs_delivered_per_s", True, "{:,.0f}"),
    ("input loss", "game_inputs_loss", False, "{:.2%}"),
    ("snapshots expected, msgs/s", "game_snapshots_expected_per_s", None, "{:,.0f}"),
    ("snapshots delivered, msgs/s", "game_snapshots_received_per_s", True, "{:,.0f}"),
    ("snapshot loss", "game_snapshots_loss", False, "{:.2%}"),
    ("server CPU in all, s (per message below)", "game_server_cpu_s", None, "{:,.2f}"),
    ("server CPU per 1,000 messages in or out, ms", "game_cpu_ms_per_1k", False, "{:,.1f}"),
    ("memory per busy peer, KiB", "game_busy_bytes_per_peer", False, "{:,.1f}"),
]


def table(rows, runs, names=None):
    """Medians of the rounds with their min-max spread, and the ratio of the first column's median
    to each other's (above 1: the first ahead). Rows whose `higher` is None are context (what the
    load generator managed to offer, on cores it shares with the server), not scores: no ratio."""
    names = names or [name for name in SERVERS if name in runs]
    others = names[1:]
    lines = ["| measure | " + " | ".join(f"{HEADS[n]}, median (min-max)" for n in names) + " | "
             + " | ".join(f"ratio vs {HEADS[n]}" for n in others) + " |",
             "|" + "---|" * (1 + len(names) + len(others))]
    for label, key, higher, fmt in rows:
        scale = 1 / 1024 if ("KiB" in label and "per 1,000" not in label and "share" not in label) else 1
        cells, mids = [], []
        for name in names:
            values = [r[key] * scale for r in runs[name] if isinstance(r.get(key), (int, float))]
            mid = median(values)
            mids.append(mid)
            cells.append(f"{fmt.format(mid)} ({fmt.format(min(values))}-{fmt.format(max(values))})" if values else "n/a")
        ratios = [ratio(mids[0], theirs, higher) for theirs in mids[1:]]
        lines.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    return lines


def ratio(ours, theirs, higher):
    if higher is None:
        return "(context)"
    if ours is None or theirs is None:
        return "n/a"
    if ours == theirs:
        return "1.00x"
    if higher and theirs == 0:
        return "ahead (theirs 0)"
    if not higher and ours == 0:
        return "ahead (ours 0)"
    return f"{(ours / theirs if higher else theirs / ours):.2f}x"


def build_pion():
    """Builds the Pion anchor if Debian's Go and Pion sources are here; False (and why) if not."""
    if not shutil.which("go") or not PION_SOURCES.is_dir():
        print("Pion anchor skipped: apt-get install golang-go golang-github-pion-webrtc.v3-dev", file=sys.stderr)
        return False
    # Debian installs Pion v3 without the /v3 directory its imports name: a GOPATH that adds it.
    gopath = ROOT / "target/pion-gopath"
    link = gopath / "src/github.com/pion/webrtc/v3"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(PION_SOURCES)
    env = {**os.environ, "GOPATH": f"{gopath}:/usr/share/gocode", "GO111MODULE": "off",
           "GOCACHE": str(ROOT / "target/pion-gocache")}
    sh("go", "build", "-o", str(PION), ".", cwd=PION_DIR, env=env)
    return True


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard-bench", "-p", "switchboard-peer", "--examples", "--bins", cwd=ROOT)
    sh("cargo", "build", "--release", "-q", cwd=ANCHOR_DIR)
    if not build_pion():
        del SERVERS["pion"]
    echo_runs = {count: {name: [] for name in SERVERS} for count in COUNTS}
    game_runs = {name: [] for name in SERVERS}
    shard_runs = {"switchboard": echo_runs[COUNTS[0]]["switchboard"], "switchboard_1": []}
    for round_ in range(ROUNDS):
        # Rotating order: no server always runs on a machine another just warmed.
        names = list(SERVERS)
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for count in COUNTS:
            for name in order:
                print(f"round {round_ + 1}/{ROUNDS}: {name}, {count} peers", file=sys.stderr)
                echo_runs[count][name].append(measure(name, count))
        for name in order:
            print(f"round {round_ + 1}/{ROUNDS}: {name}, game row", file=sys.stderr)
            game_runs[name].append(measure(name, GAME_PEERS, game=True))
        print(f"round {round_ + 1}/{ROUNDS}: switchboard with 1 shard, {COUNTS[0]} peers", file=sys.stderr)
        shard_runs["switchboard_1"].append(measure("switchboard_1", COUNTS[0]))
    stamp = utc_stamp()
    lines = [f"# Server peer benchmark ({stamp})", "",
             f"Medians of {ROUNDS} rounds in rotating order (min-max in brackets); every run is a fresh server process. "
             f"Connections {CONCURRENCY} at a time; then {SECS} s per phase at {OFFERED:,} msgs/s offered in all "
             f"(64 B unreliable, then 1 KiB reliable), then a flood of {FLOOD:,} msgs/s in all. Loopback, 2 cores "
             "shared by the server and the load generator (`switchboard-bench peer`, str0m, one UDP socket per "
             "connection). Every server has all its peers on one UDP port; Switchboard runs its default shards "
             "(one per core).", ""]
    for count in COUNTS:
        lines += [f"## {count:,} concurrent peers", ""] + table(ECHO_ROWS, echo_runs[count]) + [""]
    lines += [f"## Game row: {GAME_PEERS:,} peers, {GAME_HZ} unreliable 64 B inputs/s each, a {GAME_HZ} Hz unreliable "
              "256 B snapshot broadcast to all", ""] + table(GAME_ROWS, game_runs) + [""]
    lines += [f"## Shards: one per core (2 here) against one, {COUNTS[0]:,} peers", ""]
    lines += table(ECHO_ROWS, shard_runs, ["switchboard", "switchboard_1"]) + [""]
    lines += ["Raw: " + json.dumps({"echo": echo_runs, "game": game_runs, "shards": shard_runs})]
    publish("peer", stamp, lines)


if __name__ == "__main__":
    main()
