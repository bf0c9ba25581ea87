"""The command line's grammar: modes, options, help texts and examples."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from churn import __version__

TRAIN_EXAMPLES = """examples:
  python main.py train
  python main.py train -c configs/other_table.yaml --data data/raw/2026-11.csv
  python main.py train --track
  python main.py train --data postgresql://churn@127.0.0.1:5432/crm \
                       --query "select * from customers where snapshot = '2026-11'"
  python main.py train --data sqlite:///data/crm.db --table customers
  python main.py train --engine dask --scheduler tcp://10.0.0.5:8786
"""
PREDICT_EXAMPLES = """examples:
  python main.py predict --input data/raw/telco_customer_churn.csv
  python main.py predict --input customers.csv --output scored.csv --model models/20261127T101500123Z-ab12cd
  python main.py predict --input customers.csv --output - > scored.csv
  python main.py predict --input 2026-12.parquet --output scored.parquet --report drift.json
  python main.py predict --input contacted.csv --explain
  python main.py predict --input contacted.csv --explain 5 --contributions --output why.parquet
  python main.py predict --input 'data/2026-12/*.parquet' --output scored/ --engine dask
  python main.py predict --input data/2026-12/ --output scored.csv --engine dask --scheduler tcp://10.0.0.5:8786
  python main.py predict --input sqlite:///data/crm.db --table customers --output scores.parquet
  python main.py predict --input postgresql://churn@127.0.0.1:5432/crm --table customers_2026_12 \
                         --output postgresql://churn@127.0.0.1:5432/crm --output-table churn_scores_2026_12
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
MONITOR_EXAMPLES = """examples:
  python main.py monitor --input data/2026-12.csv
  python main.py monitor --input data/2026-12.parquet --output monitoring/2026-12/ --model 20261127T101500123Z-ab12cd
  python main.py monitor --history
  python main.py monitor --input postgresql://churn@127.0.0.1:5432/crm --table customers_2026_12
exit codes: 0 stable or warning, 4 alarm, 2 bad input
"""
CAMPAIGN_EXAMPLES = """examples:
  python main.py predict --input data/2026-12.csv --budget 2000 --holdout 0.2 --seed 7 --output contacts.csv
  python main.py campaign --contacts contacts.csv --outcomes data/2027-03_outcomes.csv
  python main.py campaign --contacts contacts.csv --outcomes postgresql://churn@127.0.0.1:5432/crm --table outcomes
exit codes: 0 measured, 2 bad input
"""
INIT_EXAMPLES = """examples:
  python main.py init --data data/raw/my_customers.csv --target Churn
  python main.py init --data crm_export.parquet --target churned --output configs/crm.yaml
  python main.py init --data crm_export.parquet --target churned --show
"""
EVALUATE_EXAMPLES = """examples:
  python main.py evaluate --input data/raw/telco_customer_churn.csv
  python main.py evaluate --input labelled.csv --json
  python main.py evaluate --input sqlite:///data/crm.db --query "select * from customers where snapshot = '2026-10'"
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one `error:` line and a hint instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}; run `{self.prog} --help` for the options", file=sys.stderr)
        raise SystemExit(2)


def program_name(argv0: str | None = None) -> str:
    """How the user started churn, for the hints: `python main.py` or the `churn` command."""
    name = Path(argv0 if argv0 is not None else sys.argv[0]).name
    return "python main.py" if name == "main.py" else "churn"


def _add_database(parser: argparse.ArgumentParser, option: str) -> None:
    """--table and --query: which rows of the database that `option` names as a URL."""
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument(
        "--table", metavar="NAME", help=f"with a database URL as {option}: the table to read (schema.table or table)"
    )
    rows.add_argument("--query", metavar="SQL", help=f"with a database URL as {option}: a SELECT giving the rows")


def _add_common(parser: argparse.ArgumentParser, default: object) -> None:
    """-c, -v and -q; accepted before the mode and after it (`default` SUPPRESS on the modes, so
    that a value given before the mode is not reset by the mode's own default)."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path("config.yaml") if default is None else default,
        help="config file (default: ./config.yaml)",
    )
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", action="store_true", default=default or False, help="also log debug detail on stderr"
    )
    loudness.add_argument(
        "-q", "--quiet", action="store_true", default=default or False, help="log only errors on stderr"
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    _add_common(common, argparse.SUPPRESS)
    prog = prog or program_name()
    parser = _Parser(
        prog=prog,
        description="Train, score and evaluate customer-churn models from one config file.",
        epilog=f"run `{prog} MODE --help` for a mode's options and examples",
    )
    _add_common(parser, None)
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

    init = mode("init", "write a first config for a table of your own, inferring its columns", INIT_EXAMPLES)
    init.add_argument("--data", type=_file, required=True, help="the labelled table (.csv, .csv.gz or .parquet)")
    init.add_argument("--target", required=True, help="the column that says who churned")
    init.add_argument(
        "--output", type=Path, default=Path("config.yaml"), help="where to write it (default: config.yaml)"
    )
    init.add_argument("--force", action="store_true", help="replace --output if it exists (else refused)")
    init.add_argument(
        "--show", action="store_true", help="print each column's role and why as a table, and write nothing"
    )

    train = mode("train", "train a model on a labelled table and save it as a new run", TRAIN_EXAMPLES)
    train.add_argument(
        "--data",
        help="labelled table to train on: a file, or a database URL with --table or --query (default: data.source "
        "or data.path in the config)",
    )
    _add_database(train, "--data")
    train.add_argument(
        "--track",
        action=argparse.BooleanOptionalAction,
        help="log this run to MLflow, or not (default: tracking.enabled in the config)",
    )
    train.add_argument(
        "--engine",
        choices=("local", "dask"),
        help="where the comparison's fits run: local processes, or dask: a Dask cluster's workers, the same results "
        "(default: training.engine in the config)",
    )
    train.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: a running scheduler (default: training.scheduler, else a local cluster)",
    )

    predict = mode("predict", "score a table with a saved model", PREDICT_EXAMPLES)
    predict.add_argument(
        "--input",
        required=True,
        help="table to score: .csv, .csv.gz or .parquet, or a database URL with --table or --query",
    )
    _add_database(predict, "--input")
    predict.add_argument(
        "--output",
        help="where to write predictions; '-' for stdout; a database URL with --output-table (default: "
        "<predictions_dir>/<input stem>_predictions.csv)",
    )
    predict.add_argument(
        "--output-table",
        metavar="NAME",
        help="with a database URL as --output: the table to write, in one "
        "transaction, with run_id and scored_at columns",
    )
    predict.add_argument(
        "--if-exists",
        choices=("fail", "replace", "append"),
        help="with --output-table: an existing table is "
        "refused (fail, the default), replaced (replace, as --overwrite) or added to (append)",
    )
    predict.add_argument("--model", help="run folder or run id to use (default: the run models/latest names)")
    predict.add_argument(
        "--report", type=Path, help="also write data-quality figures (drift against training) as JSON here"
    )
    predict.add_argument(
        "--explain",
        nargs="?",
        const=3,
        type=_positive,
        metavar="K",
        help="add each row's K reason codes (default 3): reason_k, reason_k_value, reason_k_effect, the "
        "input columns that push it most towards churn",
    )
    predict.add_argument(
        "--contributions",
        action="store_true",
        help="add contribution_<column> for every input column and contribution_base (they sum to the margin)",
    )
    predict.add_argument(
        "--budget",
        type=_positive,
        metavar="N",
        help="contact at most N customers, those with the highest positive expected saving (needs the run's "
        "decision costs): adds expected_saving and contact (0/1)",
    )
    predict.add_argument(
        "--contacts-only",
        action="store_true",
        help="write only the customers to contact, highest expected saving first, with their value and "
        "--explain K (default 3) reasons in points of churn probability",
    )
    predict.add_argument(
        "--holdout",
        type=_share,
        metavar="SHARE",
        help="hold out this share of the chosen customers as the campaign's control group (seeded, "
        "stratified by expected saving): adds group (contact, holdout); measure it later with campaign",
    )
    predict.add_argument("--seed", type=int, default=0, help="with --holdout: the random seed (default 0)")
    predict.add_argument(
        "--no-horizons",
        action="store_true",
        help="leave out the survival model's churn_within_<h>m and expected_months_<h>m (predict.horizons false)",
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
    predict.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output-table, or with --engine dask an existing output CSV or folder (else "
        "refused); local predict always replaces its output file, atomically",
    )

    evaluate = mode("evaluate", "score a labelled table with a saved model and report metrics", EVALUATE_EXAMPLES)
    evaluate.add_argument(
        "--input",
        required=True,
        help="labelled table to evaluate on: a file, or a database URL with --table or --query",
    )
    _add_database(evaluate, "--input")
    evaluate.add_argument("--model", help="run folder or run id to use (default: latest)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")

    monitor = mode(
        "monitor", "compare a batch with the run that scores it: drift and estimated performance", MONITOR_EXAMPLES
    )
    monitor.add_argument(
        "--input", help="table to monitor: .csv, .csv.gz or .parquet, or a database URL with --table or --query"
    )
    _add_database(monitor, "--input")
    monitor.add_argument("--model", help="run folder or run id to use (default: latest)")
    monitor.add_argument(
        "--output", type=Path, help="folder for monitor.json and monitor.html (default: monitoring/<input stem>/)"
    )
    monitor.add_argument("--history", action="store_true", help="print every monitored batch instead, oldest first")
    monitor.add_argument("--json", action="store_true", help="print monitor.json (or the history), not a summary")

    campaign = mode("campaign", "measure a campaign's effect: its contact list against the outcomes", CAMPAIGN_EXAMPLES)
    campaign.add_argument(
        "--contacts", required=True, help="the contact list predict --holdout wrote (its id and group columns)"
    )
    campaign.add_argument(
        "--outcomes",
        required=True,
        help="each customer's id and whether they churned (the target column, or churned): a file, or a database "
        "URL with --table or --query",
    )
    _add_database(campaign, "--outcomes")
    campaign.add_argument(
        "--output", type=Path, help="folder for campaign.json and campaign.html (default: campaigns/<contacts stem>/)"
    )
    campaign.add_argument("--json", action="store_true", help="print campaign.json, not a summary")

    serve = mode("serve", "serve the model over HTTP (FastAPI on uvicorn)", SERVE_EXAMPLES)
    serve.add_argument("--model", help="pin this run folder or run id (default: follow models/latest, switching live)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes (default: 1)")

    report = mode("report", "rebuild report.md and its plots for a saved run", REPORT_EXAMPLES)
    report.add_argument("--model", help="run folder or run id (default: latest)")

    registry = modes.add_parser(
        "models",
        help="list, show, promote (roll back) or prune saved runs",
        description="The runs in the config's models folder.",
    )
    actions = registry.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    listing = action("list", "one line per run, newest first", "python main.py models list -c other.yaml")
    listing.add_argument("--json", action="store_true", help="print the runs as JSON")
    show = action(
        "show", "a run's metadata and metrics as JSON", "python main.py models show 20261127T124807632Z-16dda2"
    )
    show.add_argument("run_id", metavar="RUN_ID")
    compare = action(
        "compare",
        "two runs side by side: metrics, threshold, data, model and config differences",
        "python main.py models compare 20261127T124807632Z-16dda2 20261201T182607297Z-74f702",
    )
    compare.add_argument("run_ids", nargs=2, metavar="RUN_ID", help="the two runs (ids, folders, or latest)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    promote = action(
        "promote", "point latest at an earlier accepted run (roll back)", "python main.py models promote RUN_ID"
    )
    promote.add_argument("run_id", metavar="RUN_ID")
    prune = action(
        "prune", "delete all but the newest N runs, never the latest", "python main.py models prune --keep 5"
    )
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="how many of the newest runs to keep")
    prune.add_argument("--dry-run", action="store_true", help="list the runs it would delete, and delete nothing")
    return parser


def _file(text: str) -> Path:
    """A file path; a database URL is refused by name (Path would fold its // into /)."""
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"{text.split('://')[0]}:// is a database; init infers a config from a "
            "file: export a sample of the table to CSV or Parquet"
        )
    return Path(text)


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


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < share < 1:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and below 1 (0.2: a fifth held out)")
    return share


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def check_typos(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Refuse an option the mode does not know, naming it and the closest one it does: argparse
    would first complain that a required option is missing, and never name the typo."""
    mode = _named_mode(parser, argv)
    if mode is None:
        return
    known = {option for action in [*mode._actions, *parser._actions] for option in action.option_strings}
    for token in argv:
        given = token.split("=", 1)[0]
        if given.startswith("--") and given != "--" and given not in known:
            close = difflib.get_close_matches(given, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            mode.error(f"unknown option {given}{hint}")


def _named_mode(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.ArgumentParser | None:
    """The parser of the mode (or `models` action) argv names, or None when it names none."""
    current = None
    for token in argv:
        subparsers = [a for a in (current or parser)._actions if isinstance(a, argparse._SubParsersAction)]
        if subparsers and token in subparsers[0].choices:
            current = subparsers[0].choices[token]
    return current
