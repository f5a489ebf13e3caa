"""Write ``bench/results/latest.json`` and ``latest.png``; print the summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.env import RESULTS

__all__ = ["plot", "table", "write_json"]

_BARS = (
    ("aiokafka_raw", "aiokafka raw\n(decode)"),
    ("quix_bare", "Quix Streams\n(decode)"),
    ("faust_bare", "Faust bare\n(decode)"),
    ("faust_bare_tuned", "Faust bare\nuvloop, no Monitor"),
    ("faust_bare_eager", "Faust bare\n+ eager delivery"),
    ("faust_bare_batch", "Faust bare\n+ batch delivery"),
    ("twinstream", "twinstream\n(1 worker)"),
    ("naive", "naive peer\n(GET/pickle/SET)"),
)


def write_json(res: dict[str, Any], path: Path = RESULTS / "latest.json") -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2, default=str) + "\n")
    tmp.rename(path)


def plot(res: dict[str, Any], path: Path = RESULTS / "latest.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    eps = res.get("throughput_eps", {})
    bars = [(label, eps.get(key) or 0) for key, label in _BARS]
    colors = ["#888"] * (len(bars) - 2) + ["#1f77b4", "#d62728"]
    ax1.bar([b[0] for b in bars], [b[1] for b in bars], color=colors)
    for i, (_, value) in enumerate(bars):
        ax1.annotate(f"{value:,}", (i, value), ha="center", va="bottom", fontsize=8)
    ax1.set_ylabel("messages (events) per second, one process")
    ax1.set_yscale("log")
    ax1.set_title("Throughput, same input, first to last message")
    ax1.tick_params(axis="x", labelsize=7)
    for key in sorted(k for k in res if k.startswith("latency_ms")):
        lat_file = RESULTS / "runs" / f"{key}.json"
        lat = json.loads(lat_file.read_text()) if lat_file.exists() else []
        if not lat:
            continue
        offered = (res.get(key.replace("_ms", "_run"), {}).get("offered") or {}).get("rate", 0)
        ys = [(i + 1) / len(lat) for i in range(len(lat))]
        q = res[key]
        label = f"{offered:,.0f}/s{_alerts(res, key)}: p50 {q['p50']:.0f}, p99 {q['p99']:.0f} ms"
        ax2.plot(lat, ys, label=label)
    if ax2.lines:
        ax2.set_xscale("log")
        ax2.legend(fontsize=8, loc="lower right")
    ax2.set_title("Event-to-alert latency CDF (vitals in, alert received)")
    ax2.set_xlabel("ms (log)")
    ax2.set_ylabel("fraction of alerts")
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"twinstream bench ({res.get('mode')}, {res.get('finished', '')}) - noisy 2-core")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _alerts(res: dict[str, Any], key: str) -> str:
    """`` (synchronized alerts)`` for a latency run whose feed changed every patient's
    level on the same round (``bench.latency``), `` (2 workers)`` for one with more
    than one worker; empty for the steady feed and one worker."""
    run = res.get(key.replace("_ms", "_run"), {})
    offered = run.get("offered") or {}
    label = " (synchronized alerts)" if offered.get("alerts") == "synchronized" else ""
    return label + (f" ({run['workers']} workers)" if run.get("workers", 1) > 1 else "")


def table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"twinstream bench ({res.get('mode')})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for key, label in _BARS:
        value = res.get("throughput_eps", {}).get(key)
        t.add_row(f"throughput: {label.replace(chr(10), ' ')}", f"{value:,}/s" if value else "-")
    ratio = res.get("naive_ratio") or {}
    if ratio:
        t.add_row(
            "twinstream / naive: whole input vs naive's first events / same first events",
            f"{ratio['whole_input_vs_first']}x / {ratio['same_first_events']}x"
            f" (first {ratio['first_events']:,})",
        )
    abba = res.get("vs_tuned_faust") or {}
    if abba.get("ratio"):
        t.add_row(
            "twinstream / tuned bare Faust, ABBA (runs: twinstream; Faust)",
            f"{abba['ratio']:.0%} ({', '.join(f'{v:,}' for v in abba['twinstream'])};"
            f" {', '.join(f'{v:,}' for v in abba['faust_bare_tuned'])})",
        )
    for key in sorted(k for k in res if k.startswith("latency_ms")):
        lat = res[key]
        offered = (res.get(key.replace("_ms", "_run"), {}).get("offered") or {}).get("rate", 0)
        quantiles = " / ".join(str(lat.get(q)) for q in ("p50", "p95", "p99"))
        label = f"latency p50/p95/p99 ms at {offered:,.0f}/s offered{_alerts(res, key)}"
        t.add_row(label, quantiles)
    b = res.get("redis_bytes_per_twin", {})
    t.add_row("Redis bytes per twin (median / max)", f"{b.get('median')} / {b.get('max')}")
    t.add_row("worker RSS with 100k twins (MB)", str(res.get("worker_rss_mb_100k_twins")))
    t.add_row(
        "two-worker speedup (first-to-last / steady)",
        f"{res.get('two_worker_speedup')} / {res.get('two_worker_speedup_steady')}",
    )
    t.add_row(
        "Redis per event: commands sent / round trips / run by the server",
        f"{res.get('redis_commands_per_event')} / {res.get('redis_round_trips_per_event')}"
        f" / {res.get('redis_server_commands_per_event')}",
    )
    t.add_row(
        "wearable obs/s: batched (60/msg) vs single",
        f"{res.get('batched_obs_per_s')} vs {res.get('single_obs_per_s')}",
    )
    Console().print(t)
    for note in res.get("notes", []):
        Console().print(f"[yellow]note:[/] {note}")
