"""The evaluation's outputs besides the JSON: the ROC plot and the printed table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.eval_report import CITATION

__all__ = ["print_table", "write_roc_png"]


def write_roc_png(
    curves: Mapping[str, tuple[list[float], list[float]]],
    auroc: Mapping[str, float | None],
    counts: Mapping[str, Mapping[str, Any]],
    path: Path,
) -> None:
    """The ROC curves of in-hospital death, one line per score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "max_news2": "max NEWS2 over the stay (no SpO2)",
        "saps1": "SAPS-I (Outcomes-a.txt)",
        "online_risk": "online risk, prequential, all stays",
        "online_risk_second_half": "online risk, later half of stays",
    }
    styles = {"online_risk_second_half": "--"}
    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=120)
    for name, (fpr, tpr) in curves.items():
        n = counts.get(name, {})
        ax.plot(
            fpr,
            tpr,
            linestyle=styles.get(name, "-"),
            label=f"{labels[name]}: AUROC {auroc[name]:.3f} (n={n.get('n')})",
        )
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("In-hospital death, PhysioNet/CinC 2012 set A", fontsize=11)
    ax.legend(loc="lower right", fontsize=7.5)
    fig.text(
        0.01,
        0.005,
        "Data: Silva et al., CinC 2012; PhysioNet (Goldberger et al., Circulation 2000)",
        fontsize=6.5,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def print_table(report: Mapping[str, Any]) -> None:
    """A short rich table of the headline figures, with the data source."""
    from rich.console import Console
    from rich.table import Table

    detail = report["auroc_detail"]
    table = Table(
        title=f"twinstream on real data: {report['stays']} stays, {report['deaths']} deaths"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("note")
    names = {
        "max_news2": "AUROC max NEWS2",
        "saps1": "AUROC SAPS-I",
        "online_risk": "AUROC online risk (prequential)",
        "online_risk_second_half": "AUROC online risk, later half",
    }
    for key, label in names.items():
        d = detail[key]
        value = "n/a" if d["auroc"] is None else f"{d['auroc']:.3f}"
        ci = d.get("ci95")
        note = f"95% CI {ci[0]:.3f}-{ci[1]:.3f}, " if ci else ""
        note += f"n={d['n']}, deaths={d['positives']}" + (f"; {d['reason']}" if d["reason"] else "")
        table.add_row(label, value, note)
    rates = report["alerts_per_patient_day"]
    for kind, r in rates.items():
        table.add_row(
            f"alerts/patient-day {kind}",
            f"{r['open']:.2f}",
            f"escalated {r['escalated']:.2f}, reminder {r['reminder']:.2f}",
        )
    p = report["predicted_deterioration"]
    if p["share_then_news2_ge5"] is not None:
        table.add_row(
            "predicted -> NEWS2>=5 later",
            f"{p['share_then_news2_ge5']:.1%}",
            f"of {p['stays_with_prediction']} stays (no prediction: "
            f"{p['share_without_prediction_with_news2_ge5_alert']:.1%}); median "
            f"{p['median_lead_time_observed_minutes']} min after, "
            f"{p['median_lead_time_claimed_minutes']} min claimed",
        )
    if p["share_of_those_reaching_ge5_within_claimed_lead"] is not None:
        table.add_row(
            "  from NEWS2<5, >=5 within lead",
            f"{p['share_of_those_reaching_ge5_within_claimed_lead']:.1%}",
            f"of {p['episodes_from_news2_below5']} predictions (alert-based: a lower bound)",
        )
    b = report["redis_bytes_per_twin"]
    table.add_row(
        "Redis bytes per twin", f"{b['median']:.0f}", f"p95 {b['p95']:.0f}, max {b['max']:.0f}"
    )
    t = report["throughput"]
    table.add_row(
        "worker CPU per event",
        f"{t['worker_cpu_us_per_event']:.0f} µs",
        f"{t['events_per_s']:.0f} events/s over the run ({t['events']} events)",
    )
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(f"[dim]{CITATION}[/dim]")
