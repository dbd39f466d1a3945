#!/usr/bin/env python3
"""ranker-analyze: sums up ranker's decision log over the last SECONDS.

Prints one JSON object. Ratios are plain floats (0.05 is 5 %); a ratio whose
denominator is zero is null.
"""
import argparse
import json
import math
import os
import sys
import time

BLOCK = 1 << 20  # read the log backwards 1 MiB at a time


def recent_lines(path, cutoff):
    """The log's complete lines from the end back to the first one older than cutoff.
    The log only grows, with ts in (almost) increasing order, so reading backwards stops
    after a few blocks however long the file is."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        pos, tail, lines = end, b"", []
        while pos > 0:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + tail
            parts = chunk.split(b"\n")
            tail = parts.pop(0) if pos > 0 else b""  # maybe cut: finish it with the next block
            lines[:0] = parts
            first = next((p for p in parts if p.strip()), None)
            if first is not None and ts_of(first) < cutoff - 1.0:  # 1 s slack for out-of-order writers
                break
        return lines


def ts_of(raw):
    try:
        return float(json.loads(raw)["ts"])
    except (ValueError, KeyError, TypeError):
        return math.inf  # a line being written: keep reading


def ratio(num, den):
    return round(num / den, 6) if den else None


def p95(values):
    if not values:
        return None
    values = sorted(values)
    return values[max(0, math.ceil(0.95 * len(values)) - 1)]  # nearest rank


def analyze(path, window):
    cutoff = time.time() - window
    requests = applied = skipped = errors = compared = mismatches = 0
    sampled_latency = []
    for raw in recent_lines(path, cutoff):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            ts = float(rec["ts"])
        except (ValueError, KeyError, TypeError):
            continue  # the last line may still be half written
        if ts < cutoff:
            continue
        requests += 1
        status = rec.get("status")
        if status == "skipped":
            skipped += 1
            continue
        if status == "applied":
            applied += 1
        elif status == "error":
            errors += 1
        else:
            continue
        sampled_latency.append(float(rec.get("latency_ms", 0.0)))
        if rec.get("mismatch") is not None:
            compared += 1
            mismatches += bool(rec["mismatch"])
    sampled = applied + errors
    return {
        "window_s": window,
        "requests": requests,
        "sampled": sampled,
        "applied": applied,
        "skipped": skipped,
        "errors": errors,
        "acceptance_rate": ratio(applied, sampled),
        "error_rate": ratio(errors, sampled),
        "sampled_rate": ratio(sampled, requests),
        "p95_latency_ms": p95(sampled_latency),
        "mismatch_rate": ratio(mismatches, compared),
        "skipped_rate": ratio(skipped, requests),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=10.0, metavar="SECONDS",
                    help="only lines whose ts is within the last SECONDS (default 10)")
    ap.add_argument("--log", default="/var/log/ranker/decisions.jsonl", metavar="PATH")
    args = ap.parse_args()
    if args.window <= 0:
        ap.error("--window must be above 0")
    window = int(args.window) if args.window.is_integer() else args.window
    print(json.dumps(analyze(args.log, window)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
