"""Command line: parse the mode and options, load the config, call one pipeline function,
print its result, and map errors to exit codes.

Exit codes: 0 success; 1 unexpected internal error (traceback kept); 2 bad usage, config or
input data (one `error:` line on stderr); 3 the trained model missed the validation gate
(it is saved, marked rejected, and `latest` is not moved); 4 `monitor` raised an alarm.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from churn.cli import text
from churn.cli.parser import build_parser, check_typos
from churn.config import Config, load_config
from churn.errors import ChurnError, ConfigError
from churn.logs import configure_logging, relative_paths
from churn.parallel import DASK_INSTALL
from churn.store import runs

# 1 (internal error) is Python's own exit code for an uncaught exception; 2 is ChurnError.exit_code.
EXIT_OK, EXIT_REJECTED, EXIT_ALARM = 0, 3, 4


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    check_typos(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    configure_logging(log_level(args))
    try:
        if args.mode == "init":  # writes the config, so it reads none
            return _run_init(args)
        config = load_config(args.config)
        return MODES[args.mode](config, args)
    except ChurnError as error:
        print(f"error: {relative_paths(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout (`| head`) closed it: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def log_level(args: argparse.Namespace) -> str:
    return "debug" if args.verbose else "error" if args.quiet else "info"


def shown(path: str | Path) -> str:
    """A path as the user reads it: relative to the current folder when it lies under it (a
    database URL as it is)."""
    if "://" in str(path):
        return str(path)
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# Each mode imports its workflow when it runs (the comments say what that defers), so that
# --help, --version and usage errors answer at once (0.2 s instead of 0.5 s).


def _run_init(args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pyarrow; pipeline.init defers pandas

    written = pipeline.init(args.data, args.target, args.output, args.force, args.show)
    inferred = written.inferred
    if written.output is None:  # --show
        print(text.roles_table(inferred.roles))
        print(f"{inferred.rows:,} rows read, {inferred.churn_share:.1%} churned; nothing written")
        return EXIT_OK
    print(
        f"wrote {shown(written.output)}: {len(inferred.numeric)} numeric, {len(inferred.categorical)} categorical "
        f"feature(s); id column {inferred.id_column or 'none'}; positive label {inferred.positive_label!r} "
        f"({inferred.why_positive})"
    )
    for column, why in inferred.left_out.items():
        print(f"  left out {column}: {why}")
    print(f"next: python main.py train -c {shown(written.output)}")
    print(
        "check first: the positive label and the columns left out above, then the run's test ROC AUC against "
        "the best single column's (the config's validation comments) and the report's top reasons"
    )
    return EXIT_OK


def _run_train(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pandas and pyarrow; pipeline.train defers the training side

    if args.track is not None:
        config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"enabled": args.track})})
    config = _training_engine(config, args)
    if args.track:  # named here: the config may say false, and the message must name what asked
        from churn.store import tracking  # defers pandas; MLflow itself loads only when a run is logged

        tracking.check_available(config, asked_by="--track")
    result = pipeline.train(config, _source(config, args.data, args))
    record = result.record
    print(f"trained on {shown(record.data.path)}")
    print(f"rows used {record.data.rows_used} (train {record.split.train_rows}, test {record.split.test_rows})")
    print(f"\nleaderboard ({record.selection.cv_folds}-fold CV on the training rows, best first):")
    print(text.leaderboard_table(result.leaderboard))
    print(f"\nselected {record.model.name}; test-set metrics:")
    print(text.metrics_table(record.metrics.model_dump(), record.threshold.value, record.selection.cv_folds))
    print(f"threshold {record.threshold.value:.2f}: {record.threshold.reason}")
    if (costs := record.metrics.costs) is not None:
        print(text.cost_line("the test rows", costs.model_dump()))
    if record.survival is not None:
        print(text.survival_line(record.survival))
    print(f"report: {shown(result.run_dir / runs.REPORT)}")
    if result.gate_missed:
        print(f"saved run {result.run_id} to {shown(result.run_dir)} as rejected; latest not moved")
        print(f"error: model rejected by the validation gate: {'; '.join(result.gate_missed)}", file=sys.stderr)
        return EXIT_REJECTED
    print(f"saved run {result.run_id} to {shown(result.run_dir)} (now latest)")
    return EXIT_OK


def _training_engine(config: Config, args: argparse.Namespace) -> Config:
    """The config with train's --engine and --scheduler applied.

    Raises:
        ChurnError: a scheduler without the dask engine, or the dask extra is not installed.
    """
    training = config.training.model_copy(
        update={
            "engine": args.engine or config.training.engine,
            "scheduler": args.scheduler or config.training.scheduler,
        }
    )
    if training.engine != "dask":
        if args.scheduler is not None:
            raise ChurnError("--scheduler applies to --engine dask only; add --engine dask")
        return config
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError(f"--engine dask needs Dask, which is not installed; install it with {DASK_INSTALL}")
    return config.model_copy(update={"training": training})


def _run_predict(config: Config, args: argparse.Namespace) -> int:
    # One OpenMP thread per scoring thread: predict scores slices of rows on the usable cores
    # itself, and OpenMP teams inside each would oversubscribe them and spin when the machine
    # is busy. Set before scikit-learn loads OpenMP; the numbers do not depend on it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.no_horizons:
        config = config.model_copy(update={"predict": config.predict.model_copy(update={"horizons": False})})
    if args.engine == "dask":
        return _run_predict_dask(config, args)
    if args.scheduler is not None:
        raise ChurnError("--scheduler applies to --engine dask only; add --engine dask")
    from churn import pipeline  # defers pandas and pyarrow (about 0.3 s)

    output = pipeline.Output(args.output, args.output_table, _if_exists(args), _password_env(config))
    source = _source(config, args.input, args)
    plan = _contact_plan(args)
    result = pipeline.predict(config, source, output, args.model, args.report, _explain(args), plan)
    if result.output != "-":
        positives = f"{result.predicted_positive} predicted to churn"
        if args.contacts_only and result.contacts is not None:
            listed = f"{result.contacts.chosen.chosen} contacts of {result.rows} customers"
        else:
            listed = f"{result.rows} predictions"
        print(f"wrote {listed} ({positives}) to {shown(result.output)}")
    if result.contacts is not None:
        for line in text.contact_lines(result.contacts, config.decision.currency):
            print(line, file=sys.stderr if result.output == "-" else sys.stdout)
    if result.horizons is not None and result.horizons.customers and result.output != "-":
        print(text.horizon_line(result.horizons))
    return EXIT_OK


def _contact_plan(args: argparse.Namespace) -> Any:
    """--budget, --holdout, --seed and --contacts-only as a contact plan (None: none asked)."""
    if args.budget is None and args.holdout is None and not args.contacts_only:
        if args.seed:
            raise ChurnError("--seed draws the --holdout; add --holdout SHARE")
        return None
    from churn.scoring.core import ContactPlan  # defers numpy and pyarrow, as the workflows do

    return ContactPlan(args.budget, args.holdout, args.seed, args.contacts_only)


def _source(config: Config, given: str | None, args: argparse.Namespace) -> Any:
    """--data or --input as a file or a database's rows (--table, --query; the URL may come
    from data.source.url); None when neither is given."""
    from churn.io import tables  # defers pyarrow

    if given is None and (args.table or args.query):
        if config.data.source is None:
            raise ChurnError(
                "--table and --query read from a database: give its URL as --data/--input, or set "
                "data.source.url in the config"
            )
        given = config.data.source.url
    return None if given is None else tables.source_of(given, args.table, args.query, _password_env(config))


def _password_env(config: Config) -> str | None:
    return config.data.source.password_env if config.data.source is not None else None


def _if_exists(args: argparse.Namespace) -> str:
    """--if-exists, with --overwrite as replace; only for an --output-table."""
    if args.output_table is None:
        if args.if_exists is not None:
            raise ChurnError("--if-exists applies to --output-table; a file output is always replaced atomically")
        return "fail"
    if args.overwrite and args.if_exists not in (None, "replace"):
        raise ChurnError(f"--overwrite replaces the table, --if-exists {args.if_exists} does not; give one of them")
    return "replace" if args.overwrite else args.if_exists or "fail"


def _run_predict_dask(config: Config, args: argparse.Namespace) -> int:
    if args.table or args.query or args.output_table:  # a cluster reads parts of files, each task its own
        raise ChurnError("--engine dask reads and writes files only; score a database with the local engine")
    if args.output is None or args.output == "-":
        raise ChurnError("--engine dask needs --output: a folder for Parquet parts, or a file ending in .csv")
    if args.report is not None:
        raise ChurnError("--report is not available with --engine dask; score with the local engine to get it")
    for given, option in (
        (args.budget, "--budget"),
        (args.holdout, "--holdout"),
        (args.contacts_only or None, "--contacts-only"),
    ):
        if given is not None:  # these rank the whole file, which the parts never see at once
            raise ChurnError(f"{option} is not available with --engine dask; score with the local engine to get it")
    from churn.scoring import distributed  # defers pandas and pyarrow; Dask loads when the cluster starts

    result = distributed.predict(
        config, Path(args.input), Path(args.output), args.model, args.scheduler, _explain(args), args.overwrite
    )
    positives = f"{result.predicted_positive} predicted to churn"
    print(f"wrote {result.rows} predictions ({positives}) from {result.parts} part(s) to {shown(result.output)}")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> Any:
    """predict's --explain K and --contributions, as churn.explain.explainers.Explain (None: neither)."""
    if args.explain is None and not args.contributions:
        return None
    from churn.explain.explainers import Explain  # defers numpy and pyarrow, as the workflows do

    return Explain(top=args.explain or 0, contributions=args.contributions)


