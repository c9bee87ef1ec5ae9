"""The ``isbench`` command line: demo, generate, run, backfill, report, registry, serve."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# MLflow's client (tracking.mlflow_uri) sends usage telemetry unless this is "true"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The ephemeral API server migrates a new SQLite database on its first start, which on a 2-core
# machine takes longer than Prefect's default 20 s: a first `make demo` on a fresh machine
# failed with "Timed out while attempting to connect to ephemeral Prefect API server".
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from is_core.config import IsbenchConfig  # noqa: E402
from is_core.errors import IsbenchError  # noqa: E402
from is_core.release.runs import check_run_date  # noqa: E402

DEMO_RUN_DATE = dt.date(2026, 11, 28)


def _config(path: str | None) -> IsbenchConfig:
    return IsbenchConfig.from_file(path) if path else IsbenchConfig()


def cmd_generate(args: argparse.Namespace) -> int:
    from is_core.simulate.clicklog import ClickScenario, write_scenario

    scenario = ClickScenario(seed=args.seed, target=args.target)
    files = write_scenario(
        args.out, scenario, end_date=check_run_date(args.end_date), n_days=args.days,
        rows_per_day={"source": args.source_rows, "target": args.target_rows,
                      "holdout": args.holdout_rows},
        file_format=args.format,
    )
    truth = json.loads(files.truth_path.read_text())
    print(f"wrote {args.days} day(s) ending {args.end_date} under {files.root}/ "
          f"(exact target CTR {truth['exact_target_ctr']:.5f}, source CTR "
          f"{truth['exact_source_ctr']:.5f}; truth in {files.truth_path})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from flows.daily_retrain import daily_retrain

    config = _config(args.config)
    result = daily_retrain(config=config, run_date=check_run_date(args.date))
    print(result["verdict"]["text"])
    if result.get("promotion"):
        print(f"promotion: {result['promotion']['reason']}")
    run_dir = Path(result["run_dir"])
    print(f"report: {run_dir / 'report.html'}")
    print(f"        {run_dir / 'report.md'}")
    print(f"        {run_dir / 'report.json'}")
    return 0


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def cmd_demo(args: argparse.Namespace) -> int:
    args.config = args.config or str(DEMO_CONFIG)
    config = _config(args.config)
    if args.regenerate or not Path(config.data.root, "source").exists():
        gen = argparse.Namespace(
            out=config.data.root, seed=0, target="uniform", end_date=DEMO_RUN_DATE.isoformat(),
            days=7, source_rows=20_000, target_rows=5_000, holdout_rows=5_000, format="parquet",
        )
        cmd_generate(gen)
    args.date = DEMO_RUN_DATE.isoformat()
    return cmd_run(args)


def cmd_backfill(args: argparse.Namespace) -> int:
    from flows.backfill import backfill, backfill_dates

    config = _config(args.config)
    start, end = check_run_date(args.start), check_run_date(args.end)
    backfill_dates(start, end)  # a bad range fails here, before a flow run is created
    state = backfill(start=start, end=end, config=config, return_state=True)
    rows = state.result(raise_on_failure=False)  # the exception itself if it failed
    if isinstance(rows, Exception) or not state.is_completed():
        print(f"isbench: {state.message}", file=sys.stderr)
        return 1
    for row in rows:
        promoted = "promoted" if row["promoted"] else "not promoted"
        print(f"{row['run_date']}  {row['status']}  {promoted}  {row['run_dir']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    config = _config(args.config)
    date = check_run_date(args.date)
    run_dir = Path(config.output_root) / date.isoformat()
    reports = [run_dir / n for n in ("report.html", "report.md", "report.json")
               if (run_dir / n).is_file()]
    failures = sorted((run_dir / "failures").glob("*.json"))
    if not reports:
        last = ""
        if failures:
            record = json.loads(failures[-1].read_text())
            last = (f"; its last failure ({failures[-1]}) was at stage "
                    f"{record.get('stage')!r}: {record.get('what')}")
        print(f"isbench: no report for {date} under {run_dir.resolve()}{last}. "
              f"Fix: run `isbench run --date {date}`", file=sys.stderr)
        return 2
    for path in reports:
        print(path.resolve())
    if failures:
        print(f"({len(failures)} earlier failed run(s) of this date: {failures[-1].resolve()})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from is_core.report.history import read_history, render_history_text

    config = _config(args.config)
    rows = read_history(config.output_root, last=args.last)
    if args.format == "json":
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    elif rows:
        print(render_history_text(rows))
    else:
        print(f"no run dates under {Path(config.output_root).resolve()} yet")
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    from is_core.release.stage import registry_for

    config = _config(args.config)
    registry = registry_for(config.promotion, config.output_root)
    recovered = registry.recover()  # finish a switch whose process died
    champion = registry.alias()
    print(f"registry {registry.root.resolve()}")
    if recovered:
        print(f"a champion switch was pending: {recovered}")
    for version in registry.versions():
        mark = "  <- champion" if champion and champion.version == version.version else ""
        print(f"v{version.version}  run date {version.run_date}  {version.digest[:12]}  "
              f"{version.model_path}{mark}")
    if champion is None:
        print("no champion yet")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from flows.benchmark import benchmark
    from is_core.benchmark.grid import BenchmarkConfig

    raw = {"seeds": list(range(args.seeds)), "size_factor": args.size_factor,
           "output_dir": args.out}
    if args.scenarios:
        raw["scenarios"] = args.scenarios
    try:
        config = BenchmarkConfig(**raw)
    except ValueError as exc:
        raise IsbenchError(f"invalid benchmark options: {exc}",
                           fix="see `isbench benchmark --help`") from exc
    command = "isbench benchmark " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else (
        "isbench benchmark")
    result = benchmark(config=config, command=command)
    for verdict in result["verdicts"].values():
        print(verdict["text"])
    print(f"leaderboard: {result['paths']['markdown']}")
    print(f"report:      {result['paths']['html']}")
    return 0


def cmd_suites(args: argparse.Namespace) -> int:
    from tasks.gx.suites import SUITES_DIR, check_suites, write_suites

    config = _config(args.config)
    out = Path(args.out) if args.out else SUITES_DIR
    if not args.check:
        for path in write_suites(config, out):
            print(f"wrote {path}")
        return 0
    stale = check_suites(config, out)
    if stale:
        again = " ".join(["isbench suites", *(["--config", args.config] if args.config else []),
                          *(["--out", args.out] if args.out else [])])
        print(f"stale or missing suite files in {out}: {stale}; regenerate them with "
              f"`{again}`", file=sys.stderr)
        return 1
    print(f"suites in {out} are current")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from deployments.schedule import serve

    serve(_config(args.config), cron=args.cron)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the demo dataset (once) and run daily_retrain")
    demo.add_argument("--config", help="YAML/TOML config (default: configs/demo.yaml)")
    demo.add_argument("--regenerate", action="store_true", help="rewrite the demo data")
    demo.set_defaults(func=cmd_demo)

    gen = sub.add_parser("generate", help="write a scenario dataset with known truth")
    gen.add_argument("--out", default="data")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--target", choices=["uniform", "new_policy"], default="uniform")
    gen.add_argument("--end-date", default=DEMO_RUN_DATE.isoformat())
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--source-rows", type=int, default=20_000, help="per day")
    gen.add_argument("--target-rows", type=int, default=5_000, help="per day")
    gen.add_argument("--holdout-rows", type=int, default=5_000, help="per day")
    gen.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="run daily_retrain for one date")
    run.add_argument("--date", required=True, help="run date, YYYY-MM-DD")
    run.add_argument("--config", help="YAML/TOML config")
    run.set_defaults(func=cmd_run)

    back = sub.add_parser("backfill", help="run daily_retrain for each date of a range")
    back.add_argument("--start", required=True, help="first run date, YYYY-MM-DD")
    back.add_argument("--end", required=True, help="last run date (inclusive), YYYY-MM-DD")
    back.add_argument("--config", help="YAML/TOML config")
    back.set_defaults(func=cmd_backfill)

    report = sub.add_parser("report", help="print where the report of a run date is")
    report.add_argument("date", help="run date, YYYY-MM-DD")
    report.add_argument("--config", help="YAML/TOML config (for output_root)")
    report.set_defaults(func=cmd_report)

    history = sub.add_parser("history", help="every run date's key figures, one line per "
                             "date (the plots: <output_root>/index.html)")
    history.add_argument("--config", help="YAML/TOML config (for output_root)")
    history.add_argument("--last", type=int, help="only the newest N run dates")
    history.add_argument("--format", choices=["table", "json"], default="table")
    history.set_defaults(func=cmd_history)

    registry = sub.add_parser("registry", help="list model versions and the champion")
    registry.add_argument("--config", help="YAML/TOML config (for the registry folder)")
    registry.set_defaults(func=cmd_registry)

    bench = sub.add_parser("benchmark", help="weighting strategy × clip × scenario × seed "
                           "benchmark; writes a leaderboard and an HTML report")
    bench.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per scenario")
    bench.add_argument("--scenarios", nargs="*", help="default: all four scenarios")
    bench.add_argument("--size-factor", type=float, default=1.0,
                       help="multiplies every sample size (0.2 for a quick look)")
    bench.add_argument("--out", default="benchmarks/results", help="output folder")
    bench.set_defaults(func=cmd_benchmark)

    suites = sub.add_parser("suites", help="(re)generate the versioned Great Expectations "
                            "suites under expectations/ (--check: verify they are current)")
    suites.add_argument("--config", help="YAML/TOML config (default: built-in defaults)")
    suites.add_argument("--out", help="folder of the suite files (default: expectations/)")
    suites.add_argument("--check", action="store_true",
                        help="exit 1 if the files in --out differ from what the code generates")
    suites.set_defaults(func=cmd_suites)

    serve = sub.add_parser("serve", help="serve daily_retrain on its daily schedule")
    serve.add_argument("--config", help="YAML/TOML config")
    serve.add_argument("--cron", default="0 3 * * *", help="cron in config.timezone")
    serve.set_defaults(func=cmd_serve)
    return parser


def _in_full(error: Exception, cause: IsbenchError | None) -> str:
    """``error``'s message with the whole text of its ``cause`` in place of the cause's one-line
    ``str`` (a :class:`DataValidationError` lists every failed expectation only there): the
    Prefect logs above repeat the short form, this is the one full copy."""
    text, summary = str(error), str(cause)
    if cause is None or cause.message == summary:
        return text
    if summary and text.endswith(summary):
        return text[: -len(summary)] + cause.message
    return f"{text}\n{cause.message}"


def main(argv: list[str] | None = None) -> int:
    """Run the command; exit with the error's ``exit_code`` for an :class:`IsbenchError`: 2 for
    bad config or data or a failed gate (fix and re-run), 3 for an output folder that cannot be
    written (:class:`~is_core.errors.OutputFolderError`, an environment problem); 1 for anything
    else (a bug, or an environment problem isbench does not recognize)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except IsbenchError as exc:
        print(f"isbench: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a failed flow run: its message names the stage
        cause = exc.__cause__ if isinstance(exc.__cause__, IsbenchError) else None
        print(f"isbench: {_in_full(exc, cause)}", file=sys.stderr)
        return cause.exit_code if cause else 1


if __name__ == "__main__":
    sys.exit(main())
