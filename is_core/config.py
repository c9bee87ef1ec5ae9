"""The one configuration model: file, flow parameters, CLI options and deployment parameters.

``IsbenchConfig`` is a pydantic model, so Prefect renders it as a form in the UI, and it loads from
YAML or TOML with :meth:`IsbenchConfig.from_file`. Unknown keys are rejected everywhere (a typo in
a config file must not be silently ignored). Defaults run as they are on the demo dataset that
``isbench demo`` generates.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from is_core._validation import (
    Calibration,
    ClipMethod,
    FileFormat,
    NormalizePer,
    NumericBasis,
    ProposalLearner,
    SamplingStrategy,
)
from is_core.errors import ConfigError, IsbenchError

DEFAULT_NUMERIC = [
    "user_f0", "user_f1", "user_f2", "user_f3", "position", "item_price", "item_popularity",
]
DEFAULT_CATEGORICAL = ["user_segment", "device", "item_id", "item_category"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnsConfig(_Strict):
    """Which columns of the impression logs mean what."""

    label: str = Field("clicked", description="Click label, 0 or 1 (source and holdout).")
    numeric: list[str] = Field(default_factory=lambda: list(DEFAULT_NUMERIC))
    categorical: list[str] = Field(default_factory=lambda: list(DEFAULT_CATEGORICAL))
    impression_id: str | None = Field("impression_id", description="Unique id of an impression.")
    timestamp: str | None = Field("ts", description="Event time (optional).")
    logging_propensity: str | None = Field(
        "logging_propensity", description="Logging policy's propensity on source rows (optional)."
    )
    exposure: list[str] = Field(
        default_factory=list, description="Exposure features: columns of columns.numeric or "
        "columns.categorical that describe how an impression was shown (position, slot, page) "
        "and are unknown when the served model scores a request. The proposal model and the "
        "validation use them; the CTR models never see them (the weights carry their shift).")

    @property
    def features(self) -> list[str]:
        """Every feature column: what the proposal model and the validation see."""
        return [*self.numeric, *self.categorical]

    @property
    def ctr_numeric(self) -> list[str]:
        """The numeric features of the CTR models (no exposure feature)."""
        return [c for c in self.numeric if c not in self.exposure]

    @property
    def ctr_categorical(self) -> list[str]:
        """The categorical features of the CTR models (no exposure feature)."""
        return [c for c in self.categorical if c not in self.exposure]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.features:
            raise ConfigError("columns.numeric and columns.categorical are both empty",
                              fix="name at least one feature column")
        dupes = sorted({c for c in self.features if self.features.count(c) > 1})
        if dupes:
            raise ConfigError(
                f"feature column(s) {dupes} listed twice in columns.numeric/categorical",
                fix="list each feature once, in columns.numeric or columns.categorical")
        if self.label in self.features:
            raise ConfigError(f"label column {self.label!r} is also listed as a feature",
                              fix="remove it from columns.numeric/categorical")
        unknown = [c for c in self.exposure if c not in self.features]
        if unknown:
            raise ConfigError(
                f"columns.exposure names {unknown}, which are not in columns.numeric or "
                "columns.categorical", fix="list each exposure feature under columns.numeric or "
                "columns.categorical too (that gives its type); exposure only keeps it away "
                "from the CTR models")
        if self.exposure and not (self.ctr_numeric or self.ctr_categorical):
            raise ConfigError("every feature is listed in columns.exposure: the CTR models "
                              "would have no feature", fix="keep at least one feature that "
                              "is known at request time out of columns.exposure")
        return self


class DataConfig(_Strict):
    """Where the source, target and holdout data live, relative to ``data_root``."""

    root: str = Field("data", description="Data root; every path below must stay inside it.")
    source: str = Field("source", description="Training logs (biased by the logging ranker).")
    target: str = Field("target", description="Sample of the traffic to serve; labels optional.")
    holdout: str | None = Field("holdout", description="Labeled target rows for evaluation only.")
    format: FileFormat = "parquet"
    window_days: int = Field(7, ge=1, le=366, description="Days read, ending at the run date.")
    partition_key: str = Field(
        "dt", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the day partition folders, <partition_key>=YYYY-MM-DD (Hive "
        "style): 'dt' for dt=2026-11-28/, 'date' for date=2026-11-28/. The rows read get the "
        "day as a column named 'dt' whatever the folders are called.")

    def path_of(self, role: str) -> Path:
        """Absolute path of ``role`` (source, target or holdout), confined to ``root``."""
        rel = getattr(self, role)
        if rel is None:
            raise ConfigError(f"data.{role} is not configured", fix=f"set data.{role}")
        root = Path(self.root).resolve()
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise ConfigError(
                f"data.{role} = {rel!r} points outside the data root {root}",
                fix="use a path inside data.root (no '..' or absolute paths elsewhere)",
            )
        return path


class ProposalConfig(_Strict):
    """The proposal model: a probabilistic domain classifier, target vs source, or the logged
    propensities (see :mod:`is_core.weights.domain` and :mod:`is_core.weights.normalize`)."""

    learner: ProposalLearner = Field(
        "auto", description="Domain classifier ('auto': logistic with C tuned, logistic with "
        "categorical crosses, or calibrated XGBoost, picked by out-of-fold log-loss with the "
        "one-standard-error rule; but the exact policy weights whenever the source carries "
        "columns.logging_propensity and target_propensity is set), or 'logged_propensity': "
        "always the exact policy weights pi_1/pi_0.")
    n_folds: int = Field(5, ge=2, le=20, description="Cross-fitting folds.")
    numeric_basis: NumericBasis = Field(
        "auto", description="How numerics enter the logistic learner; 'auto' picks linear or "
        "quadratic by out-of-fold log-loss.")
    calibration: Calibration | None = Field(
        None, description="Cross-fitted probability calibration of the domain classifier.")
    C: float = Field(1.0, gt=0, description="Inverse L2 strength of the logistic regression.")
    max_categories: int = Field(
        200, ge=2, description="One-hot levels kept per categorical column; the rest are pooled."
    )
    n_estimators: int = Field(200, ge=1, description="XGBoost learner: trees.")
    max_depth: int = Field(4, ge=1, le=16, description="XGBoost learner: depth.")
    max_fit_rows: int | None = Field(
        100_000, ge=100, description="Fit the domain classifier on at most this many rows "
        "(half per domain, a seeded sample); every row is still weighted out of fold. None: all "
        "rows. At 1M + 1M click-log rows, 100,000 gives weight NMSE 0.603 against 0.600 at "
        "200,000 and 0.598 at 400,000, in 5 s instead of 9 s and 16 s "
        "(benchmarks/proposal_sample.py).")
    target_propensity: float | None = Field(
        None, gt=0, le=1, description="Target policy's propensity of every (item, position), "
        "e.g. 1/(items x positions) for uniform exploration. With logged propensities on the "
        "source it gives exact policy weights, compared with the estimated ones in the "
        "diagnostics (or used as the weights with learner='logged_propensity').")
    context_features: list[str] | None = Field(
        None, description="With logged policy weights: context (user) columns whose "
        "source/target shift is estimated by the domain classifier and multiplied into the "
        "logged policy weights, w = p(u)/q(u) * pi_1/pi_0. None: the context is assumed "
        "unshifted.")


class WeightGatesConfig(_Strict):
    """Warn/fail thresholds of the weight diagnostics (None disables a level).

    The ESS fail threshold is ``weights.min_ess_fraction``.
    """

    min_ess_fraction_warn: float | None = Field(0.10, ge=0, le=1)
    max_khat_warn: float | None = Field(0.5, description="Raw-weight Pareto k-hat above which "
                                        "the weights have infinite variance.")
    max_khat_fail: float | Literal["auto"] | None = Field(
        "auto", description="'auto' = min(1 - 1/log10 n, 0.7) (Vehtari et al. 2024).")
    max_domain_auc_warn: float | None = Field(0.85, ge=0.5, le=1)
    max_domain_auc_fail: float | None = Field(0.99, ge=0.5, le=1)
    max_weight_share_warn: float | None = Field(0.05, gt=0, le=1)
    max_weight_share_fail: float | None = Field(None, gt=0, le=1)
    min_logged_spearman_warn: float | None = Field(0.5, ge=-1, le=1)
    max_clipped_fraction_warn: float | None = Field(
        0.10, ge=0, le=1, description="Share of rows whose weight the clip capped; the warning "
        "names the share of the shift the clip kept.")
    max_clipped_fraction_fail: float | None = Field(None, ge=0, le=1)


class WeightsConfig(_Strict):
    """Clipping, normalization and gates of the importance weights."""

    clip: ClipMethod = Field(
        "auto", description="'auto' picks the strongest cap (clipping at most 10 % of rows) "
        "whose SNIS target-CTR estimate agrees with every weaker cap's, a Lepski-type rule "
        "(is_core.weights.clipping.auto_clip).")
    clip_quantile: float = Field(0.99, gt=0.5, le=1.0, description="For clip='quantile'.")
    clip_max_weight: float | None = Field(None, gt=0, description="For clip='hard'.")
    normalize_per: NormalizePer = Field(
        "window", description="Normalize the final weights to mean 1 over the whole window or "
        "within each day.")
    min_ess_fraction: float = Field(
        0.01, ge=0, le=1, description="Fail the run when Kish ESS/n of the final weights is lower."
    )
    doubly_robust: bool = Field(
        True, description="Also estimate the target CTR doubly robustly (a cross-fitted XGBoost "
        "click model plus the weighted residuals, bounded to [0, 1]).")
    gates: WeightGatesConfig = Field(default_factory=WeightGatesConfig)

    @model_validator(mode="after")
    def _check_clip(self) -> Self:
        if self.clip == "hard" and self.clip_max_weight is None:
            raise ConfigError("weights.clip='hard' needs weights.clip_max_weight",
                              fix="set weights.clip_max_weight, the cap on the raw weight "
                              "such as 20, or choose another weights.clip")
        return self


class TrainConfig(_Strict):
    """The weighted XGBoost CTR model."""

    n_estimators: int = Field(400, ge=1)
    learning_rate: float = Field(0.1, gt=0, le=1)
    max_depth: int = Field(6, ge=1, le=16)
    min_child_weight: float = Field(1.0, ge=0)
    early_stopping_rounds: int = Field(30, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    max_cat_to_onehot: int = Field(8, ge=1)
    n_jobs: int | None = Field(None, description="Threads for XGBoost; None uses every core.")
    recalibrate: bool = Field(
        True, description="Also build the 'recalibrated' candidate: the unweighted booster with "
        "a calibrator fitted on its out-of-fold source scores with the importance weights "
        "(is_core.ctr.recalibration).")
    recalibration: Literal["auto", "platt", "isotonic"] = Field(
        "auto", description="The calibrator: Platt on the logit, isotonic (only with a large "
        "weighted ESS), or 'auto', the one with the lower cross-fitted weighted logloss.")
    recalibration_folds: int = Field(2, ge=2, le=10, description="Folds of the out-of-fold "
                                     "scores the calibrator is fitted on.")
    weighted_min_child_weight: Literal["ess", "same"] = Field(
        "ess", description="The weighted booster's min_child_weight: 'ess' divides it by the "
        "weights' Kish ESS/n, so that a leaf needs as many effective rows as in the unweighted "
        "booster (with train.sampling: each booster's ESS/n of the weights it is fitted with, "
        "the baseline's sampling weights too); 'same' keeps train.min_child_weight.")
    sampling: SamplingStrategy = Field(
        "none", description="Importance subsampling of the training rows (is_core.ctr.sampling): "
        "'negative' keeps every click and non-clicks with probability r, weight 1/r; 'loss' "
        "keeps each row with probability min(1, c |y - p|) under the champion's p (mixed with "
        "a uniform share), weight 1/pi, and falls back to 'negative' without a champion. The "
        "sampling weights multiply the importance weights, so the weighted logloss stays "
        "unbiased.")
    keep_fraction: float | None = Field(
        None, gt=0, le=1, description="With train.sampling: the expected share of the training "
        "rows kept (r or c is solved from it).")
    max_rows: int | None = Field(
        None, ge=1, description="With train.sampling: the expected number of training rows "
        "kept (all rows when there are fewer).")
    sampling_correction: Literal["intercept", "platt", "none"] = Field(
        "intercept", description="With train.sampling: how the sampled boosters' calibration is "
        "corrected on a uniform slice of the training rows held out of the sample (10 %, at "
        "most 500,000 rows): 'intercept' shifts the logit so the mean prediction matches the "
        "click rate there (importance-weighted for the weighted booster), 'platt' fits the "
        "slope too, 'none' holds no rows out and corrects nothing (is_core.ctr.sampling).")

    @model_validator(mode="after")
    def _check_sampling(self) -> Self:
        sizes = [k for k in ("keep_fraction", "max_rows") if getattr(self, k) is not None]
        if len(sizes) == 2:
            raise ConfigError("train.keep_fraction and train.max_rows are both set",
                              fix="give the sample's size one way: remove one of them")
        if self.sampling != "none" and not sizes:
            raise ConfigError(f"train.sampling={self.sampling!r} needs a target size",
                              fix="set train.keep_fraction (e.g. 0.1) or train.max_rows")
        if self.sampling == "none" and sizes:
            raise ConfigError(f"train.{sizes[0]} is set but train.sampling is 'none'",
                              fix=f"set train.sampling to 'negative' or 'loss', or remove "
                              f"train.{sizes[0]}")
        return self


class EvaluationConfig(_Strict):
    """How models are scored on the evaluation rows (target holdout or weighted source split)."""

    n_boot: int = Field(200, ge=20, le=5000,
                        description="Bootstrap replicates behind every metric's interval.")
    ci_level: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of the intervals.")
    calibration_bins: int = Field(10, ge=2, le=50,
                                  description="Equal-weight prediction bins of ECE and the "
                                  "reliability curves.")


class PromotionConfig(_Strict):
    """Champion/challenger: when today's model (the challenger) replaces the champion.

    The challenger is promoted only when validation passed, the weight diagnostics are inside
    their gates, its run date is not older than the champion's, its ``metric`` on today's
    evaluation rows is not worse than the champion's on the same rows by more than
    ``tolerance`` (the champion is re-scored on today's holdout, never compared with an old
    number), and (``require_weighting_not_worse``) not worse than today's unweighted baseline
    by more than ``tolerance`` either.
    """

    enabled: bool = Field(True, description="Register today's model and run the promotion gate.")
    registry: str | None = Field(
        None, description="Model registry folder; default <output_root>/registry."
    )
    metric: Literal["logloss", "auc", "calibration_error"] = Field(
        "logloss", description="Target metric compared on the holdout: logloss (lower is "
        "better), auc (higher is better) or calibration_error = |calibration ratio - 1|.",
    )
    tolerance: float = Field(
        0.001, ge=0, description="How much worse than the champion (in metric units) the "
        "challenger may be and still be promoted.",
    )
    allow_weight_warnings: bool = Field(
        True, description="Promote when a weight diagnostic is in its 'warn' band (a 'fail' "
        "always blocks).",
    )
    require_weighting_not_worse: bool = Field(
        True, description="Promote the weighted challenger only when, on the same evaluation "
        "rows, it is not worse than the unweighted baseline by more than `tolerance`: the "
        "weighting must have paid (or at least not cost) on target data.",
    )

    def registry_root(self, output_root: str) -> Path:
        """The registry folder: ``registry`` if set, else ``<output_root>/registry``."""
        return Path(self.registry) if self.registry else Path(output_root) / "registry"


class ValidationConfig(_Strict):
    """The input contract beyond column names: the bounds the validation suites enforce.

    Row-level rules (nulls, label domain, finite numbers, propensity range, duplicate ids) can be
    quarantined (``mode="quarantine"``); table-level rules (schema, row counts, CTR, cardinality,
    freshness, drift against the reference day) always fail the run.
    """

    mode: Literal["fail", "quarantine"] = Field(
        "fail", description="'quarantine' drops rows that break a row-level rule and continues "
        "while their share stays under max_quarantine_share.")
    max_quarantine_share: float = Field(
        0.01, ge=0, lt=1, description="Largest share of a role's rows quarantine may drop.")
    min_rows: int = Field(1, ge=0, description="Fewest rows per role over the window.")
    max_rows: int | None = Field(None, ge=1, description="Most rows per role over the window.")
    ctr_range: tuple[float, float] = Field(
        (1e-4, 0.5), description="Plausible click rate (mean label) of source and holdout.")
    cardinality_range: tuple[int, int] = Field(
        (1, 100_000), description="Allowed distinct values of each categorical column.")
    numeric_ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="Per numeric column, [min, max] (null: unbounded); "
        "every numeric column must in any case be finite.")
    freshness_hours: float | None = Field(
        24.0, gt=0, description="The newest event time must be at most this many hours before "
        "the end of the run date (null: no freshness check).")
    min_day_row_share: float = Field(
        0.1, ge=0, le=1, description="A day of the window with fewer rows than this share of "
        "the window's median day fails, per role (and a day without rows whenever this is "
        "above 0; 0: no check).")
    late_event_hours: float | None = Field(
        6.0, ge=0, description="Each partition's events must lie within its day (in "
        "`timezone`), from this many hours before it starts (late events, written to the "
        "partition of the day they arrived) to its end (null: no check).")
    disjoint_role_ids: bool = Field(
        True, description="Holdout impression ids must not occur among the source's or the "
        "target's over the window (such a leak inflates the holdout's metrics); false for roles "
        "that number their ids separately.")
    unexpected_columns: Literal["fail", "ignore"] = Field(
        "fail", description="What a column outside the contract in an input file gets.")
    extra_columns: list[str] = Field(
        default_factory=list, description="Columns allowed in the files besides the configured "
        "ones (they are not read).")
    max_unseen_category_share: float = Field(
        0.05, ge=0, le=1, description="Largest share of target/holdout rows whose category never "
        "occurs in the source window.")
    reference_day: Literal["last_good_run", "none"] = Field(
        "last_good_run", description="Drift bounds come from the newest day of the last "
        "published run before the run date ('none': no drift check).")
    max_mean_shift_sd: float = Field(
        0.5, gt=0, description="Largest move of a numeric column's mean, in reference-day "
        "standard deviations (a standardized mean difference).")
    max_ratio_change: float = Field(
        3.0, gt=1, description="Largest factor by which the day's row count, CTR or a "
        "categorical cardinality may differ from the reference day.")
    data_docs: bool = Field(True, description="Build Great Expectations Data Docs per run.")
    allow_missing_features: bool = Field(
        True, description="A missing feature value is data: a missing categorical is its own "
        "level, a missing numeric is NaN (XGBoost takes it natively; the proposal model adds a "
        "missing indicator and imputes the mean); a jump of a feature's share of missing values "
        "against the reference day fails as drift. false: any missing feature value fails the "
        "run (or is quarantined). ±inf always fails.")
    max_abs_value: float | None = Field(
        1e12, gt=0, description="Sanity bound of every numeric feature: a finite value beyond "
        "±max_abs_value (a sentinel such as 1e200) fails the run, with or without a reference "
        "day. null: no bound.")
    magnitude_widening: float = Field(
        10.0, gt=0, description="k of a numeric feature's reference range [q01 - k s, q99 + k "
        "s], s = q99 - q01 of the reference day's values (is_core.data.contract."
        "reference_range); a sentinel such as -999999 leaves it.")
    max_magnitude_outlier_share: float = Field(
        0.001, ge=0, lt=1, description="Largest share of the run date's rows of a role whose "
        "value of a numeric feature lies outside its reference range.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        lo, hi = self.ctr_range
        if not 0 <= lo < hi <= 1:
            raise ConfigError(f"validation.ctr_range {list(self.ctr_range)} must satisfy "
                              "0 <= min < max <= 1", fix="give [min, max] click rates, e.g. "
                              "[0.0001, 0.5]")
        lo, hi = self.cardinality_range
        if not 1 <= lo <= hi:
            raise ConfigError(f"validation.cardinality_range {list(self.cardinality_range)} "
                              "must satisfy 1 <= min <= max", fix="give [min, max] distinct "
                              "values per categorical column, e.g. [1, 100000]")
        for col, (low, high) in self.numeric_ranges.items():
            if low is not None and high is not None and not low < high:
                raise ConfigError(f"validation.numeric_ranges[{col!r}] = [{low}, {high}]: min "
                                  "must be below max", fix="swap the bounds, or use null for "
                                  "an unbounded side")
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ConfigError(f"validation.max_rows {self.max_rows} is below min_rows "
                              f"{self.min_rows}", fix="raise validation.max_rows or lower "
                              "validation.min_rows")
        return self


class TrackingConfig(_Strict):
    """Where a run reports beyond its own folder: Prefect events and, optionally, MLflow.

    Neither can fail a run: an event that cannot be sent or an MLflow store that cannot be
    reached is one warning in the log and a line in the report, and the folder registry stays
    the source of truth.
    """

    events: bool = Field(
        True, description="Emit Prefect events (isbench.run.completed, isbench.gate.warned/"
        "failed, isbench.champion.promoted/kept) for automations in the Prefect UI.")
    history: bool = Field(
        True, description="Rewrite <output_root>/index.html (every run date's figures) and the "
        "isbench-history table artifact after each run.")
    mlflow_uri: str | None = Field(
        None, description="MLflow tracking URI (e.g. sqlite:///mlruns.db or a server's URL); "
        "null: no MLflow. Needs `pip install isbench[mlflow]`.")
    mlflow_experiment: str | None = Field(
        None, description="MLflow experiment; null: the pipeline's name.")
    mlflow_model_name: str | None = Field(
        None, description="Registered model in MLflow's registry; null: '<name>-ctr'.")


#: Where the stages run: ``local`` (pandas in the flow's process) or ``dask`` (partitions on a
#: Dask cluster, :mod:`is_core.engine`).
Engine = Literal["local", "dask"]


class DaskConfig(_Strict):
    """The Dask cluster of ``engine: dask``: an existing scheduler (``address``), or a
    ``distributed.LocalCluster`` that the run starts and closes."""

    address: str | None = Field(
        None, description="Scheduler address of an existing cluster (tcp://host:8786, or any "
        "Dask cluster manager's scheduler); null: start a LocalCluster for the run.")
    n_workers: int | None = Field(
        None, ge=1, description="LocalCluster worker processes; null: Dask's default.")
    threads_per_worker: int | None = Field(
        None, ge=1, description="LocalCluster threads per worker; null: Dask's default.")
    memory_limit: str | None = Field(
        None, description="LocalCluster memory limit per worker ('4GiB'; 'auto': the machine's "
        "memory shared out); null: Dask's default.")


class IsbenchConfig(_Strict):
    """Everything a ``daily_retrain`` run needs besides its run date."""

    name: str = Field(
        "isbench", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="The pipeline's name: Prefect event resources are isbench.pipeline.<name>, "
        "and the MLflow experiment and model are named after it.")
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    proposal: ProposalConfig = Field(default_factory=ProposalConfig)
    weights: WeightsConfig = Field(default_factory=WeightsConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    output_root: str = Field("runs", description="Run folders runs/<run_date>/ go here.")
    timezone: str = Field("UTC", description="Timezone in which a scheduled time becomes a date.")
    schedule_lag_days: int = Field(
        1, ge=0, le=30,
        description="A scheduled run at day D retrains for run date D - lag (the last full day).",
    )
    random_state: int = 0
    engine: Engine = Field(
        "local", description="Where the stages run: local (pandas, one process) or dask "
        "(partitions on a Dask cluster, `dask`): the same weights and estimates, the metrics "
        "from binned per-partition statistics.")
    dask: DaskConfig = Field(default_factory=DaskConfig)
    run_lock_wait_seconds: float = Field(
        0.0, ge=0, description="How long a run waits for another run of the same date to "
        "finish before failing (0: fail at once).")

    @model_validator(mode="after")
    def _validation_names_numeric_columns(self) -> Self:
        unknown = sorted(set(self.validation.numeric_ranges) - set(self.columns.numeric))
        if unknown:
            raise ConfigError(f"validation.numeric_ranges names {unknown}, which are not in "
                              f"columns.numeric {self.columns.numeric}",
                              fix="bound only columns of columns.numeric; check the spelling")
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown timezone {value!r}",
                              fix="use an IANA name such as 'Europe/Berlin' or 'UTC'") from exc
        return value

    @classmethod
    def from_file(cls, path: str | Path) -> IsbenchConfig:
        """Load a YAML (``.yaml``/``.yml``) or TOML (``.toml``) config file.

        Every mistake in the file (its syntax, an unknown key, a bad value) is one
        :class:`ConfigError` naming the file, the line (where known) and the key.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found", fix="pass an existing file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start})", fix="save it as UTF-8 YAML or TOML") from exc
        is_toml = path.suffix == ".toml"
        raw = _parse_toml(path, text) if is_toml else _parse_yaml(path, text)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"invalid config {path}: its top level is a {type(raw).__name__}, "
                              "not a mapping of keys",
                              fix="write sections of `key: value` lines, as in "
                              "configs/default.yaml")
        lines = _toml_key_lines(text) if is_toml else _yaml_key_lines(text)
        return cls.from_mapping(raw, source=str(path), lines=lines)

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], source: str = "",
                     lines: Mapping[tuple[str | int, ...], int] | None = None) -> IsbenchConfig:
        """Validate a mapping, turning pydantic's errors into one :class:`ConfigError`.

        It names each wrong key by its dotted path (``proposal.C``), with its line in ``source``
        when ``lines`` maps key paths to line numbers, and says how to fix it: for an unknown
        key the closest known key of its section, for a bad value the validator's fix.
        """
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = [_problem(cls, e, lines or {}) for e in exc.errors()]
            keys = [".".join(map(str, e["loc"])) or "<root>" for e in exc.errors()]
            raise ConfigError(
                " ".join(["invalid config", *([source] if source else [])]) + ": "
                + "; ".join(what for what, _ in problems),
                fix="; ".join(dict.fromkeys(fix for _, fix in problems)),
                details={"source": source, "keys": keys},
            ) from exc


