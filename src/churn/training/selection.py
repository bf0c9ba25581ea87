"""Compare candidate models by stratified k-fold cross-validation on the training rows only,
search their hyperparameters inside those folds, and choose the decision threshold on their
out-of-fold predictions. The test rows never enter this module.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from sklearn.base import ClassifierMixin, clone
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import ParameterGrid, ParameterSampler, StratifiedKFold, TimeSeriesSplit, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from churn.config import Candidate, Config, DecisionConfig, TrainingConfig
from churn.errors import ConfigError, DataError
from churn.model import build_estimator
from churn.parallel import dask_client, usable_cores
from churn.scoring.decisions import Costs, Money
from churn.scoring.scorers import predict_labels
from churn.training.evaluation import threshold_curve

logger = logging.getLogger(__name__)

FOLD_METRICS = ("roc_auc", "pr_auc", "f1")
PipelineFactory = Callable[[ClassifierMixin], Pipeline]


@dataclass(frozen=True)
class CandidateScore:
    """Cross-validated scores of one candidate at one parameter setting."""

    name: str
    params: dict[str, Any]
    fold_scores: dict[str, list[float]]
    fit_seconds: list[float]
    oof_probabilities: np.ndarray  # each training row scored by the fold model that did not see it
    settings_tried: int = 1
    label: str = ""  # "random_forest [2/4]": which candidate and setting
    setting: dict[str, Any] = field(default_factory=dict)  # the config's parameters for this setting
    oof_cost: float | None = None  # with decision costs: expected cost of the OOF predictions at their best threshold

    def mean(self, metric: str) -> float:
        return float(np.mean(self.fold_scores[metric]))

    def merit(self, metric: str) -> float:
        """Higher is better: the mean CV score, or minus the out-of-fold expected cost."""
        if metric == "expected_cost":
            assert self.oof_cost is not None
            return -self.oof_cost
        return self.mean(metric)

    def std(self, metric: str) -> float:
        return float(np.std(self.fold_scores[metric]))


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    objective: str  # "fixed", "max_f1" or "break_even" ("min_cost": runs before the break-even rule)
    reason: str
    oof_value: float | None = None  # the objective's value on the out-of-fold predictions


def build_candidates(
    config: Config,
) -> list[tuple[Candidate, list[ClassifierMixin], list[dict[str, Any]]]]:
    """Every candidate with each parameter setting it will try and that setting's estimator.

    Built before any data is read, so an unknown model, parameter or value fails at once as a
    config error naming the candidate.
    """
    seed = config.split.random_state
    built = []
    for candidate in config.candidates():
        where = f"{config.source}: {candidate.where}"
        settings = _settings(candidate, seed)
        for key in candidate.search.space if candidate.search else ():
            if key in candidate.params:
                raise ConfigError(f"{where}.search.space.{key} is also fixed in params; keep it in one place")
        built.append((candidate, [build_estimator(candidate.name, s, seed, where) for s in settings], settings))
    return built


def _settings(candidate: Candidate, seed: int) -> list[dict[str, Any]]:
    if candidate.search is None:
        return [dict(candidate.params)]
    space = {key: list(values) for key, values in candidate.search.space.items()}
    if candidate.search.method == "grid":
        grid = list(ParameterGrid(space))
    else:
        total = len(ParameterGrid(space))
        draws = min(candidate.search.settings_to_draw, total)
        grid = list(ParameterSampler(space, n_iter=draws, random_state=seed))
    return [dict(candidate.params) | setting for setting in grid]


def selection_sample(X: pd.DataFrame, y: pd.Series, rows: int | None, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """The training rows candidates are compared on: all of them, or (above `rows`) a stratified
    sample of `rows`. Comparing on a sample ranks the candidates as well as all rows do once
    the sample has tens of thousands of rows, at a fraction of the cost; the winner is then
    refit on every training row."""
    if rows is None or len(y) <= rows:
        return X, y
    X_sample, _, y_sample, _ = train_test_split(X, y, train_size=rows, stratify=y, random_state=seed)
    return X_sample, y_sample


def fold_splits(y: pd.Series, folds: int, seed: int, time_ordered: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds every candidate is scored on, so their scores compare fairly: stratified at
    random, or (rows in time order) forward-chaining: each fold trains on the rows before the
    ones it validates on, as the model will be used."""
    if time_ordered:
        return _forward_folds(y, folds)
    smallest = int(y.value_counts().min())
    if smallest < folds:
        raise DataError(
            f"training.cv_folds is {folds} but the smaller class has only {smallest} training row(s); "
            "lower training.cv_folds or add rows"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _forward_folds(y: pd.Series, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splits = list(TimeSeriesSplit(n_splits=folds).split(np.zeros(len(y))))
    values = y.to_numpy()
    for number, (_, validate) in enumerate(splits, start=1):
        if len(np.unique(values[validate])) < 2:
            raise DataError(
                f"forward-chaining fold {number} of {folds} validates on {len(validate)} rows of one class; "
                "lower training.cv_folds or add rows"
            )
    return splits


def validated_only(comparison: Comparison, validated: np.ndarray) -> Comparison:
    """The comparison with each setting's out-of-fold predictions on the validated rows only."""

    def trimmed(score: CandidateScore) -> CandidateScore:
        return replace(score, oof_probabilities=score.oof_probabilities[validated])

    return Comparison([trimmed(s) for s in comparison.best], [trimmed(s) for s in comparison.tried])


@dataclass(frozen=True)
class FoldResult:
    """One fold of one setting: its scores, fit time and validation probabilities."""

    scores: dict[str, float]
    fit_seconds: float
    probabilities: np.ndarray


def fit_fold(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y_values: np.ndarray,
    fit_rows: np.ndarray,
    val_rows: np.ndarray,
    f1_threshold: float,
) -> FoldResult:
    """Fit a clone on the fold's training part and score its validation part, on one OpenMP/BLAS
    thread: folds run side by side in processes, and OpenMP threads that spin on a busy machine
    cost far more than they give."""
    with threadpool_limits(limits=1):
        tick = time.perf_counter()
        fitted = clone(pipeline).fit(X.iloc[fit_rows], y_values[fit_rows])
        seconds = time.perf_counter() - tick
        probabilities = fitted.predict_proba(X.iloc[val_rows])[:, 1]
    truth = y_values[val_rows]
    scores = {
        "roc_auc": float(roc_auc_score(truth, probabilities)),
        "pr_auc": float(average_precision_score(truth, probabilities)),
        "f1": float(f1_score(truth, predict_labels(probabilities, f1_threshold), zero_division=0)),
    }
    return FoldResult(scores, seconds, probabilities)


PARALLEL_ROW_FITS = 200_000  # below this many rows x fits, starting processes costs more than it saves


def processes_for(fits: int, rows: int, n_jobs: int | None) -> int:
    """How many processes a comparison runs on: training.n_jobs when set, else the usable
    cores, except for a small comparison (the numbers are the same either way)."""
    if n_jobs is not None:
        return n_jobs
    return usable_cores() if fits * rows >= PARALLEL_ROW_FITS and fits >= 2 else 1


@dataclass(frozen=True)
class Folds:
    """The rows a comparison fits on, its CV splits, and the threshold its folds' F1 is taken at."""

    X: pd.DataFrame
    y: pd.Series
    splits: list[tuple[np.ndarray, np.ndarray]]
    f1_threshold: float


def fold_results(
    work: list[tuple[Pipeline, tuple[np.ndarray, np.ndarray]]], folds: Folds, n_jobs: int, on_cluster: bool = False
) -> Iterator[FoldResult]:
    """Each (pipeline, fold) of `work` fitted and scored, in order, on `n_jobs` processes
    (1: in this process), or with `on_cluster` on the workers of the Dask client in use. The
    results do not depend on where: every fit is seeded and runs on one thread wherever it runs."""
    y_values = folds.y.to_numpy()
    calls = [
        delayed(fit_fold)(pipeline, folds.X, y_values, fit_rows, val_rows, folds.f1_threshold)
        for pipeline, (fit_rows, val_rows) in work
    ]
    if on_cluster:  # joblib's Dask backend (fit_fold limits each fit to one thread on the worker)
        with parallel_config(backend="dask"):
            yield from Parallel(n_jobs=-1, return_as="generator")(calls)
        return
    if n_jobs == 1 or len(calls) == 1:
        for function, args, kwargs in calls:
            yield function(*args, **kwargs)
        return
    with parallel_config(backend="loky", inner_max_num_threads=1):
        yield from Parallel(n_jobs=min(n_jobs, len(calls)), return_as="generator")(calls)


def score_setting(
    pipeline: Pipeline,
    folds: Folds,
    name: str,
    label: str,
    results: Iterator[FoldResult] | None = None,
    started: float | None = None,
) -> CandidateScore:
    """Fit a clone on each fold's training part; score and keep its predictions on the rest
    (`results`: those fits already under way elsewhere, in fold order).

    Each fold logs the time elapsed since `started` (the comparison's start), so a long
    comparison shows how far along it is."""
    scores: dict[str, list[float]] = {metric: [] for metric in FOLD_METRICS}
    fit_seconds = []
    splits = folds.splits
    oof = np.full(len(folds.y), np.nan)
    started = time.perf_counter() if started is None else started
    if results is None:
        results = fold_results([(pipeline, split) for split in splits], folds, 1)
    # zip stops at the last split before taking a result: the rest of `results` is the next setting's
    for fold, ((_, val_rows), result) in enumerate(zip(splits, results, strict=False), start=1):
        oof[val_rows] = result.probabilities
        for metric in FOLD_METRICS:
            scores[metric].append(result.scores[metric])
        fit_seconds.append(result.fit_seconds)
        logger.info(
            "%s fold %d/%d: ROC AUC %.4f (fit %.1f s, elapsed %.1f s)",
            label,
            fold,
            len(splits),
            scores["roc_auc"][-1],
            fit_seconds[-1],
            time.perf_counter() - started,
        )
    params = pipeline.named_steps["classifier"].get_params()
    return CandidateScore(name, params, scores, fit_seconds, oof)


@dataclass(frozen=True)
class Comparison:
    """Every setting scored, and each candidate's best setting, best candidate first."""

    best: list[CandidateScore]
    tried: list[CandidateScore]


def compare_candidates(
    config: Config,
    make_pipeline: PipelineFactory,
    X: pd.DataFrame,
    y: pd.Series,
    f1_threshold: float,
    time_ordered: bool = False,
) -> Comparison:
    """Score every setting of every candidate on the same folds; rank each candidate's best.
    `time_ordered`: the rows are in time order, and the folds chain forward."""
    splits = fold_splits(y, config.training.cv_folds, config.split.random_state, time_ordered)
    folds = Folds(X, y, splits, f1_threshold)
    started = time.perf_counter()
    planned = [
        (candidate, [make_pipeline(e) for e in estimators], settings)
        for candidate, estimators, settings in build_candidates(config)
    ]
    work = [(pipeline, split) for _, pipelines, _ in planned for pipeline in pipelines for split in splits]
    with ExitStack() as cluster:
        fitted = _start_fits(config.training, work, folds, cluster)
        return _ranked(config, planned, folds, fitted, started)


def _start_fits(
    training: TrainingConfig,
    work: list[tuple[Pipeline, tuple[np.ndarray, np.ndarray]]],
    folds: Folds,
    cluster: ExitStack,
) -> Iterator[FoldResult]:
    """The comparison's fits under way: on local processes, or on a Dask cluster whose client
    `cluster` keeps open until the comparison is done."""
    splits = len(folds.splits)
    if training.engine == "dask":
        client = cluster.enter_context(
            dask_client(training.scheduler, training.n_jobs, 1, "--scheduler / training.scheduler")
        )
        workers = len(client.scheduler_info()["workers"])
        logger.info(
            "comparing %d settings on %d CV splits: %d fits on %d Dask worker(s), one thread each",
            len(work) // splits, splits, len(work), workers,
        )  # fmt: skip
        return fold_results(work, folds, workers, on_cluster=True)
    jobs = processes_for(len(work), len(folds.y), training.n_jobs)
    logger.info(
        "comparing %d settings on %d CV splits: %d fits on %d process(es), one thread each",
        len(work) // splits, splits, len(work), min(jobs, len(work)),
    )  # fmt: skip
    return fold_results(work, folds, jobs)


def _ranked(
    config: Config, planned: list[Any], folds: Folds, fitted: Iterator[FoldResult], started: float
) -> Comparison:
    """Each candidate's settings scored from the fits, in the order they were planned; the best
    of each, ranked."""
    metric, y = config.training.selection_metric, folds.y
    results, everything = [], []
    for candidate, pipelines, settings in planned:
        tried = []
        for index, (pipeline, setting) in enumerate(zip(pipelines, settings, strict=True), start=1):
            label = f"{candidate.name} [{index}/{len(pipelines)}]"
            score = score_setting(pipeline, folds, candidate.name, label, fitted, started)
            tried.append(replace(score, label=label, setting=setting, oof_cost=_oof_cost(y, score, config.decision)))
        best = max(tried, key=lambda score: score.merit(metric))  # first best wins a tie
        results.append(replace(best, settings_tried=len(tried)))
        everything += tried
        chosen = {key: best.params[key] for key in candidate.search.space} if candidate.search else {}
        value = f"{best.oof_cost:,.0f}" if metric == "expected_cost" else f"{best.mean(metric):.4f}"
        logger.info("%s: CV %s %s%s", candidate.name, metric, value, f" with {chosen}" if chosen else "")
    # sorted() is stable: on a tie the candidate listed first in the config wins.
    return Comparison(sorted(results, key=lambda score: -score.merit(metric)), everything)


def _oof_cost(y: pd.Series, score: CandidateScore, decision: DecisionConfig) -> float | None:
    """The expected cost of a setting's out-of-fold predictions at the threshold the threshold
    choice gives (None without decision costs)."""
    if not decision.has_costs or decision.per_customer:  # per-customer costs compare nothing on money
        return None
    validated = ~np.isnan(score.oof_probabilities)  # forward-chaining folds leave the earliest rows out
    choice = choose_threshold(y[validated], score.oof_probabilities[validated], "auto", decision)
    return choice.oof_value


def leaderboard(results: list[CandidateScore]) -> pd.DataFrame:
    """One row per candidate, best first: mean and std of each CV metric, fit time, settings tried."""
    rows = []
    for rank, result in enumerate(results, start=1):
        row: dict[str, Any] = {"rank": rank, "model": result.name}
        for metric in FOLD_METRICS:
            row[f"{metric}_mean"] = round(result.mean(metric), 4)
            row[f"{metric}_std"] = round(result.std(metric), 4)
        if result.oof_cost is not None:
            row["oof_expected_cost"] = round(result.oof_cost, 2)
        row["fit_seconds_mean"] = round(float(np.mean(result.fit_seconds)), 3)
        row["settings_tried"] = result.settings_tried
        row["selected"] = rank == 1
        rows.append(row)
    return pd.DataFrame(rows)


def choose_threshold(
    y: pd.Series,
    oof_probabilities: np.ndarray,
    setting: float | str,
    decision: DecisionConfig,
    money: Money | None = None,
) -> ThresholdChoice:
    """The decision threshold: as configured, or ("auto") the rule the costs give.

    With decision costs, "auto" is the break-even probability (`Costs.break_even`):
    churn_prediction is then exactly "the expected saving of contacting this customer is
    positive", the one contact rule of every door; its out-of-fold cost is recorded. Without
    costs it maximises F1 on the out-of-fold predictions over thresholds 0.01 ... 0.99 (on a
    tie the lowest). Only the training rows' out-of-fold predictions are used, never the test rows.

    With per-customer costs (`money`, row for row with `y`) each customer has their own
    break-even and `contact` follows it; "auto" is then the average training customer's
    break-even (nothing is tuned on the money), and the recorded out-of-fold cost is that of the
    contact rule.
    """
    if setting != "auto":
        return ThresholdChoice(float(setting), "fixed", f"set in the config (model.threshold: {setting})")
    if (costs := Costs.of(decision)) is not None and costs.per_customer:
        assert money is not None, "per-customer costs need each training customer's money"
        threshold = costs.average_break_even(money)
        contact = costs.savings(oof_probabilities, money) > 0
        contact_cost = costs.cost_of(contact, np.asarray(y, dtype="int64"), money)
        reason = (
            f"the average training customer's break-even probability (mean offer {money.offer_cost.mean():,.2f} / "
            f"(mean cost of churn {money.churn_cost.mean():,.2f} x {costs.offer_success_rate:g})); contact follows "
            "each customer's own"
        )
        return ThresholdChoice(threshold, "break_even", reason, contact_cost)
    if costs is not None:
        threshold, y_values = costs.break_even, np.asarray(y, dtype="int64")
        contacted = oof_probabilities >= threshold
        cost = costs.cost(int(contacted.sum()), int((contacted & (y_values == 1)).sum()), int(y_values.sum()))
        return ThresholdChoice(threshold, "break_even", _break_even_reason(costs), float(cost))
    curve = threshold_curve(y, oof_probabilities, decision)
    best = curve.loc[curve["f1"].idxmax()]
    reason = "maximises F1 on out-of-fold predictions of the training rows"
    return ThresholdChoice(float(best["threshold"]), "max_f1", reason, float(best["f1"]))


def _break_even_reason(costs: Costs) -> str:
    offer, churn, rate = costs.offer_cost, costs.churn_cost, costs.offer_success_rate
    return (
        f"break-even probability: the expected saving of an offer is positive above it (offer {offer:g} per "
        f"customer contacted, {churn:g} per churner lost, offer keeps {rate:.0%} of contacted churners: "
        f"{offer:g} / ({churn:g} x {rate:g}))"
    )
