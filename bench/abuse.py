#!/usr/bin/env python3
"""Abuse benchmark: one abusive loopback address against the hub and the echo server peer.

For each attack (a bounded time each, `SECS`), a fresh server process is started with its default
limits, an attacker process floods it from 127.0.0.1, and a normal client on 127.0.0.2 measures
connect time and round trips meanwhile. The server's peak RSS (sampled every 100 ms) and CPU time
during the attack come from /proc. Prints a table and writes it to bench/results/abuse-<UTC>.md.
See bench/README.md ("Abuse") for what each row does.

Not a test: it uses the release binaries already built (target/release/switchboard and
target/release/examples/echo) and never builds them. Python 3.11 standard library only.

Internally the same file is run in three roles: the driver (no arguments), `--normal KIND PORT`
(the normal client) and `--attack NAME PORT` (the attacker), each in its own process so that a
busy attacker does not stall the normal client's event loop.
"""

import asyncio
import base64
import json
import os
import random
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque

from benchlib import ROOT, cpu_seconds, free_port, publish, rss_kib, utc_stamp

SECS = float(os.environ.get("SECS", "5"))
# Niceness of the attacker process: it shares 2 cores with the server and the normal client, and
# the figures are about what the server does to other clients, not about the load generator's CPU.
ATTACK_NICE = int(os.environ.get("ATTACK_NICE", "10"))
ONLY = [k for k in os.environ.get("ONLY", "").split(",") if k]
SWITCHBOARD = ROOT / "target/release/switchboard"
ECHO = ROOT / "target/release/examples/echo"
ATTACKER_IP = "127.0.0.1"
NORMAL_IP = "127.0.0.2"
HOST = "127.0.0.1"
ROOM = "room-r"  # the room the normal client sits in (hub)
PROBE_ROOM = "normal-probe"  # the room the normal client's connect probes join (hub)
OP_TIMEOUT = 2.0  # a normal connect or round trip slower than this counts as failed
RTT_PERIOD = 0.05  # one normal round trip every 50 ms (20 messages/s, under the default 50/s)
PROBE_PERIOD = 0.2  # one normal connect every 200 ms (5 joins/s, under the default 10/s)
TARGET_P99_MS = 50
TARGET_RSS_MB = 200
BIG = 60_000  # "max-size" message payload (under max_message_bytes 65536 with its envelope)
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

# key, target, label. The attack functions are `attack_<key>` below.
ROWS = [
    ("baseline_hub", "hub", "baseline (no attack)"),
    ("ping_flood", "hub", "1. ping flood"),
    ("idle_tcp", "hub", "2. idle TCP x5,000"),
    ("slowloris", "hub", "3. slowloris x2,000"),
    ("huge_headers", "hub", "4. huge headers x1,000"),
    ("slow_reader", "hub", "5. slow reader"),
    ("presence_storm", "hub", "6. presence storm"),
    ("listing", "hub", "7. public room listing"),
    ("code_guessing", "hub", "8. room code guessing"),
    ("byte_flood", "hub", "9. byte flood"),
    ("baseline_echo", "echo", "baseline (no attack)"),
    ("echo_ping_flood", "echo", "10. ping flood /connect/ws"),
    ("echo_hold", "echo", "11. /connect/ws x10,000 held"),
    ("echo_offers", "echo", "12. half-open offers"),
]


# ---------------------------------------------------------------------------------------------
# A minimal WebSocket / HTTP client on asyncio streams.


