"""Command line: parse the mode and options, load the config, call one pipeline function,
print its result, and map errors to exit codes.

Exit codes: 0 success; 1 unexpected internal error (traceback kept); 2 bad usage, config or
input data (one `error:` line on stderr); 3 the trained model missed the validation gate
(it is saved, marked rejected, and `latest` is not moved).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from churn import __version__
from churn.config import load_config
from churn.errors import ChurnError

# churn.pipeline (pandas, scikit-learn, matplotlib) takes about 2 s to import; it is imported
# in the mode functions so that --help, --version and usage errors answer at once.

# 1 (internal error) is Python's own exit code for an uncaught exception; 2 is ChurnError.exit_code.
EXIT_OK, EXIT_REJECTED = 0, 3

TRAIN_EXAMPLES = """examples:
  python main.py train
  python main.py train -c configs/other_table.yaml --data data/raw/2026-11.csv
  python main.py train --track
"""
PREDICT_EXAMPLES = """examples:
  python main.py predict --input data/raw/telco_customer_churn.csv
  python main.py predict --input customers.csv --output scored.csv --model models/20261127T101500123Z-ab12cd
  python main.py predict --input customers.csv --output - > scored.csv
  python main.py predict --input 2026-12.parquet --output scored.parquet --report drift.json
  python main.py predict --input 'data/2026-12/*.parquet' --output scored/ --engine dask
  python main.py predict --input data/2026-12/ --output scored.csv --engine dask --scheduler tcp://10.0.0.5:8786
"""
REPORT_EXAMPLES = """examples:
  python main.py report
  python main.py report --model 20261127T101500123Z-ab12cd
"""
SERVE_EXAMPLES = """examples:
  python main.py serve
  python main.py serve --port 8080 --model 20261127T101500123Z-ab12cd
  CHURN_API_TOKEN=s3cret python main.py serve --host 0.0.0.0 --workers 2
"""
EVALUATE_EXAMPLES = """examples:
  python main.py evaluate --input data/raw/telco_customer_churn.csv
  python main.py evaluate --input labelled.csv --json
"""


def shown(path: str | Path) -> str:
    """A path as the user reads it: relative to the current folder when it lies under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one `error:` line and a hint instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; run `{self.prog} --help` for the options", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "-c", "--config", type=Path, default=Path("config.yaml"), help="config file (default: ./config.yaml)"
    )
    loudness = common.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="also log debug detail on stderr")
    loudness.add_argument("-q", "--quiet", action="store_true", help="log only errors on stderr")

    parser = _Parser(
        prog="churn",
        description="Train, score and evaluate customer-churn models from one config file.",
        epilog="run `churn MODE --help` for a mode's options and examples",
    )
    parser.add_argument("--version", action="version", version=f"churn {__version__}")
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")

    def mode(name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
        return modes.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=examples,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    train = mode("train", "train a model on a labelled table and save it as a new run", TRAIN_EXAMPLES)
    train.add_argument("--data", type=Path, help="labelled table to train on (default: data.path in the config)")
    train.add_argument(
        "--track",
        action=argparse.BooleanOptionalAction,
        help="log this run to MLflow, or not (default: tracking.enabled in the config)",
    )

    predict = mode("predict", "score a table with a saved model", PREDICT_EXAMPLES)
    predict.add_argument("--input", type=Path, required=True, help="table to score (.csv, .csv.gz or .parquet)")
    predict.add_argument(
        "--output",
        help="where to write predictions; '-' for stdout (default: <predictions_dir>/<input stem>_predictions.csv)",
    )
    predict.add_argument("--model", help="run folder or run id to use (default: the run models/latest names)")
    predict.add_argument(
        "--report", type=Path, help="also write data-quality figures (drift against training) as JSON here"
    )
    predict.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local (default): this process, streaming; dask: one task per part on a Dask cluster, "
        "--input may be a folder or a glob, --output a folder of Parquet parts or one .csv",
    )
    predict.add_argument(
        "--scheduler", metavar="ADDRESS", help="with --engine dask: a running scheduler (default: a local cluster)"
    )

    evaluate = mode("evaluate", "score a labelled table with a saved model and report metrics", EVALUATE_EXAMPLES)
    evaluate.add_argument("--input", type=Path, required=True, help="labelled table to evaluate on")
    evaluate.add_argument("--model", help="run folder or run id to use (default: latest)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")

    serve = mode("serve", "serve the model over HTTP (FastAPI on uvicorn)", SERVE_EXAMPLES)
    serve.add_argument("--model", help="pin this run folder or run id (default: follow models/latest, switching live)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes (default: 1)")

    report = mode("report", "rebuild report.md and its plots for a saved run", REPORT_EXAMPLES)
    report.add_argument("--model", help="run folder or run id (default: latest)")

    registry = modes.add_parser("models", help="list, show, promote (roll back) or prune saved runs",
                                description="The runs in the config's models folder.")  # fmt: skip
    actions = registry.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name, parents=[common], help=help_text, description=help_text, epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip

    listing = action("list", "one line per run, newest first", "python main.py models list -c other.yaml")
    listing.add_argument("--json", action="store_true", help="print the runs as JSON")
    show = action(
        "show", "a run's metadata and metrics as JSON", "python main.py models show 20261127T124807632Z-16dda2"
    )
    show.add_argument("run_id", metavar="RUN_ID")
    promote = action(
        "promote", "point latest at an earlier accepted run (roll back)", "python main.py models promote RUN_ID"
    )
    promote.add_argument("run_id", metavar="RUN_ID")
    prune = action(
        "prune", "delete all but the newest N runs, never the latest", "python main.py models prune --keep 5"
    )
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="how many of the newest runs to keep")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(_log_level(args))
    try:
        config = load_config(args.config)
        return MODES[args.mode](config, args)
    except ChurnError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout (`| head`) closed it: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _log_level(args: argparse.Namespace) -> str:
    return "debug" if args.verbose else "error" if args.quiet else "info"


