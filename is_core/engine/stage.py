"""The stages of the Dask engine: each takes the local stage's arguments plus ``cluster`` (the
scheduler's address) and returns the local stage's typed summary.

The doubly robust estimate is the local engine's (:mod:`is_core.engine.outcome`), and so is
the proposal-aware SNIS interval ``snis`` carries, with the same conditions, bias guard and
``snis_interval`` note (:mod:`is_core.engine.intervals`).

Outputs that are one file per run in the local engine and one row per input row
(``log_ratio.parquet``, ``weights.parquet``) are folders of one file per source partition here,
read whole by ``pandas.read_parquet``; the models are the same UBJSON files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from is_core._validation import config_keys
from is_core.config import ColumnsConfig, WeightsConfig
from is_core.data.stage import Inputs
from is_core.engine import weights as w
from is_core.engine.cluster import client_for
from is_core.engine.evaluation import evaluate_models
from is_core.engine.intervals import proposal_aware_estimate
from is_core.engine.partitions import role_partitions, safe_map
from is_core.engine.promotion import evaluate_promotion
from is_core.engine.proposal import fit_proposal
from is_core.engine.selection import linear_quantiles, sorted_pieces
from is_core.engine.training import train_models
from is_core.errors import ConfigError
from is_core.weights.diagnostics import (
    QUANTILES,
    WeightDiagnostics,
    WeightGates,
    evaluate_gates,
)
from is_core.weights.partitioned import bootstrap_from_sums, mean_from_sums, snis_from_sums
from is_core.weights.psis import khat_threshold
from is_core.weights.stage import (
    CLIP_KEYS,
    WEIGHTS_FILE,
    ProposalResult,
    WeightsResult,
    gated_result,
    proposal_aware_state,
)

__all__ = ["compute_weights", "evaluate_models", "evaluate_promotion", "fit_proposal",
           "train_models"]


def compute_weights(weights: WeightsConfig, columns: ColumnsConfig, inputs: Inputs,
                    proposal: ProposalResult, out_dir: Path, *, random_state: int,
                    n_jobs: int | None = None, cluster: str) -> WeightsResult:
    """:func:`is_core.weights.stage.compute_weights` on the cluster (:mod:`.weights`):
    ``weights.parquet`` is a folder of one file per source partition."""
    client = client_for(cluster)
    source = role_partitions(client, inputs, "source")
    index = list(range(len(source)))
    pieces = safe_map(client, w.load_piece, list(source.files), index, list(source.offsets[:-1]),
                        [source.offsets[i + 1] - source.offsets[i] for i in index],
                        log_ratio=proposal["path"], label=columns.label,
                        impression_id=columns.impression_id)
    stats = w.check_log_weights(client.gather(safe_map(client, w.summary, pieces)))
    per_day = weights.normalize_per == "day"
    if per_day and source.files[0].day is None:
        raise ConfigError("weights.normalize_per='day' needs day partitions "
                          "(<data.partition_key>=YYYY-MM-DD folders, dt=YYYY-MM-DD by default)",
                          fix="use hive-partitioned inputs or normalize_per='window'")
    with config_keys(CLIP_KEYS):
        clip, tail = w.decide_clip(client, pieces, weights.clip, weights.clip_quantile,
                                   weights.clip_max_weight, stats)
    pieces = safe_map(client, w.with_clip, pieces, log_cap=np.inf if tail else clip.log_cap,
                        tail_rows=tail[0] if tail else None,
                        tail_values=tail[1] if tail else None)
    maxima = _merge_groups(client.gather(safe_map(client, w.group_max, pieces, per_day=per_day)))
    sums = _merge_groups(client.gather(safe_map(client, w.group_sums, pieces, per_day=per_day,
                                                  maxima=maxima)))
    pieces = safe_map(client, w.with_final, pieces, per_day=per_day, maxima=maxima, sums=sums)
    parts = client.gather(safe_map(client, w.final_stats, pieces, index, shift=stats["max"],
                                     n_boot=200, random_state=random_state))
    diagnostics = _diagnostics(client, pieces, weights, proposal, clip, stats, parts)
    gates = evaluate_gates(diagnostics, WeightGates(min_ess_fraction_fail=weights.min_ess_fraction,
                                                    **weights.gates.model_dump()))
    folder = out_dir / WEIGHTS_FILE
    client.gather(safe_map(client, w.write_weights, pieces, index, out_dir=str(folder)))
    estimates = _estimates(weights, stats, parts)
    state, note = proposal_aware_state(weights, proposal)
    target = (role_partitions(client, inputs, "target")
              if state is not None or weights.doubly_robust else None)
    if state is not None and target is not None:
        aware = proposal_aware_estimate(client, pieces, source, target, state, parts,
                                        weights.clip != "none")
        estimates["snis"], estimates["snis_known_weights"] = aware.to_dict(), estimates["snis"]
    if weights.doubly_robust and target is not None:
        from is_core.engine.outcome import dr_estimate, fitted_outcome

        m_source, m_target = fitted_outcome(client, source, target, columns, random_state,
                                            n_jobs)
        estimates["dr"] = dr_estimate(client, pieces, m_source, m_target,
                                      weights.clip != "none").to_dict()
    return gated_result(diagnostics, clip.summary(), gates, note, folder, estimates)


def _merge_groups(parts: list[dict[Any, tuple[Any, ...]]]) -> dict[Any, tuple[Any, ...]]:
    """Per normalization group: rows and sums added, maxima of the partitions' maxima."""
    out: dict[Any, tuple[Any, ...]] = {}
    for part in parts:
        for key, value in part.items():
            if key not in out:
                out[key] = value
            elif len(value) == 3:  # (rows, raw max, clipped max)
                n, a, b = out[key]
                out[key] = (n + value[0], max(a, value[1]), max(b, value[2]))
            else:  # (raw sum, clipped sum)
                out[key] = (out[key][0] + value[0], out[key][1] + value[1])
    return out