_SYNTAX_FIX = "correct the {kind} syntax at line {line} of {path} ({hint}), then re-run"


def _parse_yaml(path: Path, text: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes a :class:`ConfigError` naming the line
    and column of PyYAML's ``problem_mark`` (and of its ``context_mark``, where it opened)."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable YAML"
        context = exc.context if exc.problem and exc.context else None
        if context and exc.context_mark and exc.context_mark is not mark:
            context += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"invalid YAML in {path}{where}: {problem}" + (f" ({context})" if context else ""),
            fix=_SYNTAX_FIX.format(kind="YAML", line=mark.line + 1 if mark else "?", path=path,
                                   hint="brackets and quotes closed, consistent indentation"),
        ) from exc
    except yaml.YAMLError as exc:  # a reader error: a character YAML does not allow
        raise ConfigError(f"invalid YAML in {path}: {' '.join(str(exc).split())}",
                          fix="remove the control character or save the file as UTF-8") from exc


_TOML_AT = re.compile(r"^(?P<problem>.*?) \(at (?:line (?P<line>\d+), column (?P<column>\d+)"
                      r"|end of document)\)$", re.DOTALL)


def _parse_toml(path: Path, text: str) -> Any:
    """``tomllib.loads(text)``; a syntax error becomes a :class:`ConfigError` naming the line and
    column (Python 3.11's ``TOMLDecodeError`` has them only in its message: "... (at line L,
    column C)")."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_AT.match(str(exc))
        problem = found["problem"] if found else str(exc)
        line = found["line"] if found and found["line"] else None
        where = (f", line {line}, column {found['column']}" if found and line
                 else ", at the end of the file" if found else "")
        raise ConfigError(
            f"invalid TOML in {path}{where}: {problem}",
            fix=_SYNTAX_FIX.format(kind="TOML", line=line or len(text.splitlines()), path=path,
                                   hint="brackets and quotes closed, one `key = value` a line"),
        ) from exc


def _yaml_key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Line (1-based) of every key path in a YAML document that parsed (a compose pass)."""
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                lines.setdefault(here, key.start_mark.line + 1)
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*path, i), item.start_mark.line + 1)
                walk(item, (*path, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


_TOML_TABLE = re.compile(r"^\[\[?\s*(?P<name>[^\]]+?)\s*\]\]?")
_TOML_KEY = re.compile(r"^(?P<name>[A-Za-z0-9_.\-\"' ]+?)\s*=")


def _toml_key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Line (1-based) of every ``[table]`` header and ``key = value`` line of a TOML document
    (a line scan: TOML parsers keep no positions)."""
    def dotted(name: str) -> tuple[str, ...]:
        return tuple(part.strip().strip("\"'") for part in name.split("."))

    lines: dict[tuple[str | int, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _TOML_TABLE.match(line.strip()):
            table = dotted(header["name"])
            lines.setdefault(table, number)
        elif key := _TOML_KEY.match(line.strip()):
            lines.setdefault((*table, *dotted(key["name"])), number)
    return lines


def _line_of(lines: Mapping[tuple[str | int, ...], int], loc: tuple[str | int, ...]
             ) -> int | None:
    """The line of ``loc``, or of its nearest enclosing key, in the config file."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _section(model: type[BaseModel], loc: tuple[str | int, ...]) -> tuple[type[BaseModel], int]:
    """The deepest config section on the key path ``loc``, and how many parts of ``loc`` name
    it (the part after them is a key of that section)."""
    depth = 0
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model, depth = annotation, depth + 1
    return model, depth


def _problem(model: type[BaseModel], error: Any, lines: Mapping[tuple[str | int, ...], int]
             ) -> tuple[str, str]:
    """One pydantic error as (what, fix): the dotted key and its line; for an unknown key the
    closest known key of its section; a :class:`ConfigError` raised by a validator as its what
    and fix (without pydantic's "Value error, " prefix); any other error as pydantic words it,
    with the value given and, in the fix, what the key means."""
    loc = tuple(error["loc"])
    key = ".".join(map(str, loc)) or "<root>"
    line = _line_of(lines, loc)
    at = f"{key} (line {line}): " if line else f"{key}: " if loc else ""
    section, depth = _section(model, loc)
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), list(section.model_fields), n=1)
        if close:
            known = ".".join([*map(str, loc[:-1]), close[0]])
            return f"{at}unknown key (did you mean {known}?)", f"rename {key} to {known}"
        return f"{at}unknown key", f"remove {key} (configs/default.yaml lists every key)"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, IsbenchError):
        return f"{at}{cause.what}", cause.fix or f"correct {key}"
    given = repr(error.get("input"))
    given = given if len(given) <= 60 else given[:57] + "..."
    # the fix names the key itself, not a list index or a union member pydantic appends to loc
    field = section.model_fields.get(str(loc[depth])) if depth < len(loc) else None
    gist = (field.description or "").rstrip(".") if field else ""
    meaning = f" ({gist})" if gist and len(gist) <= 90 else ""  # a long one buries the fix
    return (f"{at}{error['msg']} (got {given})",
            f"give {'.'.join(map(str, loc[:depth + 1]))}{meaning} a valid value; "
            "configs/default.yaml lists every key with its default")
