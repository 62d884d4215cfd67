#!/usr/bin/env python3
"""Cluster benchmark: the signaling relay with every room split across two nodes of a cluster
(sharing one redis-server) against the same load on one node, in one run.

Builds the release binaries, starts redis-server (no persistence) on a free loopback port and the
nodes with `switchboard serve --redis`, runs the load generator (bench/src) against each setup in
alternating rounds, prints a table and writes it to bench/results/cluster-<UTC time>.md.

Setups: one node without Redis (the baseline), one node in cluster mode (every room local: what
cluster mode costs a node that owns everything), two nodes with each room's peers alternating
between them (the first peer of every room is on node A, which owns the room; half of each room
is on node B, so a message takes one hop through Redis, or two between two peers on B).

Rows: delivered msgs/s, p50/p99 latency and server CPU per delivered message at a saturating load
(the relay workload of bench/signaling.py) and at a light one (latency); Redis commands and Redis
CPU per delivered message; membership changes per second (joins and leaves, each join closed once
welcomed, spread over the nodes); memory per idle connection on a cluster node.
"""

import json
import os
import resource
import subprocess
import time

from benchlib import ROOT, cpu_seconds, free_port, publish, utc_stamp
from signaling import BENCH, Server, bench, median, sh, spread

ROUNDS = int(os.environ.get("ROUNDS", "3"))
ROOMS = int(os.environ.get("ROOMS", "50"))
PEERS = int(os.environ.get("PEERS", "8"))
WINDOW = int(os.environ.get("WINDOW", "8"))
SECS = int(os.environ.get("SECS", "10"))
LIGHT = dict(rooms=10, peers=4, window=1)
JOINS = int(os.environ.get("JOINS", "20000"))
IDLE_COUNT = os.environ.get("IDLE_COUNT", "10000")


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while self.commands() is None:
            if time.time() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/"

    def commands(self):
        """Commands Redis has processed since it started (INFO stats)."""
        try:
            out = subprocess.run(["redis-cli", "-p", str(self.port), "info", "stats"],
                                 capture_output=True, text=True, timeout=5).stdout
        except subprocess.TimeoutExpired:
            return None
        for line in out.splitlines():
            if line.startswith("total_commands_processed:"):
                return int(line.split(":")[1])
        return None

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def setup(kind, redis):
    """The nodes of one setup: `single` (no Redis), `cluster1` (one node), `cluster2` (two)."""
    if kind == "single":
        return [Server("switchboard")]
    count = 1 if kind == "cluster1" else 2
    return [Server("switchboard", ["--redis", redis.url]) for _ in range(count)]


def measured(kind, redis, args):
    """Runs the load generator with `args` against a fresh setup; adds CPU and Redis figures."""
    nodes = setup(kind, redis)
    try:
        time.sleep(0.3)
        servers = ",".join(f"127.0.0.1:{n.port}" for n in nodes)
        cpu = [cpu_seconds(n.proc.pid) for n in nodes]
        redis_cpu, commands = cpu_seconds(redis.proc.pid), redis.commands()
        [result] = bench(*args(servers))
        result["server_cpu_s"] = sum(cpu_seconds(n.proc.pid) - c for n, c in zip(nodes, cpu))
        result["redis_cpu_s"] = cpu_seconds(redis.proc.pid) - redis_cpu
        result["redis_commands"] = redis.commands() - commands
        return result
    finally:
        for node in nodes:
            node.stop()


def relay_args(rooms, peers, window):
    return lambda servers: ["relay", "--server", servers, "--flavor", "switchboard", "--fanout", "direct",
                            "--rooms", str(rooms), "--peers", str(peers), "--window", str(window),
                            "--secs", str(SECS)]


def churn_args(servers):
    return ["connects", "--server", servers, "--count", str(JOINS), "--concurrency", "64", "--sources", "32"]


def per_delivered(r, key, scale=1.0):
    # Whole-run totals (warm-up included) over the deliveries of the measured window, scaled.
    total = r["delivered"] * (SECS + 2) / SECS
    return r[key] * scale / total