def mask(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload=b""):
    """One masked client frame (FIN set)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + mask(payload, key)


def text_frame(obj):
    return frame(1, json.dumps(obj, separators=(",", ":")).encode())


class Refused(Exception):
    """The server answered an upgrade with an HTTP status other than 101."""

    def __init__(self, status, body=b""):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class Closed(Exception):
    """The server sent a close frame."""

    def __init__(self, code, reason=""):
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


async def tcp(port, src=None, rcvbuf=None, limit=2**16):
    """A TCP connection to HOST:port, from `src` when given (bound before connecting)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if src:
            sock.bind((src, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        return await asyncio.open_connection(sock=sock, limit=limit)
    except BaseException:
        sock.close()
        raise


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def read_body(reader, headers):
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        for _ in range(100_000):
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return b"".join(parts)
    n = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(n) if n else b""


class WS:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port, path, src=None, rcvbuf=None, limit=2**16):
        reader, writer = await tcp(port, src, rcvbuf, limit)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            status, headers = await read_head(reader)
            if status != 101:
                try:
                    body = await asyncio.wait_for(read_body(reader, headers), 0.5)
                except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    body = b""
                raise Refused(status, body)
        except BaseException:
            writer.transport.abort()
            raise
        return cls(reader, writer)

    def send(self, data):
        self.writer.write(data)

    async def recv(self):
        """The next data message as (opcode, payload); answers pings; raises Closed on a close."""
        parts, first = [], None
        for _ in range(1_000_000):
            b0, b1 = await self.reader.readexactly(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            key = await self.reader.readexactly(4) if b1 & 0x80 else None
            payload = await self.reader.readexactly(n)
            if key:
                payload = mask(payload, key)
            if op == 9:
                self.writer.write(frame(10, payload))
                continue
            if op == 10:
                continue
            if op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            if op == 0:
                parts.append(payload)
            else:
                first, parts = op, [payload]
            if b0 & 0x80:
                return first, b"".join(parts)
        raise RuntimeError("too many frames")

    async def recv_json(self):
        _, payload = await self.recv()
        return json.loads(payload)

    def close(self, code=1000):
        try:
            if not self.writer.transport.is_closing():
                self.writer.write(frame(8, struct.pack("!H", code)))
                self.writer.close()
        except Exception:
            pass

    def abort(self):
        self.writer.transport.abort()


def pct(values, p):
    """Nearest-rank percentile (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, -(-len(v) * p // 100) - 1))]


# ---------------------------------------------------------------------------------------------
# The normal client (its own process, on 127.0.0.2).


class Normal:
    def __init__(self, kind, port):
        self.kind = kind
        self.port = port
        self.ws = None
        self.my_id = None
        self.pending = {}
        self.reader_task = None
        self.last_open = 0.0
        self.measuring = False
        self.presence = 0
        self.room_bytes = 0
        self.errors = {}

    def note(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1

    async def open(self):
        self.last_open = time.perf_counter()
        if self.kind == "hub":
            ws = await WS.connect(self.port, f"/ws/{ROOM}", NORMAL_IP)
            welcome = await ws.recv_json()
            if welcome.get("type") != "welcome":
                ws.abort()
                raise RuntimeError(f"no welcome: {welcome.get('code')}")
            self.my_id = welcome["id"]
        else:
            ws = await WS.connect(self.port, "/connect/ws", NORMAL_IP)
        self.ws = ws
        self.reader_task = asyncio.create_task(self.read_loop(ws))

    def drop(self, why):
        if self.ws:
            self.ws.abort()
        self.ws = None
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError(why))
        self.pending.clear()

    async def read_loop(self, ws):
        try:
            for _ in range(10_000_000):
                op, payload = await ws.recv()
                if self.kind == "echo":
                    if len(payload) == 10 and payload[:2] == b"\x00\x00":
                        fut = self.pending.pop(payload[2:], None)
                        if fut and not fut.done():
                            fut.set_result(time.perf_counter())
                    continue
                if len(payload) > 2048:  # room traffic of the byte flood: not ours
                    if self.measuring:
                        self.room_bytes += len(payload)
                    continue
                msg = json.loads(payload)
                t = msg.get("type")
                if t in ("peer_joined", "peer_left"):
                    if self.measuring:
                        self.presence += 1
                elif t == "message" and msg.get("from") == self.my_id and isinstance(msg.get("data"), dict):
                    fut = self.pending.pop(msg["data"].get("t"), None)
                    if fut and not fut.done():
                        fut.set_result(time.perf_counter())
                elif t == "message":
                    if self.measuring:
                        self.room_bytes += len(payload)
                elif t == "error" and self.measuring:
                    self.note(f"error {msg.get('code')}")
        except asyncio.CancelledError:
            raise
        except Closed as e:
            if self.ws is ws:
                self.note(f"persistent closed {e.code}")
                self.drop("closed")
        except Exception as e:
            if self.ws is ws:
                self.note(f"persistent {type(e).__name__}")
                self.drop(type(e).__name__)

    async def round_trip(self, n):
        if self.ws is None:
            if time.perf_counter() - self.last_open < PROBE_PERIOD:
                raise ConnectionError("persistent connection down")
            await self.open()
        fut = asyncio.get_running_loop().create_future()
        if self.kind == "hub":
            self.pending[n] = fut
            self.ws.send(text_frame({"type": "message", "to": "self", "data": {"t": n}}))
        else:
            nonce = struct.pack("!Q", n)
            self.pending[nonce] = fut
            self.ws.send(frame(2, b"\x00\x00" + nonce))
        t0 = time.perf_counter()
        return (await fut) - t0

    async def probe(self):
        t0 = time.perf_counter()
        path = f"/ws/{PROBE_ROOM}" if self.kind == "hub" else "/connect/ws"
        ws = await WS.connect(self.port, path, NORMAL_IP)
        try:
            if self.kind == "hub":
                first = await ws.recv_json()
                if first.get("type") != "welcome":
                    raise RuntimeError(f"probe refused: {first.get('code')}")
            return time.perf_counter() - t0
        finally:
            ws.close()


async def normal_main(kind, port, secs):
    client = Normal(kind, port)
    for attempt in range(50):
        try:
            await asyncio.wait_for(client.open(), OP_TIMEOUT)
            break
        except Exception:
            await asyncio.sleep(0.1)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    client.measuring = True
    start = time.perf_counter()
    deadline = start + secs
    res = {"connect_ms": [], "rtt_ms": [], "connect_failed": 0, "rtt_failed": 0}
    max_ops = int(secs / RTT_PERIOD) + 10

    async def rtt_loop():
        for n in range(max_ops):
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            try:
                res["rtt_ms"].append(await asyncio.wait_for(client.round_trip(n), OP_TIMEOUT) * 1000)
            except Exception as e:
                res["rtt_failed"] += 1
                client.note(f"rtt {type(e).__name__}")
                if isinstance(e, asyncio.TimeoutError):
                    client.drop("timeout")
            await asyncio.sleep(max(0.0, RTT_PERIOD - (time.perf_counter() - t0)))

    async def probe_loop():
        for _ in range(int(secs / PROBE_PERIOD) + 10):
            if time.perf_counter() >= deadline:
                break
            t0 = time.perf_counter()
            try:
                res["connect_ms"].append(await asyncio.wait_for(client.probe(), OP_TIMEOUT) * 1000)
            except Exception as e:
                res["connect_failed"] += 1
                desc = f"{e.status}" if isinstance(e, Refused) else type(e).__name__
                client.note(f"connect {desc}")
            await asyncio.sleep(max(0.0, PROBE_PERIOD - (time.perf_counter() - t0)))

    await asyncio.gather(rtt_loop(), probe_loop())
    window = time.perf_counter() - start
    client.measuring = False
    if client.reader_task:
        client.reader_task.cancel()
    if client.ws:
        client.ws.close()
    res.update(window_s=window, presence_per_s=client.presence / window,
               room_kib_per_s=client.room_bytes / 1024 / window, errors=client.errors)
    print(json.dumps(res), flush=True)


# ---------------------------------------------------------------------------------------------
# Attacks (their own process, on 127.0.0.1). Each updates `res` as it goes and returns a short
# description of what it saw. Every loop is bounded by a count and by `deadline`.

HELD = []  # writers and sockets kept open until the attack ends


def left(deadline):
    return max(0.01, deadline - time.monotonic())


def bump(res, key, n=1):
    res[key] = res.get(key, 0) + n


def refusal(e):
    if isinstance(e, Refused):
        return f"http {e.status}"
    if isinstance(e, Closed):
        return f"close {e.code} {e.reason}"
    return type(e).__name__


async def first_message(ws, timeout):
    """The first JSON message after the upgrade, or a dict describing the close."""
    try:
        return await asyncio.wait_for(ws.recv_json(), timeout)
    except Closed as e:
        return {"type": "closed", "code": e.code, "reason": e.reason}


async def close_code(ws, timeout=0.3):
    """What the server said before closing a connection we never read (if it can still be read)."""
    try:
        for _ in range(100_000):
            await asyncio.wait_for(ws.recv(), timeout)
    except Closed as e:
        return f"close {e.code} {e.reason}".strip()
    except asyncio.TimeoutError:
        return "no close seen"
    except Exception as e:
        return type(e).__name__
    return "?"


async def attack_none(port, deadline, res):
    await asyncio.sleep(left(deadline))
    return "-"


async def ping_flood(port, path, deadline, res):
    batch = b"".join(frame(9, b"") for _ in range(64))
    lives = []  # (pings written, seconds connected, how it ended) per connection
    for _ in range(10_000):
        if time.monotonic() >= deadline:
            break
        try:
            ws = await asyncio.wait_for(WS.connect(port, path, rcvbuf=4096, limit=1024), left(deadline))
        except Exception as e:
            bump(res, f"upgrade refused: {refusal(e)}")
            await asyncio.sleep(0.02)
            continue
        bump(res, "connections")
        ended, t_conn, pings = None, time.monotonic(), 0
        try:
            for _ in range(10_000_000):
                if time.monotonic() >= deadline:
                    break
                if ws.writer.transport.is_closing():
                    ended = "EOF"
                    break
                ws.send(batch)
                await asyncio.wait_for(ws.writer.drain(), left(deadline))
                pings += 64
        except asyncio.TimeoutError:
            ended = "writes blocked until the end"
        except (ConnectionError, OSError) as e:
            ended = type(e).__name__
        if ended and ended != "writes blocked until the end":
            said = await close_code(ws)  # usually unreadable: the server resets the socket
            ended = f"closed by server ({said if said.startswith('close') else ended})"
        lives.append((pings, time.monotonic() - t_conn, ended or "open at the end"))
        res["pings"] = res.get("pings", 0) + pings
        ws.abort()
    res["first_conns"] = [{"pings": p, "secs": round(t, 3), "ended": e} for p, t, e in lives[:5]]
    parts = [f"{len(lives)} conns, {res.get('pings', 0):,} pings written"]
    for how in sorted({e for _, _, e in lives}):
        group = [(p, t) for p, t, e in lives if e == how]
        parts.append(f"{len(group)} {how} after {sum(t for _, t in group) / len(group):.2f} s and "
                     f"{sum(p for p, _ in group) / len(group):,.0f} pings on average")
    parts += [f"{v} {k}" for k, v in res.items() if k.startswith("upgrade")]
    return "; ".join(parts)


async def attack_ping_flood(port, deadline, res):
    return await ping_flood(port, f"/ws/flood", deadline, res)


async def attack_echo_ping_flood(port, deadline, res):
    return await ping_flood(port, "/connect/ws", deadline, res)


def socket_state(s):
    try:
        data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return "closed by server" if data == b"" else "got data"
    except BlockingIOError:
        return "open"
    except OSError:
        return "reset by server"


async def open_many(port, total, concurrency, deadline, res):
    """Opens up to `total` raw TCP connections; returns the sockets."""
    loop = asyncio.get_running_loop()
    socks = []

    async def one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(s, (HOST, port)), min(2.0, left(deadline)))
            socks.append(s)
            HELD.append(s)
        except Exception as e:
            bump(res, f"connect failed ({type(e).__name__})")
            s.close()

    opened = 0
    for _ in range(total // concurrency + 1):
        if opened >= total or time.monotonic() >= deadline:
            break
        n = min(concurrency, total - opened)
        await asyncio.gather(*(one() for _ in range(n)))
        opened += n
    res["attempted"] = opened
    res["connected"] = len(socks)
    return socks


def tally(socks, res):
    for s in socks:
        bump(res, f"at end: {socket_state(s)}")
    return ", ".join(f"{v:,} {k[8:]}" for k, v in sorted(res.items()) if k.startswith("at end: "))


async def attack_idle_tcp(port, deadline, res):
    socks = await open_many(port, 5000, 200, deadline, res)
    await asyncio.sleep(left(deadline) - 0.05)
    return f"{res['connected']:,} of {res['attempted']:,} connected; at the end {tally(socks, res)}"


async def attack_slowloris(port, deadline, res):
    socks = await open_many(port, 2000, 200, deadline, res)
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    for i in range(1000):
        if time.monotonic() >= deadline - 0.1:
            break
        for s in socks:
            try:
                s.send(head[i:i + 1])
                bump(res, "bytes sent")
            except OSError:
                pass
        await asyncio.sleep(min(1.0, left(deadline) - 0.05))
    return (f"{res['connected']:,} of {res['attempted']:,} connected, {res.get('bytes sent', 0):,} bytes "
            f"sent; at the end {tally(socks, res)}")


async def attack_huge_headers(port, deadline, res):
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    pad = b"".join(b"X-Pad-%05d: " % i + b"a" * 88 + b"\r\n" for i in range(4000))  # ~400 KB, no end

    async def one():
        try:
            reader, writer = await asyncio.wait_for(tcp(port, rcvbuf=4096, limit=4096), left(deadline))
        except Exception as e:
            bump(res, f"connect failed ({type(e).__name__})")
            return
        HELD.append(writer)
        bump(res, "connections")
        outcome = "held open"
        try:
            writer.write(head + pad)
            await asyncio.wait_for(writer.drain(), min(1.0, left(deadline)))
            bump(res, "sent all 400 KB")
        except asyncio.TimeoutError:
            bump(res, "send blocked")
        except OSError:
            pass
        try:
            status, _ = await asyncio.wait_for(read_head(reader), 0.3)
            outcome = f"got {status}"
        except asyncio.TimeoutError:
            outcome = "held open (no answer)"
        except (asyncio.IncompleteReadError, OSError):
            outcome = "closed/reset"
        except Exception as e:
            outcome = type(e).__name__
        bump(res, f"outcome: {outcome}")

    done = 0
    for _ in range(100):
        if done >= 1000 or time.monotonic() >= deadline:
            break
        await asyncio.gather(*(one() for _ in range(50)))
        done += 50
    await asyncio.sleep(left(deadline) - 0.05)
    outcomes = ", ".join(f"{v} {k[9:]}" for k, v in sorted(res.items()) if k.startswith("outcome"))
    return f"{res.get('connections', 0)} conns: {outcomes}"


async def attack_slow_reader(port, deadline, res):
    sender = await WS.connect(port, f"/ws/{ROOM}")
    HELD.append(sender.writer)
    await first_message(sender, 2)
    state = {"gone": set()}

    async def sender_reader():
        try:
            for _ in range(1_000_000):
                msg = await sender.recv_json()
                if msg.get("type") == "peer_left":
                    state["gone"].add(msg.get("id"))
                    bump(res, f"peer_left {msg.get('reason')}")
                elif msg.get("type") == "error":
                    bump(res, f"error {msg.get('code')}")
        except Exception:
            pass

    reading = asyncio.create_task(sender_reader())
    # Paced just under the default byte limit (256 KiB/s after a 1 MiB burst): as fast as allowed.
    rate, tokens, last = 250_000.0, 1_000_000.0, time.monotonic()
    for _ in range(100):  # slow readers, one after the other
        if time.monotonic() >= deadline:
            break
        try:
            slow = await asyncio.wait_for(WS.connect(port, f"/ws/{ROOM}", rcvbuf=4096, limit=1024), left(deadline))
            welcome = await first_message(slow, 2)
        except Exception as e:
            bump(res, f"slow reader refused: {refusal(e)}")
            await asyncio.sleep(0.1)
            continue
        if welcome.get("type") != "welcome":
            bump(res, f"slow reader refused: {welcome.get('code')}")
            await asyncio.sleep(0.1)
            continue
        HELD.append(slow.writer)
        bump(res, "slow readers")
        target = welcome["id"]
        big = text_frame({"type": "message", "to": {"peer": target}, "data": "x" * BIG})
        for _ in range(1_000_000):
            if time.monotonic() >= deadline or target in state["gone"]:
                break
            now = time.monotonic()
            tokens = min(1_000_000.0, tokens + (now - last) * rate)
            last = now
            if tokens < len(big):
                await asyncio.sleep(min((len(big) - tokens) / rate, left(deadline)))
                continue
            tokens -= len(big)
            sender.send(big)
            await asyncio.wait_for(sender.writer.drain(), left(deadline))
            bump(res, "60 KB sent")
    reading.cancel()
    rest = ", ".join(f"{v} {k}" for k, v in sorted(res.items()) if k.startswith(("peer_left", "error", "slow reader ")))
    return (f"{res.get('60 KB sent', 0)} x 60 KB sent to {res.get('slow readers', 0)} slow reader(s)"
            + (f"; {rest}" if rest else "; slow reader never closed"))


async def attack_presence_storm(port, deadline, res):
    async def worker():
        for _ in range(100_000):
            if time.monotonic() >= deadline:
                break
            try:
                ws = await asyncio.wait_for(WS.connect(port, f"/ws/{ROOM}", limit=4096), left(deadline))
            except Exception as e:
                bump(res, refusal(e))
                continue
            try:
                msg = await first_message(ws, left(deadline))
                bump(res, "joined" if msg.get("type") == "welcome" else msg.get("code", msg.get("type")))
            except Exception as e:
                bump(res, refusal(e))
            ws.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(8)))
    secs = time.monotonic() - t0
    return ", ".join(f"{k} {v / secs:,.1f}/s" for k, v in sorted(res.items()))


async def attack_listing(port, deadline, res):
    async def create(i):
        meta = urllib.parse.quote(json.dumps({"mode": "ctf", "i": i, "pad": "m" * 200}))
        try:
            ws = await asyncio.wait_for(WS.connect(port, f"/ws/pub-{i}?public=true&meta={meta}", limit=4096), 2)
            msg = await first_message(ws, 2)
        except Exception as e:
            bump(res, f"room refused: {refusal(e)}")
            return
        if msg.get("type") == "welcome":
            HELD.append(ws.writer)
            bump(res, "rooms created")
        else:
            bump(res, f"room refused: {msg.get('code')}")
            ws.abort()

    for start in range(0, 200, 10):
        if time.monotonic() >= deadline:
            break
        await asyncio.gather(*(create(i) for i in range(start, start + 10)))
    request = f"GET /rooms HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    t0 = time.monotonic()

    async def poller():
        for _ in range(1000):  # connections
            if time.monotonic() >= deadline:
                return
            try:
                reader, writer = await asyncio.wait_for(tcp(port), left(deadline))
            except Exception as e:
                bump(res, f"poll connect failed ({type(e).__name__})")
                continue
            HELD.append(writer)
            try:
                for _ in range(1_000_000):
                    if time.monotonic() >= deadline:
                        return
                    writer.write(request)
                    status, headers = await asyncio.wait_for(read_head(reader), left(deadline))
                    body = await asyncio.wait_for(read_body(reader, headers), left(deadline))
                    bump(res, f"polls {status}")
                    bump(res, "poll bytes", len(body))
                    if headers.get("connection", "").lower() == "close":
                        break
            except Exception as e:
                bump(res, f"poll ended ({type(e).__name__})")
            writer.transport.abort()

    await asyncio.gather(*(poller() for _ in range(16)))
    secs = max(0.001, time.monotonic() - t0)
    polls = sum(v for k, v in res.items() if k.startswith("polls"))
    refused = ", ".join(f"{v} {k[14:]}" for k, v in res.items() if k.startswith("room refused"))
    statuses = ", ".join(f"{k[6:]}: {v:,}" for k, v in res.items() if k.startswith("polls "))
    return (f"{res.get('rooms created', 0)} public rooms created, refused: {refused or 'none'}; "
            f"{polls / secs:,.0f} polls/s ({statuses}), {res.get('poll bytes', 0) / max(polls, 1):,.0f} B each")


async def attack_code_guessing(port, deadline, res):
    async def worker():
        for _ in range(100_000):
            if time.monotonic() >= deadline:
                break
            code = "".join(random.choice(CODE_ALPHABET) for _ in range(6))
            try:
                ws = await asyncio.wait_for(WS.connect(port, f"/ws?code={code}", limit=4096), left(deadline))
            except Exception as e:
                bump(res, f"refused {refusal(e)}")
                continue
            try:
                msg = await first_message(ws, left(deadline))
            except Exception as e:
                msg = {"code": refusal(e)}
            code_ = msg.get("code")
            if msg.get("type") == "welcome":
                bump(res, "hit")
            elif code_ == "no_such_room":
                bump(res, "accepted (no_such_room)")
            elif code_ == "throttled":
                why = "lookups" if "lookup" in msg.get("message", "") else "joins"
                bump(res, f"refused throttled ({why})")
            else:
                bump(res, f"refused {code_}")
            ws.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(8)))
    secs = time.monotonic() - t0
    return ", ".join(f"{k} {v / secs:,.1f}/s" for k, v in sorted(res.items()))


async def attack_byte_flood(port, deadline, res):
    ws = await WS.connect(port, f"/ws/{ROOM}")
    HELD.append(ws.writer)
    await first_message(ws, 2)

    async def reader():
        try:
            for _ in range(1_000_000):
                msg = await ws.recv_json()
                if msg.get("type") == "error":
                    bump(res, f"error {msg.get('code')}")
        except Closed as e:
            bump(res, f"closed {e.code} {e.reason}")
        except Exception:
            pass

    reading = asyncio.create_task(reader())
    big = text_frame({"type": "message", "to": "room", "data": "x" * BIG})
    t0 = time.monotonic()
    try:
        for _ in range(10_000_000):
            if time.monotonic() >= deadline or ws.writer.transport.is_closing():
                break
            ws.send(big)
            await asyncio.wait_for(ws.writer.drain(), left(deadline))
            bump(res, "sent")
    except (asyncio.TimeoutError, OSError):
        pass
    secs = time.monotonic() - t0
    reading.cancel()
    errors = ", ".join(f"{v} {k}" for k, v in res.items() if k.startswith(("error", "closed")))
    return (f"{res.get('sent', 0):,} x 60 KB sent ({res.get('sent', 0) * len(big) / secs / 1e6:,.1f} MB/s)"
            f"; {errors or 'no error seen'}")


async def attack_echo_hold(port, deadline, res):
    state = {"refused": 0}

    async def one():
        try:
            ws = await asyncio.wait_for(WS.connect(port, "/connect/ws", rcvbuf=4096, limit=1024), min(2.0, left(deadline)))
        except Refused as e:
            state["refused"] += 1
            bump(res, str(e.status))
            return
        except Exception as e:
            bump(res, type(e).__name__)
            return
        HELD.append(ws.writer)
        bump(res, "101")

    tried = 0
    for _ in range(10_000 // 32 + 1):
        # Stop early when refused: the rest would be refused the same way.
        if tried >= 10_000 or time.monotonic() >= deadline or state["refused"] >= 32:
            break
        await asyncio.gather(*(one() for _ in range(32)))
        tried += 32
    res["tried"] = tried
    await asyncio.sleep(left(deadline) - 0.05)
    return f"{tried:,} tried: " + ", ".join(f"{v:,} x {k}" for k, v in sorted(res.items()) if k != "tried")


def offer_sdp():
    vectors = json.loads((ROOT / "testdata/compact-sdp.json").read_text())["valid"]
    return next(v["sdp"] for v in vectors if "offer" in v["name"] and v.get("sdp"))


async def attack_echo_offers(port, deadline, res):
    body = offer_sdp().encode()
    request = (f"POST /connect HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/sdp\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    t0 = time.monotonic()

    async def worker():
        for _ in range(1000):  # connections
            if time.monotonic() >= deadline:
                return
            try:
                reader, writer = await asyncio.wait_for(tcp(port), left(deadline))
            except Exception as e:
                bump(res, f"connect failed ({type(e).__name__})")
                continue
            HELD.append(writer)
            try:
                for _ in range(1_000_000):
                    if time.monotonic() >= deadline:
                        return
                    writer.write(request)
                    status, headers = await asyncio.wait_for(read_head(reader), left(deadline))
                    await asyncio.wait_for(read_body(reader, headers), left(deadline))
                    bump(res, str(status))
            except Exception as e:
                bump(res, f"ended ({type(e).__name__})")
            writer.transport.abort()

    await asyncio.gather(*(worker() for _ in range(4)))
    secs = max(0.001, time.monotonic() - t0)
    return ", ".join(f"{v:,} x {k} ({v / secs:,.0f}/s)" for k, v in sorted(res.items()))


async def attack_main(name, port, secs):
    os.nice(ATTACK_NICE)
    print("start", flush=True)
    res = {}
    deadline = time.monotonic() + secs
    fn = globals()[f"attack_{name}"]
    try:
        saw = await asyncio.wait_for(fn(port, deadline, res), secs + 5)
    except Exception as e:
        saw = f"attack stopped: {type(e).__name__} {e}; " + ", ".join(f"{k}: {v}" for k, v in res.items())
    for h in HELD:
        try:
            h.transport.abort() if hasattr(h, "transport") else h.close()
        except Exception:
            pass
    print(json.dumps({"saw": saw, "counts": res}), flush=True)


# ---------------------------------------------------------------------------------------------
# The driver.


class Server:
    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.tail = deque(maxlen=20)
        self.ready = threading.Event()
        if target == "hub":
            cmd = [SWITCHBOARD, "serve", "--listen", f"{HOST}:{self.port}", "--no-stun"]
        else:
            cmd = [ECHO, f"{HOST}:{self.port}", f"{HOST}:{free_port(socket.SOCK_DGRAM)}"]
        self.proc = subprocess.Popen(cmd, env=dict(os.environ, RUST_LOG="warn"), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self.drain, args=(stream,), daemon=True).start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{target} exited at start: {list(self.tail)}")
            if target == "echo" and self.ready.is_set() or target == "hub" and self.healthy():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{target} did not start")

    def drain(self, stream):
        for line in iter(stream.readline, b""):  # ends at EOF, when the process exits
            text = line.decode(errors="replace").rstrip()
            if text.startswith("echo http://"):
                self.ready.set()
            self.tail.append(text)

    def healthy(self):
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return b"ok" in s.recv(4096)
        except OSError:
            return False

    def stop(self):
        crashed = self.proc.poll()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return crashed


def child(args):
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_line(proc, timeout):
    """One line of a child's stdout, waiting at most `timeout` seconds."""
    fd, buf = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        if b"\n" in buf or time.monotonic() >= deadline:
            break
        if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").strip()


def finish(proc, timeout):
    """The last JSON line a child prints (killing it after `timeout`)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"failed": f"rc {proc.returncode}: {err.decode(errors='replace')[-300:]}"}


def run_row(key, target, label):
    server = Server(target)
    pid = server.proc.pid
    normal = attacker = None
    try:
        normal = child(["--normal", target, str(server.port), str(SECS)])
        if read_line(normal, 15) != "ready":
            raise RuntimeError("normal client did not get ready")
        attack = "none" if key.startswith("baseline") else key
        attacker = child(["--attack", attack, str(server.port), str(SECS)])
        if read_line(attacker, 10) != "start":
            raise RuntimeError("attacker did not start")
        peak = [rss_kib(pid)]
        stop = threading.Event()

        def sample():
            for _ in range(int((SECS + 60) * 10)):
                if stop.wait(0.1):
                    break
                try:
                    peak[0] = max(peak[0], rss_kib(pid))
                except (OSError, StopIteration):
                    break

        sampler = threading.Thread(target=sample, daemon=True)
        cpu0 = cpu_seconds(pid)
        sampler.start()
        normal.stdin.write(b"go\n")
        normal.stdin.flush()
        attacked = finish(attacker, SECS + 30)
        try:
            cpu = cpu_seconds(pid) - cpu0
        except OSError:
            cpu = float("nan")
        stop.set()
        sampler.join(timeout=2)
        measured = finish(normal, SECS + 15)
    finally:
        for proc in (normal, attacker):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        crashed = server.stop()
    row = {"key": key, "target": target, "attack": label, "peak_rss_mb": peak[0] / 1024, "cpu_s": cpu,
           "attacker": attacked, "normal": measured, "server_exited_during_run": crashed,
           "server_log_tail": list(server.tail)[-5:]}
    return row


def fmt(v):
    return "-" if v is None else f"{v:.1f}"


def verdict(row):
    n = row["normal"]
    if "failed" in n:
        return False, "normal client broke: " + n["failed"][:80]
    why = []
    cp99, rp99 = pct(n["connect_ms"], 99), pct(n["rtt_ms"], 99)
    if cp99 is None or cp99 >= TARGET_P99_MS:
        why.append(f"connect p99 {fmt(cp99)} ms")
    if rp99 is None or rp99 >= TARGET_P99_MS:
        why.append(f"rtt p99 {fmt(rp99)} ms")
    if row["peak_rss_mb"] >= TARGET_RSS_MB:
        why.append(f"RSS {row['peak_rss_mb']:.0f} MB")
    failed = n["connect_failed"] + n["rtt_failed"]
    if failed:
        why.append(f"{failed} failed")
    if row["server_exited_during_run"] is not None:
        why.append(f"server exited ({row['server_exited_during_run']})")
    return not why, "; ".join(why)


def table_line(row):
    n = row["normal"]
    ok, why = verdict(row)
    if "failed" in n:
        return f"| {row['target']} | {row['attack']} | - | - | - | {row['peak_rss_mb']:.0f} | {row['cpu_s']:.2f} | - | {row['attacker'].get('saw', '')} | FAIL: {why} |"
    ops = len(n["connect_ms"]) + n["connect_failed"], len(n["rtt_ms"]) + n["rtt_failed"]
    got = []
    if n["presence_per_s"]:
        got.append(f"{n['presence_per_s']:.1f} presence msgs/s")
    if n["room_kib_per_s"]:
        got.append(f"{n['room_kib_per_s']:.0f} KiB/s room data")
    if n["errors"]:
        got.append(", ".join(f"{k} x{v}" for k, v in n["errors"].items()))
    saw = row["attacker"].get("saw") or row["attacker"].get("failed", "")
    return (f"| {row['target']} | {row['attack']} | {fmt(pct(n['connect_ms'], 50))} / {fmt(pct(n['connect_ms'], 99))} "
            f"| {fmt(pct(n['rtt_ms'], 50))} / {fmt(pct(n['rtt_ms'], 99))} "
            f"| {n['connect_failed']} of {ops[0]} / {n['rtt_failed']} of {ops[1]} "
            f"| {row['peak_rss_mb']:.0f} | {row['cpu_s']:.2f} | {'; '.join(got) or '-'} | {saw} "
            f"| {'PASS' if ok else 'FAIL: ' + why} |")


def main():
    started = time.monotonic()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for binary in (SWITCHBOARD, ECHO):
        if not binary.exists():
            sys.exit(f"missing {binary.relative_to(ROOT)}: build the release binaries first (not done here)")
    rows = []
    for key, target, label in ROWS:
        if ONLY and key not in ONLY:
            continue
        t0 = time.monotonic()
        try:
            row = run_row(key, target, label)
        except Exception as e:
            print(f"{label}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        rows.append(row)
        print(f"[{time.monotonic() - started:5.0f} s] {time.monotonic() - t0:4.1f} s  {table_line(row)}",
              file=sys.stderr, flush=True)
    stamp = utc_stamp()
    lines = [
        f"# Abuse benchmark, {stamp}",
        "",
        f"Each row: a fresh server with default limits (hub: `switchboard serve --no-stun`; server peer: "
        f"`examples/echo`), attacked for {SECS:g} s from 127.0.0.1 (attacker niceness {ATTACK_NICE}) while a "
        f"normal client on 127.0.0.2 connects every {PROBE_PERIOD * 1000:.0f} ms (hub: TCP + upgrade + "
        f"`welcome`; peer: TCP + upgrade) and does a round trip every {RTT_PERIOD * 1000:.0f} ms on one "
        f"connection (hub: a message to `self`; peer: a 10-byte reliable binary echo); an operation slower "
        f"than {OP_TIMEOUT:g} s counts as failed. Server RSS: peak of /proc VmRSS sampled every 100 ms during "
        f"the attack; CPU: user+system seconds during the attack. Target: normal connect and round-trip "
        f"p99 under {TARGET_P99_MS} ms, RSS under {TARGET_RSS_MB} MB, no failed operation. "
        f"{os.cpu_count()} cores shared by server, attacker and normal client; p99 of ~{SECS / PROBE_PERIOD:.0f} "
        f"connects and ~{SECS / RTT_PERIOD:.0f} round trips per row. Run time {time.monotonic() - started:.0f} s.",
        "",
        "| target | attack | normal connect p50 / p99 ms | normal round trip p50 / p99 ms | normal failed (connects / round trips) "
        "| peak RSS MB | server CPU s | normal client received | attacker saw | result |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
        *[table_line(row) for row in rows],
        "",
        "Raw: " + json.dumps(rows),
        "",
    ]
    publish("abuse", stamp, lines)
    print(f"run time {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--normal":
        asyncio.run(normal_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--attack":
        asyncio.run(attack_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        main()
