"""The run report as data: ``report.json``, its verdict and the summaries behind its plots.

The verdict sentences are generated from the numbers, never written by hand, so the text cannot
disagree with the table beside it. :mod:`is_core.report.render` turns the report into
``report.md`` and ``report.html`` for people.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from is_core import __version__
from is_core.ctr.model import library_versions
from is_core.weights.normalize import effective_sample_size
from is_core.weights.psis import pareto_khat

REPORT_SCHEMA_VERSION = 1


def build_report(
    *,
    run_date: str,
    config: dict[str, Any],
    inputs: dict[str, Any],
    validation: dict[str, Any],
    proposal: dict[str, Any],
    weights: dict[str, Any],
    models: dict[str, Any],
    metrics: dict[str, Any],
    weight_profile: dict[str, Any] | None = None,
    promotion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the machine-readable report of one run (no timestamps outside ``timings``).

    ``weight_profile`` (:func:`weight_profile`) feeds the HTML plots; ``promotion`` is the
    champion/challenger decision when the flow made one. ``candidates`` lists every candidate
    model side by side (metrics with intervals, paired logloss difference to the unweighted
    baseline), ``selected`` the one the gate chose as today's challenger (None without a
    promotion gate), ``exposure_features`` the columns the CTR models never saw, ``sampling``
    how the training rows were subsampled (None without ``train.sampling``; its sentences:
    :func:`sampling_lines`).
    """
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "isbench_version": __version__,
        "run_date": run_date,
        "config": config,
        "inputs": {
            "days": inputs["days"],
            "roles": {r: {"fingerprint": v["fingerprint"], "files": len(v["files"])}
                      for r, v in inputs["roles"].items()},
        },
        "validation": validation_section(validation),
        "proposal": {k: v for k, v in proposal.items() if k not in ("path", "seconds")},
        "weights": weights["diagnostics"],
        "target_ctr": weights["target_ctr"],
        "models": {n: {k: v for k, v in m.items() if k not in ("path", "seconds")}
                   for n, m in models.items() if m is not None and n != "sampling"},
        "sampling": models.get("sampling"),
        "metrics": metrics,
        "candidates": metrics.get("candidates", {}),
        "selected": (promotion or {}).get("challenger", {}).get("model"),
        "exposure_features": list(config.get("columns", {}).get("exposure", [])),
        "verdict": verdict(metrics, promotion),
        "environment": {"python": platform.python_version(), **library_versions()},
        "timings_seconds": {
            "proposal": proposal.get("seconds"),
            **{f"train_{n}": m.get("seconds") for n, m in models.items() if m is not None},
        },
    }
    if weight_profile is not None:
        report["weight_profile"] = weight_profile
    if promotion is not None:
        report["promotion"] = promotion
    return report


#: How the verdict names the evaluation rows, by ``metrics["evaluated_on"]`` (the names of
#: :func:`is_core.ctr.stage.evaluation_rows`): a labeled target holdout scored unweighted, or,
#: without one, source rows kept out of training and scored with the final importance weights.
EVALUATED_ON = {
    "target_holdout": "target holdout logloss",
    "source_split_importance_weighted": "logloss on an importance-weighted source split "
    "(no target holdout)",
}


