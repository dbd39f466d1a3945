"""ranker: a small key-value service with a feature-flagged ranking path.

Flags come from RANKER_* environment variables (the entrypoint sources
/etc/ranker/flags.env); POST /admin/flags overrides them in memory until the next
restart. Each KV request is a feature decision: sampled (feature on, not in safe mode,
random() < sample_rate), it takes the new code path, which serves RANKER_STRATEGY (or
classic, comparing, in the shadow stage); else classic serves it. Every KV request logs
one decision line to /var/log/ranker/decisions.jsonl.
Python 3 standard library only.
"""
import hashlib
import json
import math
import os
import random
import signal
import sqlite3
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

VERSION = os.environ.get("RANKER_VERSION", "1.0")
PORT = 8080
DB_PATH = "/var/lib/ranker/kv.db"
LOG_PATH = "/var/log/ranker/decisions.jsonl"
STRATEGIES = ("classic", "reranker-v2")
STAGES = ("off", "shadow", "internal", "public")


def parse_bool(name, raw):
    v = str(raw).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{name}: not a boolean: {raw!r}")


def parse_number(name, raw, top=None):
    try:
        if isinstance(raw, bool):
            raise TypeError()
        v = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not a number: {raw!r}") from None
    if v < 0 or (top is not None and v > top) or v != v:
        raise ValueError(f"{name}: {v} is outside 0..{top if top is not None else 'inf'}")
    return v


def parse_ratio(name, raw):
    return parse_number(name, raw, 1.0)


def parse_choice(name, raw, choices):
    if raw not in choices:
        raise ValueError(f"{name}: {raw!r} is not one of {', '.join(choices)}")
    return raw


def flags_from_env(env):
    """The flags at process start. A bad value stops the service: a typo in
    flags.env must not silently mean 'off'."""
    return {
        "feature_enabled": parse_bool("RANKER_FEATURE_ENABLED", env.get("RANKER_FEATURE_ENABLED", "false")),
        "sample_rate": parse_ratio("RANKER_SAMPLE_RATE", env.get("RANKER_SAMPLE_RATE", "0")),
        "strategy": parse_choice("RANKER_STRATEGY", env.get("RANKER_STRATEGY", "classic"), STRATEGIES),
        "strategy_stage": parse_choice("RANKER_STRATEGY_STAGE", env.get("RANKER_STRATEGY_STAGE", "off"), STAGES),
        "safe_mode": parse_bool("RANKER_SAFE_MODE", env.get("RANKER_SAFE_MODE", "false")),
        "new_path_error_rate": parse_ratio("RANKER_NEW_PATH_ERROR_RATE", env.get("RANKER_NEW_PATH_ERROR_RATE", "0")),
        "new_path_delay_ms": parse_number("RANKER_NEW_PATH_DELAY_MS", env.get("RANKER_NEW_PATH_DELAY_MS", "0")),
    }


# What POST /admin/flags may change; the sabotage knobs only come from the environment.
ADMIN_KEYS = {
    "feature_enabled": lambda v: v if isinstance(v, bool) else parse_bool("feature_enabled", v),
    "sample_rate": lambda v: parse_ratio("sample_rate", v),
    "strategy": lambda v: parse_choice("strategy", v, STRATEGIES),
    "strategy_stage": lambda v: parse_choice("strategy_stage", v, STAGES),
    "safe_mode": lambda v: v if isinstance(v, bool) else parse_bool("safe_mode", v),
}


class Flags:
    def __init__(self, initial):
        self._lock = threading.Lock()
        self._flags = dict(initial)
        self._overridden = set()

    def snapshot(self):
        with self._lock:
            return dict(self._flags)

    def update(self, changes):
        """Validates every change first, so a bad body changes nothing."""
        parsed = {}
        for key, value in changes.items():
            if key not in ADMIN_KEYS:
                raise ValueError(f"unknown flag {key!r}; accepted: {', '.join(ADMIN_KEYS)}")
            parsed[key] = ADMIN_KEYS[key](value)
        with self._lock:
            self._flags.update(parsed)
            self._overridden.update(parsed)

    def describe(self):
        with self._lock:
            return {"version": VERSION, **self._flags, "runtime_overrides": sorted(self._overridden)}


