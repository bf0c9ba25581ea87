"""The survival stage of `train`: the hazard models compared by cross-validation on the training
rows, the best refitted, and judged on the test rows as survival models are.

The same split as the classifier (the test rows are never seen before they are scored), the same
cleaning and preprocessing, the hazard kinds among the candidates. The duration is the hazard
model's time axis, never a feature; `survival.leave_out` names the features that are functions of
it. Customers without a usable duration (missing or negative) are left out of the fit and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from churn.config import Config
from churn.model import build_estimator
from churn.parallel import usable_cores
from churn.preprocessing import FeatureCleaner, build_preprocessor
from churn.store.record import HazardCandidate, SurvivalMetrics, SurvivalRecord
from churn.survival import metrics
from churn.survival.hazard import HazardModel
from churn.training.selection import selection_sample
from churn.training.stages import Split

logger = logging.getLogger(__name__)

DECILES = 10
RISK_GROUPS = ("low", "medium", "high")  # thirds of the test rows by predicted churn within the last horizon


@dataclass(frozen=True)
class Durations:
    """Training or test rows with a usable duration: features, whole months stayed, churn."""

    X: pd.DataFrame
    months: np.ndarray
    events: np.ndarray
    skipped: int

    @classmethod
    def of(cls, X: pd.DataFrame, y: pd.Series, column: str) -> Durations:
        values = X[column].to_numpy("float64")
        usable = np.isfinite(values) & (values >= 0)
        return cls(X[usable], np.floor(values[usable]).astype("int64"), y.to_numpy()[usable], int((~usable).sum()))

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        return self.months, self.events


@dataclass(frozen=True)
class SurvivalFit:
    """The fitted hazard model, its record, and the test rows' tables the report draws."""

    model: HazardModel
    record: SurvivalRecord
    deciles: pd.DataFrame  # decile, customers, predicted, observed (churn within the last horizon)
    curves: pd.DataFrame  # month, group, predicted, kaplan_meier


def hazard_features(config: Config) -> tuple[list[str], list[str]]:
    """The hazard model's numeric and categorical features: the classifier's, less the duration
    and the columns left out."""
    out = {config.survival.duration_column, *config.survival.leave_out}
    numeric = [c for c in config.data.numeric_features if c not in out]
    return numeric, [c for c in config.data.categorical_features if c not in out]


def make_hazard_model(config: Config, kind: str) -> HazardModel:
    """An unfitted hazard model of this kind: the run's cleaning and preprocessing on the hazard
    features, and the classifier with the first candidate of the same kind's fixed params."""
    numeric, categorical = hazard_features(config)
    data, options = config.data, config.preprocessing
    cleaner = FeatureCleaner(tuple(numeric), tuple(categorical), data.max_unparsed_share, data.missing_values)
    fills = {c: v for c, v in options.fill_values.items() if c in numeric}
    preprocessor = build_preprocessor(
        numeric, categorical, options.numeric_impute, fills, options.scale_numeric, options.min_category_count
    )
    features = Pipeline([("clean", cleaner), ("preprocess", preprocessor)])
    params = next((dict(c.params) for c in config.candidates() if c.name == kind), {})
    params.pop("n_jobs", None)
    classifier = build_estimator(kind, params, config.split.random_state, "survival.models")
    assert config.survival.duration_column is not None
    return HazardModel(features, classifier, config.survival.duration_column, config.survival.horizons)


def train_survival(config: Config, split: Split) -> SurvivalFit:
    """Compare the hazard kinds by cross-validated integrated Brier score on (a sample of) the
    training customers, refit the best on them, and judge it on the test rows."""
    survival = config.survival
    assert survival.duration_column is not None
    train = Durations.of(split.X_train, split.y_train, survival.duration_column)
    if train.skipped:
        logger.warning(
            "survival: %d training row(s) without a usable %s left out", train.skipped, survival.duration_column
        )
    fit_on = _sample(train, survival.max_customers, config.split.random_state)
    tau = max(int(np.quantile(fit_on.months, 0.8)), 1)
    with threadpool_limits(limits=usable_cores()):
        kinds = config.hazard_models()
        compared = [_cross_validate(config, kind, fit_on, tau) for kind in kinds] if len(kinds) > 1 else []
        chosen = min(compared, key=lambda c: c.cv_ibs).name if compared else kinds[0]  # one kind: nothing to choose
        logger.info("survival: %s", chosen)
        model = make_hazard_model(config, chosen).fit(fit_on.X, fit_on.months, fit_on.events)
        test = Durations.of(split.X_test, split.y_test, survival.duration_column)
        scores, deciles, curves = judge(model, train, test, tau, survival.longest)
    numeric, categorical = hazard_features(config)
    record = SurvivalRecord(
        duration_column=survival.duration_column,
        horizons=survival.horizons,
        left_out=dict(survival.leave_out),
        features=(*numeric, *categorical),
        model=chosen,
        params={k: v for k, v in model.classifier.get_params().items() if _plain(v)},
        compared=compared,
        fitted_on_customers=len(fit_on.months),
        sampled=len(fit_on.months) < len(train.months),
        skipped_customers=train.skipped,
        max_month=model.max_month_,
        metrics=scores,
    )
    return SurvivalFit(model, record, deciles, curves)