def _diagnostics(client: Any, pieces: list[Any], weights: WeightsConfig,
                 proposal: ProposalResult, clip: Any, stats: dict[str, Any],
                 parts: list[dict[str, Any]]) -> WeightDiagnostics:
    """:func:`is_core.weights.diagnostics.diagnose_weights` from the partitions' sums."""
    from is_core.weights.clipping import _shift_share

    n = stats["n"]
    final = np.sum([p["final"] for p in parts], axis=0)
    final_max = max(p["final_max"] for p in parts)
    total, squares = final[1], final[3]
    ess = 0.0 if not total > 0 else float(min((total / final_max) ** 2
                                              / (squares / final_max**2), n))
    raw_sum, raw_squares = np.sum([p["raw"] for p in parts], axis=0)
    _, _, khat = w.psis_tail(client, pieces, n, stats["max"])
    raw_q = linear_quantiles(client, sorted_pieces(client, safe_map(client, w.vector, pieces,
                                                                      field="lw", exp=True)),
                             QUANTILES, n)
    final_q = linear_quantiles(client, sorted_pieces(client, safe_map(client, w.vector, pieces,
                                                                        field="final")),
                               QUANTILES, n)
    wc_sum, wc_y, w0_y = np.sum([p["shift"] for p in parts], axis=0)
    se0 = w.unclipped_jackknife_se(client, pieces, stats)
    shift_kept = _shift_share(float(wc_y / wc_sum), float(w0_y / raw_sum), stats["y"] / n, se0)
    return WeightDiagnostics(
        n=int(n), ess=ess, ess_fraction=ess / n,
        raw_ess_fraction=float(min(raw_sum**2 / raw_squares, n)) / n,
        khat=khat, khat_threshold=khat_threshold(n),
        max_weight_share=float(final_max / total),
        raw_quantiles={f"q{q:g}": float(v) for q, v in zip(QUANTILES, raw_q, strict=True)},
        final_quantiles={f"q{q:g}": float(v) for q, v in zip(QUANTILES, final_q, strict=True)},
        clip_method=weights.clip, clip_log_cap=float(clip.log_cap),
        clipped_fraction=float(sum(p["clipped"] for p in parts) / n),
        domain_auc=proposal.get("domain_auc"),
        logged_comparison=proposal.get("logged_comparison"), shift_kept=shift_kept)


def _estimates(weights: WeightsConfig, stats: dict[str, Any], parts: list[dict[str, Any]]
               ) -> dict[str, dict[str, Any]]:
    """The naive, IS, SNIS (bias-guarded) and Poisson-bootstrap estimates from the sums."""
    n = stats["n"]
    clipped = weights.clip != "none"
    final = np.sum([p["final"] for p in parts], axis=0)
    unclipped = np.sum([p["unclipped"] for p in parts], axis=0)
    is_sum, is_squares = np.sum([p["is"] for p in parts], axis=0)
    snis = snis_from_sums(final, unclipped=unclipped if clipped else None)
    boot = np.sum([p["boot"] for p in parts], axis=0)
    point = snis_from_sums(final).value
    return {
        "naive": mean_from_sums("naive", stats["y"], stats["y2"], n).to_dict(),
        "is_raw": mean_from_sums("is", is_sum, is_squares, n).to_dict(),
        "snis": snis.to_dict(),
        "snis_bootstrap": bootstrap_from_sums("snis", point,
                                              boot if clipped else boot[:1]).to_dict(),
    }
