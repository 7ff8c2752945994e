"""Throughput of `cxr-export label` on one machine: the single-process engine and Ray with 1..N actor workers on the
same folder, with start-up cost and per-actor memory. Prints one JSON line per configuration and a Markdown table.

    python -m cxr_export.label_bench DIR [--workers 1 2] [--clip cxr-clip] [--batch 16] [--out /tmp/label-bench]

images/s is rows per second of labelling (Ray: from the first batch request, actor start included; ray_init_s
apart); actor RSS is the largest resident set of any `ray::MapWorker` process sampled every 0.2 s (ps), the
driver's RSS is the job process's largest sample (the whole job for the local engine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def _sample_rss_mb(stop: threading.Event, peak: list[float], driver: list) -> None:
    """peak[0]: largest RSS of a ray::MapWorker process; peak[1]: largest RSS of the job process (driver[0].pid)."""
    while not stop.is_set():
        try:
            out = subprocess.run(["ps", "-eo", "pid=,rss=,args="], capture_output=True, text=True, timeout=5).stdout
        except subprocess.TimeoutExpired:
            continue
        for line in out.splitlines():
            pid, rss, args = (line.split(None, 2) + ["", ""])[:3]
            if "ray::MapWorker" in args:
                peak[0] = max(peak[0], int(rss) / 1024)
            if driver and pid == str(driver[0].pid):
                peak[1] = max(peak[1], int(rss) / 1024)
        stop.wait(0.2)


def run_one(inp: str, out: Path, engine: str, workers: int, extra: list[str]) -> dict:
    """One `cxr-export label` run in a child process; its metrics JSON plus wall time and memory."""
    stop, peak, driver = threading.Event(), [0.0, 0.0], []
    t = threading.Thread(target=_sample_rss_mb, args=(stop, peak, driver), daemon=True)
    t.start()
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "cxr_export", "label", inp, "--out", str(out), "--engine", engine,
                          "--workers", str(workers), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    driver.append(p)
    stdout, stderr = p.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    t.join()
    if p.returncode:
        raise SystemExit(stderr[-2000:])
    m = json.loads(stdout.strip().splitlines()[-1])
    return {"engine": engine, "workers": workers if engine == "ray" else 1, "n": m["n"] + m["skipped"],
            "images_per_second": round(m["images_per_second"], 2), "wall_s": round(wall, 1),
            "ray_init_s": m.get("ray_init_seconds") and round(m["ray_init_seconds"], 1),
            "first_batch_s": m.get("first_batch_seconds") and round(m["first_batch_seconds"], 1),
            "actor_rss_mb": round(peak[0]) if engine == "ray" else None,
            "driver_rss_mb": round(peak[1])}


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--clip", default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", default="/tmp/label-bench")
    a = p.parse_args(argv)
    extra = ["--batch", str(a.batch)] + (["--clip", a.clip] if a.clip else [])
    rows = [run_one(a.input, Path(a.out) / "local", "local", 1, extra)]
    print(json.dumps(rows[-1]), flush=True)
    for w in a.workers:
        rows.append(run_one(a.input, Path(a.out) / f"ray{w}", "ray", w, extra))
        print(json.dumps(rows[-1]), flush=True)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