KINDS = [("single", "one node, no Redis"), ("cluster1", "one node, cluster mode"),
         ("cluster2", "two nodes, every room split")]


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    redis = Redis()
    try:
        rounds = {kind: {"heavy": [], "light": [], "churn": []} for kind, _ in KINDS}
        for _ in range(ROUNDS):
            for kind, _ in KINDS:
                heavy = measured(kind, redis, relay_args(ROOMS, PEERS, WINDOW))
                heavy["cpu_us_per_msg"] = per_delivered(heavy, "server_cpu_s", 1e6)
                heavy["redis_cpu_us_per_msg"] = per_delivered(heavy, "redis_cpu_s", 1e6)
                heavy["redis_commands_per_msg"] = per_delivered(heavy, "redis_commands")
                rounds[kind]["heavy"].append(heavy)
                rounds[kind]["light"].append(measured(kind, redis, relay_args(**LIGHT)))
                churn = measured(kind, redis, churn_args)
                churn["changes_per_sec"] = 2 * churn["connects_per_sec"]
                rounds[kind]["churn"].append(churn)
        idle = {}
        for kind in ("single", "cluster1"):
            [node] = setup(kind, redis)
            try:
                idle[kind] = bench("idle", "--server", f"127.0.0.1:{node.port}", "--server-pid", str(node.proc.pid),
                                   "--flavor", "switchboard", "--counts", IDLE_COUNT)[-1]
            finally:
                node.stop()
    finally:
        redis.stop()

    rate = lambda v: f"{v:,.0f}"
    ms = lambda v: f"{v / 1000:.2f}"
    us = lambda v: f"{v:.2f}"
    med = lambda runs, key: median([r[key] for r in runs])
    cell = lambda runs, key, fmt: f"{fmt(med(runs, key))} ({spread([r[key] for r in runs], fmt)})"
    heavy_rows, light_rows, churn_rows = [], [], []
    for kind, label in KINDS:
        h, l, c = rounds[kind]["heavy"], rounds[kind]["light"], rounds[kind]["churn"]
        heavy_rows.append(f"| {label} | {cell(h, 'delivered_per_sec', rate)} | {cell(h, 'p50_us', ms)} | "
                          f"{cell(h, 'p99_us', ms)} | {cell(h, 'cpu_us_per_msg', us)} | "
                          f"{cell(h, 'redis_commands_per_msg', lambda v: f'{v:.3f}')} | {cell(h, 'redis_cpu_us_per_msg', us)} |")
        light_rows.append(f"| {label} | {cell(l, 'delivered_per_sec', rate)} | {cell(l, 'p50_us', ms)} | {cell(l, 'p99_us', ms)} |")
        churn_rows.append(f"| {label} | {cell(c, 'changes_per_sec', rate)} | {cell(c, 'p50_us', ms)} | "
                          f"{cell(c, 'p99_us', ms)} | {med(c, 'failed')} |")
    light_single = med(rounds["single"]["light"], "p50_us")
    light_split = med(rounds["cluster2"]["light"], "p50_us")
    churn_split = med(rounds["cluster2"]["churn"], "changes_per_sec")
    stamp = utc_stamp()
    lines = [
        f"# Cluster benchmark, {stamp}",
        "",
        f"Machine: {os.cpu_count()} cores, shared by the nodes, redis-server and the load generator. "
        f"Saturating relay: {ROOMS} rooms x {PEERS} peers, each peer keeps {WINDOW} messages in flight to the "
        f"rest of its room (one message per recipient, by id); light relay: {LIGHT['rooms']} rooms x "
        f"{LIGHT['peers']} peers, {LIGHT['window']} in flight; {SECS} s measured after 2 s warm-up. Two nodes: "
        f"the k-th peer of every room on node k mod 2 (the room's owner is node A). Membership changes: "
        f"{JOINS:,} joins into 64 rooms, 64 at a time, each closed once welcomed (a join and a leave), spread "
        f"over the nodes. Medians of {ROUNDS} alternating rounds, min-max in brackets. Server CPU: all nodes "
        f"together; Redis CPU apart.",
        "",
        "| saturating relay | delivered msgs/s | p50 ms | p99 ms | server CPU µs per msg | Redis commands per msg | Redis CPU µs per msg |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *heavy_rows,
        "",
        "| light relay (latency) | delivered msgs/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *light_rows,
        "",
        "| membership changes | joins + leaves per s | join p50 ms | join p99 ms | failed joins |",
        "|---|---:|---:|---:|---:|",
        *churn_rows,
        "",
        "| target | this run |",
        "|---|---:|",
        f"| cross-node p50 adds under 1 ms over one node (light relay) | {ms(light_split - light_single)} ms |",
        f"| membership changes at 2,000/s or more across the cluster | {rate(churn_split)}/s |",
        f"| memory per idle connection, cluster mode, 10 KiB or less | "
        f"{idle['cluster1']['per_connection_bytes'] / 1024:.1f} KiB (without Redis: {idle['single']['per_connection_bytes'] / 1024:.1f} KiB) |",
        "",
        "Raw: " + json.dumps({"rounds": rounds, "idle": idle}),
        "",
    ]
    publish("cluster", stamp, lines)


if __name__ == "__main__":
    main()