def configure_logging(level_name: str) -> None:
    """Log lines `level: message` on stderr: the package's at `level_name` (debug, info or
    error), other libraries' warnings and errors only."""
    level = logging.getLevelNamesMapping()[level_name.upper()]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowercaseLevelFormatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("churn").setLevel(level)


class _LowercaseLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def _run_train(config: Any, args: argparse.Namespace) -> int:
    from churn import pipeline

    if args.track is not None:
        config = config.model_copy(update={"tracking": config.tracking.model_copy(update={"enabled": args.track})})
    result = pipeline.train(config, args.data)
    data, metadata = result.metadata["training_data"], result.metadata
    print(f"trained on {shown(data['path'])}")
    print(f"rows used {data['rows_used']} (train {data['train_rows']}, test {data['test_rows']})")
    print(f"\nleaderboard ({config.training.cv_folds}-fold CV on the training rows, best first):")
    print(_leaderboard_table(result.leaderboard))
    print(f"\nselected {metadata['model_name']}; test-set metrics:")
    print(_metrics_table(result.metrics))
    print(f"threshold {metadata['threshold']:.2f}: {metadata['threshold_choice']['reason']}")
    if "expected_cost" in result.metrics:
        m = result.metrics
        print(f"expected cost on the test rows {m['expected_cost']:,.0f} vs {m['cost_contact_nobody']:,.0f} "
              f"contacting nobody and {m['cost_contact_everyone']:,.0f} contacting everyone "
              f"(saving {m['saving_vs_contact_nobody']:,.0f} against contacting nobody)")  # fmt: skip
    print(f"report: {shown(result.run_dir / 'report.md')}")
    if result.gate_missed:
        print(f"saved run {result.run_id} to {shown(result.run_dir)} as rejected; latest not moved")
        print(f"error: model rejected by the validation gate: {'; '.join(result.gate_missed)}", file=sys.stderr)
        return EXIT_REJECTED
    print(f"saved run {result.run_id} to {shown(result.run_dir)} (now latest)")
    return EXIT_OK


def _leaderboard_table(board: Any) -> str:
    lines = [f"  {'rank':<5}{'model':<25}{'ROC AUC':>18}{'PR AUC':>18}{'F1':>18}{'fit s':>8}{'tried':>7}"]
    for row in board.itertuples(index=False):
        scores = "".join(
            f"{getattr(row, m + '_mean'):>10.4f} ± {getattr(row, m + '_std'):.3f}" for m in ("roc_auc", "pr_auc", "f1")
        )
        lines.append(f"  {row.rank:<5}{row.model:<25}{scores}{row.fit_seconds_mean:>8.2f}{row.settings_tried:>7}")
    return "\n".join(lines)


def _run_predict(config: Any, args: argparse.Namespace) -> int:
    from churn import pipeline

    if args.engine == "dask":
        return _run_predict_dask(config, args)
    if args.scheduler is not None:
        raise ChurnError("--scheduler applies to --engine dask only; add --engine dask")
    result = pipeline.predict(config, args.input, args.output, args.model, args.report)
    if result.output != "-":
        positives = f"{result.predicted_positive} predicted to churn"
        print(f"wrote {result.rows} predictions ({positives}) to {shown(result.output)}")
    return EXIT_OK