def _run_evaluate(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pandas and pyarrow; pipeline.evaluate defers scikit-learn

    evaluation = pipeline.evaluate(config, _source(config, args.input, args), args.model)
    if args.json:
        print(json.dumps(evaluation.model_dump(mode="json"), indent=2))
        return EXIT_OK
    metrics = evaluation.metrics
    print(f"run {evaluation.run_id} on {shown(evaluation.input)} ({metrics.rows} rows)")
    print(text.metrics_table(metrics.model_dump(), evaluation.threshold))
    if metrics.costs is not None:  # the run was trained with decision costs
        print(text.cost_line("these rows", metrics.costs.model_dump()))
    return EXIT_OK


def _run_monitor(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pyarrow; pipeline.monitor defers matplotlib

    if args.history:
        if args.input is not None:
            raise ChurnError("--history prints the history and takes no --input; drop one of them")
        lines = pipeline.monitor_history(config)
        print(json.dumps(lines, indent=2) if args.json else text.history_table(lines))
        return EXIT_OK
    source = _source(config, args.input, args)
    if source is None:
        raise ChurnError("monitor needs --input FILE (or a database URL with --table or --query, or --history)")
    result = pipeline.monitor(config, source, args.model, args.output)
    report = result.report
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(text.monitor_summary(report))
        print(f"wrote {shown(result.output / 'monitor.html')} and monitor.json")
    if result.verdict == "alarm":
        print(f"error: monitoring alarm: {'; '.join(report.reasons)}", file=sys.stderr)
        return EXIT_ALARM
    return EXIT_OK


def _run_models(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pyarrow (the run registry needs none of it)

    if args.action == "list":
        rows = pipeline.list_runs(config)
        print(json.dumps(rows, indent=2) if args.json else text.runs_table(rows))
    elif args.action == "show":
        print(json.dumps(pipeline.run_details(config, args.run_id), indent=2))
    elif args.action == "compare":
        first, second = (None if run == "latest" else run for run in args.run_ids)
        found = pipeline.compare_runs(config, first, second)
        print(json.dumps(found, indent=2) if args.json else text.comparison_table(found))
    elif args.action == "promote":
        moved = pipeline.promote(config, args.run_id)
        print(f"latest is now {args.run_id}" + (" (and MLflow's champion)" if moved else ""))
    else:
        if args.keep < 1:
            raise ChurnError(f"--keep must be at least 1, got {args.keep}")
        deleted = pipeline.prune(config, args.keep, args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {len(deleted)} run(s)" + "".join(f"\n  {run_id}" for run_id in deleted))
    return EXIT_OK


def _run_serve(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pyarrow; pipeline.serve defers FastAPI, uvicorn and pandas
    from churn.logs import LOG_LEVEL_VARIABLE

    os.environ[LOG_LEVEL_VARIABLE] = log_level(args)  # for worker processes, which set up their own logging
    pipeline.serve(config, args.host, args.port, args.workers, args.model)
    return EXIT_OK


def _run_report(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pandas and pyarrow; pipeline.rebuild_report defers matplotlib

    print(f"wrote {shown(pipeline.rebuild_report(config, args.model))}")
    return EXIT_OK


def _run_campaign(config: Config, args: argparse.Namespace) -> int:
    from churn import pipeline  # defers pandas and pyarrow
    from churn.io import tables  # defers pyarrow

    outcomes = _source(config, args.outcomes, args)
    result = pipeline.campaign(config, tables.source_of(args.contacts), outcomes, args.output)
    if args.json:
        print(json.dumps(result.figures, indent=2))
    else:
        for line in text.campaign_lines(result.figures):
            print(line)
        print(f"wrote {shown(result.output / 'campaign.html')} and campaign.json")
    return EXIT_OK


MODES: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "train": _run_train,
    "predict": _run_predict,
    "evaluate": _run_evaluate,
    "monitor": _run_monitor,
    "campaign": _run_campaign,
    "report": _run_report,
    "serve": _run_serve,
    "models": _run_models,
}