def verdict(metrics: dict[str, Any], promotion: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plain-language comparison of the weighted model with the unweighted baseline.

    The logloss outcome follows the paired 95 % interval of (weighted - unweighted) logloss:
    "improved" when it lies below 0, "worsened" above 0, otherwise "did not significantly
    change". The paired bootstrap interval is used when present (``metrics["differences"]``),
    else the delta-method one (``metrics["delta"]``). ``X ± Y`` is the point difference and the
    interval's half-width. The first sentence names the rows the models were scored on
    (:data:`EVALUATED_ON`), so a reader can tell a target holdout from an importance-weighted
    estimate on source rows.
    """
    d = metrics.get("differences", {}).get("weighted", {}).get("logloss") or (
        metrics["delta"]["logloss"])
    w, u = metrics["weighted"], metrics["unweighted"]
    if d["ci_high"] < 0:
        outcome = "improved"
    elif d["ci_low"] > 0:
        outcome = "worsened"
    else:
        outcome = "did not significantly change"
    on = metrics["evaluated_on"]
    where = EVALUATED_ON.get(on, f"{on.replace('_', ' ')} logloss")
    half = (d["ci_high"] - d["ci_low"]) / 2
    calib_w, calib_u = abs(w["calibration_ratio"] - 1), abs(u["calibration_ratio"] - 1)
    calibration = ("closer to 1 with weighting" if calib_w < calib_u else
                   "further from 1 with weighting" if calib_w > calib_u else "unchanged")
    text = (
        f"Importance weighting {outcome} {where}: {w['logloss']:.5f} weighted vs "
        f"{u['logloss']:.5f} unweighted, a change of {d['value']:+.5f} ± {half:.5f} "
        f"(95 % CI [{d['ci_low']:+.5f}, {d['ci_high']:+.5f}]). Calibration ratio (mean "
        f"prediction / observed CTR) {w['calibration_ratio']:.3f} weighted vs "
        f"{u['calibration_ratio']:.3f} unweighted ({calibration}); ECE "
        f"{w.get('ece', float('nan')):.5f} vs {u.get('ece', float('nan')):.5f}; AUC "
        f"{w['auc']:.4f} vs {u['auc']:.4f}."
    )
    out: dict[str, Any] = {"logloss": outcome, "calibration": calibration,
                           "logloss_difference": d["value"], "logloss_half_width": half}
    if promotion is not None:
        promote = bool(promotion.get("promote"))
        text += f" Promote: {'yes' if promote else 'no'} because {promotion.get('reason', '')}."
        text += f" {champion_sentence(promotion)}"
        out["promote"] = promote
        out["champion_model"] = _champion_model(promotion)
    out["text"] = text
    return out


def _champion_model(promotion: dict[str, Any]) -> str | None:
    """"weighted" or "unweighted" when today's challenger became champion, else None."""
    challenger = promotion.get("challenger") or {}
    return challenger.get("model") if promotion.get("promote") else None


def champion_sentence(promotion: dict[str, Any]) -> str:
    """Which model serves after this run, and why, in one sentence."""
    challenger = promotion.get("challenger") or {}
    champion = promotion.get("champion")
    if promotion.get("promote"):
        detail = (promotion.get("weighting") or {}).get("detail", "")
        kind = {"weighted": "the importance-weighted booster",
                "recalibrated": "the unweighted booster recalibrated with the importance "
                f"weights ({detail})"}.get(
            challenger.get("model", ""),
            f"today's unweighted baseline (weighting not applied: {detail or 'it did not pay'})")
        return f"Champion now: v{challenger.get('version')}, {kind}."
    if champion:
        return f"Champion unchanged: v{champion['version']} (run date {champion['run_date']})."
    return "No champion: nothing passed the gate."


def sampling_lines(report: dict[str, Any]) -> list[str]:
    """The report's sentences on the importance subsample of the training rows (none without
    ``train.sampling``): strategy, rows kept, rate, ESS of the combined weights, calibration."""
    s = report.get("sampling")
    if not s:
        return []
    rate = {"r": "non-click keep rate r", "c": "loss scale c"}.get(s["rate_name"], "rate")
    lines = [
        f"Strategy `{s['applied']}`" + (f" (configured `{s['strategy']}`: {s['fallback']})"
                                        if s.get("fallback") else "")
        + f": kept {s['kept_rows']:,} of {s['n_rows']:,} training rows "
        f"({100 * s['kept_rows'] / max(s['n_rows'], 1):.2f} %, {s['target_rows']:,.0f} asked), "
        f"{rate} = {s['rate']:.4g}, largest sampling weight {s['max_sampling_weight']:.4g}.",
        f"Kish ESS of the combined weights (importance × sampling, the weighted booster's): "
        f"{s['ess']:,.0f} (ESS/n = {s['ess_fraction']:.3f}); of the sampling weights alone "
        f"(the baseline's): ESS/n = {s['sampling_ess_fraction']:.3f}; min_child_weight "
        + ", ".join(f"{n} {v:.3g}" for n, v in sorted(s["min_child_weight"].items())) + ".",
        _held_out_calibration(s) + f" Correction: {s['recalibration']}.",
    ]
    return lines


def _held_out_calibration(s: dict[str, Any]) -> str:
    """The sampled boosters' calibration ratios on the slice held out of the sample (before the
    correction)."""
    ratios = [f"{label} {s[key]:.3f}" for key, label in
              (("calibration_ratio", "baseline"),
               ("weighted_calibration_ratio", "weighted booster (importance-weighted)"))
              if s.get(key) is not None]
    if not ratios:
        if not s.get("correction_rows"):
            return ("Calibration ratio: n/a (train.sampling_correction: none holds no rows out "
                    "of the sample to measure it on).")
        return "Calibration ratio on the held-out rows: n/a (no clicks there)."
    return (f"Calibration ratio (mean prediction / click rate) before the correction, on the "
            f"{s['correction_rows']:,} training rows held out of the sample: "
            + ", ".join(ratios) + ".")


def candidates_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per candidate model: metric, interval, difference to the unweighted baseline."""
    rows = []
    candidates = report.get("candidates", {})
    order = ("unweighted", "weighted", "recalibrated")  # report.json's keys are sorted
    for name in sorted(candidates, key=lambda n: (order.index(n) if n in order else 3, n)):
        c = candidates[name]
        diff_ci = c.get("logloss_diff_ci")
        rows.append({
            "candidate": name + (" (selected)" if name == report.get("selected") else ""),
            "logloss": round(c["logloss"], 6),
            "logloss_95ci": f"[{c['logloss_ci'][0]:.5f}, {c['logloss_ci'][1]:.5f}]",
            "logloss_diff_vs_unweighted": (
                "—" if diff_ci is None else
                f"{c['logloss_diff']:+.5f} [{diff_ci[0]:+.5f}, {diff_ci[1]:+.5f}]"),
            "auc": round(c["auc"], 4),
            "calibration_ratio": (f"{c['calibration_ratio']:.3f} "
                                  f"[{c['calibration_ratio_ci'][0]:.3f}, "
                                  f"{c['calibration_ratio_ci'][1]:.3f}]"),
            "ece": round(c["ece"], 5)})
    return rows


def metrics_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (one per model) for the Prefect table artifact and the Markdown report."""
    rows = []
    for name in ("weighted", "unweighted"):
        m = report["metrics"][name]
        ci = report["metrics"].get("intervals", {}).get(name, {}).get("logloss")
        rows.append({"model": name, "auc": round(m["auc"], 5), "logloss": round(m["logloss"], 6),
                     "logloss_95ci": (f"[{ci['ci_low']:.5f}, {ci['ci_high']:.5f}]" if ci
                                      else "n/a"),
                     "ne": round(m["ne"], 5) if "ne" in m else None,
                     "ece": round(m["ece"], 6) if "ece" in m else None,
                     "calibration_ratio": round(m["calibration_ratio"], 4),
                     "mean_prediction": round(m["mean_prediction"], 6),
                     "observed_ctr": round(m["observed_ctr"], 6), "n": m["n"]})
    return rows


# ---------------------------------------------------------------------------- weights
CLIP_SWEEP_QUANTILES = (1.0, 0.999, 0.995, 0.99, 0.98, 0.95, 0.9, 0.8)


def weight_profile(raw_weight: np.ndarray, final_weight: np.ndarray, n_bins: int = 40,
                   clip_quantiles: tuple[float, ...] = CLIP_SWEEP_QUANTILES) -> dict[str, Any]:
    """Small summaries of the weights for the report's plots.

    * ``histogram``: counts of the raw and the final weights over ``n_bins`` equal-width bins of
      :math:`\\log_{10} w` (zero weights are counted separately in ``zeros``);
    * ``clip_sweep``: for each quantile cap :math:`c` (1.0 = no clipping) the Kish ESS/n, the
      largest weight's share and the Pareto k̂ of the weights capped at their ``c`` quantile,
      so the report shows what harder clipping would buy.
    """
    raw = np.asarray(raw_weight, dtype=float)
    final = np.asarray(final_weight, dtype=float)
    logs = {name: np.log10(w[w > 0]) for name, w in (("raw", raw), ("final", final))}
    both = np.concatenate(list(logs.values()))
    lo, hi = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_bins + 1)
    sweep = []
    for q in clip_quantiles:
        capped = np.minimum(raw, np.quantile(raw, q)) if q < 1 else raw
        sweep.append({"quantile": q, "ess_fraction": effective_sample_size(capped) / raw.size,
                      "max_weight_share": float(capped.max() / capped.sum()),
                      "khat": _finite_or_none(pareto_khat(np.log(capped[capped > 0])))})
    return {
        "histogram": {"log10_edges": edges.tolist(),
                      **{n: np.histogram(v, edges)[0].tolist() for n, v in logs.items()}},
        "zeros": {"raw": int((raw == 0).sum()), "final": int((final == 0).sum())},
        "clip_sweep": sweep,
    }