def _run_predict_dask(config: Any, args: argparse.Namespace) -> int:
    from churn import distributed

    if args.output is None or args.output == "-":
        raise ChurnError("--engine dask needs --output: a folder for Parquet parts, or a file ending in .csv")
    if args.report is not None:
        raise ChurnError("--report is not available with --engine dask; score with the local engine to get it")
    result = distributed.predict(config, args.input, Path(args.output), args.model, args.scheduler)
    positives = f"{result.predicted_positive} predicted to churn"
    print(f"wrote {result.rows} predictions ({positives}) from {result.parts} part(s) to {shown(result.output)}")
    return EXIT_OK


def _run_evaluate(config: Any, args: argparse.Namespace) -> int:
    from churn import pipeline

    metrics = pipeline.evaluate(config, args.input, args.model)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"run {metrics['run_id']} on {shown(metrics['input'])} ({metrics['rows']} rows)")
        print(_metrics_table(metrics))
    return EXIT_OK


def _run_models(config: Any, args: argparse.Namespace) -> int:
    from churn import runs

    models_dir = config.paths.models_dir
    if args.action == "list":
        rows = runs.list_runs(models_dir)
        print(json.dumps(rows, indent=2) if args.json else _runs_table(rows))
    elif args.action == "show":
        print(json.dumps(runs.run_details(models_dir, args.run_id), indent=2))
    elif args.action == "promote":
        runs.promote(models_dir, args.run_id)
        print(f"latest is now {args.run_id}")
        if config.tracking.enabled:
            from churn import tracking

            tracking.move_champion(config, args.run_id)
    else:
        if args.keep < 1:
            raise ChurnError(f"--keep must be at least 1, got {args.keep}")
        deleted = runs.prune(models_dir, args.keep)
        print(f"deleted {len(deleted)} run(s)" + "".join(f"\n  {run_id}" for run_id in deleted))
    return EXIT_OK


def _runs_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no runs yet"
    lines = [f"  {'run id':<28}{'created':<27}{'model':<24}{'ROC AUC':>8}{'thresh':>8}  status"]
    for row in rows:
        auc = f"{row['test_roc_auc']:.4f}" if row["test_roc_auc"] is not None else "-"
        threshold = f"{row['threshold']:.2f}" if row["threshold"] is not None else "-"
        status = row["status"] + ("  <- latest" if row["latest"] else "")
        lines.append(
            f"  {row['run_id']:<28}{row['created'] or '-':<27}{row['model'] or '-':<24}{auc:>8}{threshold:>8}  {status}"
        )
    return "\n".join(lines)


def _run_serve(config: Any, args: argparse.Namespace) -> int:
    from churn.service.server import LOG_LEVEL_VARIABLE, serve

    os.environ[LOG_LEVEL_VARIABLE] = _log_level(args)  # for worker processes, which set up their own logging
    serve(config, args.host, args.port, args.workers, args.model)
    return EXIT_OK


def _port(text: str) -> int:
    number = _integer(text)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0 to 65535)")
    return number


def _positive(text: str) -> int:
    number = _integer(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _run_report(config: Any, args: argparse.Namespace) -> int:
    from churn import pipeline

    print(f"wrote {shown(pipeline.rebuild_report(config, args.model))}")
    return EXIT_OK


def _metrics_table(metrics: dict[str, Any]) -> str:
    from churn.evaluation import METRIC_LABELS

    lines = [f"  {'metric':<30}{'value':>16}"]
    lines += [f"  {label:<30}{metrics[key]:>16.4f}" for key, label in METRIC_LABELS.items()]
    if "cv_roc_auc_mean" in metrics:
        cv = f"{metrics['cv_roc_auc_mean']:.4f} ± {metrics['cv_roc_auc_std']:.4f}"
        lines.append(f"  {str(metrics['cv_folds']) + '-fold CV ROC AUC (train)':<30}{cv:>16}")
    cm = metrics["confusion_matrix"]
    lines.append(f"  threshold {metrics['threshold']:.3f}: TP {cm['tp']}  FP {cm['fp']}  FN {cm['fn']}  TN {cm['tn']}")
    return "\n".join(lines)


MODES: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "train": _run_train,
    "predict": _run_predict,
    "evaluate": _run_evaluate,
    "report": _run_report,
    "serve": _run_serve,
    "models": _run_models,
}