def _sample(rows: Durations, limit: int, seed: int) -> Durations:
    if len(rows.months) <= limit:
        return rows
    frame = rows.X.assign(__months=rows.months)
    X, y = selection_sample(frame, pd.Series(rows.events, index=frame.index), limit, seed)
    logger.info("survival: fitting on a stratified sample of %s of %s customers", f"{limit:,}", f"{len(rows.months):,}")
    return Durations(X.drop(columns="__months"), X["__months"].to_numpy(), y.to_numpy(), rows.skipped)


def _cross_validate(config: Config, kind: str, rows: Durations, tau: int) -> HazardCandidate:
    folds = StratifiedKFold(config.survival.cv_folds, shuffle=True, random_state=config.split.random_state)
    months = np.arange(1, tau + 1)
    ibs, concordance = [], []
    for fit_rows, held in folds.split(rows.X, rows.events):
        fitted = make_hazard_model(config, kind).fit(
            rows.X.iloc[fit_rows], rows.months[fit_rows], rows.events[fit_rows]
        )
        curves = fitted.survival(rows.X.iloc[held], fitted.max_month_)
        known = (rows.months[fit_rows], rows.events[fit_rows])
        held_pair = (rows.months[held], rows.events[held])
        ibs.append(metrics.integrated_brier(known, held_pair, curves[:, :tau], months))
        concordance.append(metrics.concordance(*held_pair, _risk(curves)))
    return HazardCandidate(name=kind, cv_ibs=float(np.mean(ibs)), cv_concordance=float(np.mean(concordance)))


def _risk(curves: np.ndarray) -> np.ndarray:
    """The cumulative hazard at the last month: the ranking the concordances judge."""
    return -np.log(np.clip(curves[:, -1], 1e-300, None))


def judge(
    model: HazardModel, train: Durations, test: Durations, tau: int, horizon: int
) -> tuple[SurvivalMetrics, pd.DataFrame, pd.DataFrame]:
    """The test rows' concordances, integrated Brier score against Kaplan-Meier's, calibration of
    churn within `horizon` months by decile, and survival curves per risk group."""
    curves = model.survival(test.X, model.max_month_)
    months = np.arange(1, tau + 1)
    kaplan_meier = metrics.kaplan_meier(*train.pair)
    baseline = np.tile(kaplan_meier(months), (len(test.months), 1))
    within = 1.0 - curves[:, min(horizon, model.max_month_) - 1]
    deciles = calibration_by_decile(within, test.months, test.events, horizon)
    scores = SurvivalMetrics(
        rows=len(test.months),
        harrell_c=metrics.concordance(*test.pair, _risk(curves)),
        uno_c=metrics.uno_concordance(train.pair, test.pair, _risk(curves), tau),
        ibs=metrics.integrated_brier(train.pair, test.pair, curves[:, :tau], months),
        kaplan_meier_ibs=metrics.integrated_brier(train.pair, test.pair, baseline, months),
        tau=tau,
        worst_decile_gap=float((deciles["predicted"] - deciles["observed"]).abs().max()),
    )
    return scores, deciles, curves_by_group(curves, within, test.months, test.events)


def calibration_by_decile(predicted: np.ndarray, months: np.ndarray, events: np.ndarray, horizon: int) -> pd.DataFrame:
    """Per decile of predicted churn within `horizon` months: its mean, and the Kaplan-Meier
    estimate of churn within `horizon` months of the customers in it."""
    order = np.argsort(predicted, kind="stable")
    rows = []
    for decile, members in enumerate(np.array_split(order, DECILES), start=1):
        observed = 1.0 - float(metrics.kaplan_meier(months[members], events[members])(float(horizon)))
        rows.append({"decile": decile, "customers": len(members), "predicted": float(predicted[members].mean()),
                     "observed": observed})  # fmt: skip
    return pd.DataFrame(rows)


def curves_by_group(curves: np.ndarray, within: np.ndarray, months: np.ndarray, events: np.ndarray) -> pd.DataFrame:
    """Per third of the test rows by predicted risk: the mean predicted survival from joining,
    and the Kaplan-Meier estimate of the same customers, months 0 ... the last."""
    order = np.argsort(within, kind="stable")
    every = np.arange(0, curves.shape[1] + 1)
    parts = []
    for group, members in zip(RISK_GROUPS, np.array_split(order, len(RISK_GROUPS)), strict=True):
        predicted = np.concatenate([[1.0], curves[members].mean(axis=0)])
        observed = metrics.kaplan_meier(months[members], events[members])(every.astype("float64"))
        parts.append(pd.DataFrame({"month": every, "group": group, "predicted": predicted, "kaplan_meier": observed}))
    return pd.concat(parts, ignore_index=True)


def _plain(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