def _finite_or_none(value: float) -> float | None:
    """JSON has no infinities: a bounded tail (k̂ = -inf after a hard cap) is stored as None."""
    return float(value) if np.isfinite(value) else None


def weight_profile_from_file(path: str | Path) -> dict[str, Any]:
    """:func:`weight_profile` of a run's ``weights.parquet``."""
    frame = pd.read_parquet(path, columns=["raw_weight", "final_weight"])
    return weight_profile(frame["raw_weight"].to_numpy(), frame["final_weight"].to_numpy())


# ---------------------------------------------------------------------------- validation
VALIDATION_KEYS = ("rows", "evaluated", "failed", "success", "reference_day", "quarantine",
                   "data_docs", "results")


def validation_section(validation: dict[str, Any]) -> dict[str, Any]:
    """Per role: counts, reference day, quarantine, Data Docs and every check (observed vs
    expected; the fix only where a check failed)."""
    out = {}
    for role, v in validation.items():
        section = {k: v[k] for k in VALIDATION_KEYS if k in v and k != "results"}
        section["results"] = [
            {k: r[k] for k in ("rule", "column", "observed", "expected", "success", "engine")
             if k in r} | ({} if r.get("success") else {"fix": r.get("fix")})
            for r in v.get("results", [])]
        out[role] = section
    return out