class Store:
    """One sqlite3 connection behind a lock; every write is committed before the reply."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def put(self, key, value):
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))
            self._db.commit()

    def get(self, key):
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def ping(self):
        with self._lock:
            self._db.execute("SELECT 1").fetchone()

    def close(self):
        with self._lock:
            self._db.close()


class DecisionLog:
    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1, encoding="utf-8")
        self._counter = 0

    def next_id(self):
        with self._lock:
            self._counter += 1
            return self._counter

    def write(self, ts, record):
        # ts first and with exactly 6 decimals (microseconds), the rest as JSON.
        line = '{"ts": %.6f, %s' % (ts, json.dumps(record)[1:])
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


# The two ranking strategies: each scores a key and its value in [0, 1) and decides
# "promote" (score >= 0.5) or "keep". reranker-v2 blends classic's score with the
# character entropy of key and value and a hash, so the two agree on most requests and
# differ on about one in ten (what shadow measures).

def score_classic(key, value):
    return (zlib.crc32(key.encode("utf-8")) % 1000) / 1000.0


def score_reranker_v2(key, value):
    text = key + value
    counts = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text) or 1
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    digest = hashlib.sha256(f"{key}\0{value}".encode("utf-8")).digest()
    return min(0.6 * score_classic(key, value) + 0.15 * min(entropy / 4.0, 1.0)
               + 0.25 * digest[0] / 256.0, 0.999)


SCORERS = {"classic": score_classic, "reranker-v2": score_reranker_v2}


def rank(strategy, key, value):
    return "promote" if SCORERS[strategy](key, value) >= 0.5 else "keep"


class NewPathError(Exception):
    pass


def decide(flags, key, value):
    """The feature decision for one KV request: (status, served strategy, rank, mismatch).
    Raises NewPathError when the sampled path fails (the request is then not served)."""
    sampled = (flags["feature_enabled"] and not flags["safe_mode"]
               and random.random() < flags["sample_rate"])
    if not sampled:
        return "skipped", "classic", rank("classic", key, value), None
    # The new code path: the configured strategy, with the twins' sabotage knobs.
    if flags["new_path_delay_ms"] > 0:
        time.sleep(flags["new_path_delay_ms"] / 1000.0)
    if random.random() < flags["new_path_error_rate"]:
        raise NewPathError()
    new_rank = rank(flags["strategy"], key, value)
    if flags["strategy_stage"] == "shadow":
        classic_rank = rank("classic", key, value)
        return "applied", "classic", classic_rank, new_rank != classic_rank
    return "applied", flags["strategy"], new_rank, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the load's clients
    # Headers and body in one write, sent at once: written apart, Nagle's algorithm and the
    # client's delayed ACK hold every keep-alive answer ~40 ms (measured: p50 43 ms).
    wbufsize = -1
    disable_nagle_algorithm = True
    server_version = "ranker/" + VERSION

    def log_message(self, fmt, *args):  # no per-request noise on stdout
        pass

    def reply(self, status, body, headers=None, content_type="application/json"):
        data = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def route(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/kv/"):
            return self.kv(unquote(path[len("/kv/"):]))
        if path == "/healthz" and self.command == "GET":
            self.server.store.ping()
            return self.reply(200, "ok\n", content_type="text/plain")
        if path == "/api/config" and self.command == "GET":
            f = self.server.flags.snapshot()
            new_on = f["feature_enabled"] and not f["safe_mode"]
            return self.reply(200, {
                "version": VERSION,
                **{k: f[k] for k in ADMIN_KEYS},
                "strategies": list(STRATEGIES) if new_on else ["classic"],
            })
        if path == "/admin/flags" and self.command == "GET":
            return self.reply(200, self.server.flags.describe())
        if path == "/admin/flags" and self.command == "POST":
            try:
                changes = json.loads(self.read_body() or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                self.server.flags.update(changes)
            except ValueError as e:  # json.JSONDecodeError is a ValueError
                return self.reply(400, {"error": str(e)})
            return self.reply(200, self.server.flags.describe())
        return self.reply(404, {"error": "no such endpoint"})

    def kv(self, key):
        start = time.monotonic()
        raw = self.read_body()  # read even when refused, so a kept-alive stream stays in step
        if self.command not in ("GET", "PUT"):
            return self.reply(405, {"error": "GET or PUT"})
        value = None
        if self.command == "PUT":
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                return self.reply(400, {"error": "the value must be UTF-8"})
        if not key:
            return self.reply(400, {"error": "empty key"})
        flags = self.server.flags.snapshot()
        record = {"id": self.server.log.next_id(), "method": self.command, "key": key}
        try:
            status, strategy, ranked, mismatch = decide(flags, key, value if value is not None else "")
        except NewPathError:
            status, strategy, ranked, mismatch = "error", flags["strategy"], None, None
        headers = {"X-Decision": status, "X-Strategy": strategy}
        if status == "error":
            code, body = 500, {"error": f"{strategy} failed"}
        elif self.command == "PUT":
            self.server.store.put(key, value)
            code, body = 200, {"ok": True}
        else:
            stored = self.server.store.get(key)
            code, body = (404, {"error": "absent"}) if stored is None else (200, {"key": key, "value": stored})
        if ranked is not None:
            headers["X-Rank"] = ranked
        latency_ms = (time.monotonic() - start) * 1000.0
        record.update({
            "status": status, "strategy": strategy,
            "stage": flags["strategy_stage"], "sample_rate": flags["sample_rate"],
            "latency_ms": round(latency_ms, 2), "mismatch": mismatch, "version": VERSION,
        })
        self.server.log.write(time.time(), record)
        self.reply(code, body, headers)

    def do_GET(self):
        self.route()

    def do_PUT(self):
        self.route()

    def do_POST(self):
        self.route()


def main():
    try:
        flags = Flags(flags_from_env(os.environ))
    except ValueError as e:
        print(f"ranker {VERSION}: bad flag: {e}", file=sys.stderr, flush=True)
        return 2
    store = Store(DB_PATH)
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True  # idle keep-alive connections must not hold up exit
    server.store, server.flags, server.log = store, flags, DecisionLog(LOG_PATH)

    # docker stop sends SIGTERM to PID 1 (this process): stop serving, close the database.
    # shutdown() waits for serve_forever, so it runs in another thread.
    def on_signal(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"ranker {VERSION} listening on :{PORT}, flags: {json.dumps(flags.snapshot())}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    store.close()
    print(f"ranker {VERSION} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
