"""The utility report: what anonymization cost a model.

The same scikit-learn model is trained on the restricted source and on the masked table, on
the same sampled records split the same way, and each is scored on its own held-out records
(accuracy, and ROC AUC: binary, or one-vs-rest macro for more classes). A record suppressed
from the masked table is left out of both. This runs inside the pipeline's validate stage, as
the pipeline login, on the run's snapshot and candidate; only the metrics leave it (the
manifest, lineage, the UI), never a record or a model.

DP releases are aggregates, not records: no model trains on them, and the report says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from veilflow.policy.releases import UtilitySettings
from veilflow.privacy.erased import not_erased
from veilflow.validate.context import GateContext
from veilflow.zones.copy_io import read_frame
from veilflow.zones.run_tables import CANARY, ROW

log = logging.getLogger(__name__)

#: A categorical feature keeps its most frequent values up to this many (the rest: one
#: "infrequent" category): tokens of unique values cannot blow up the model.
MAX_CATEGORIES = 50


def _sample(
    conn: psycopg.Connection,
    table: sql.Composable,
    columns: list[str],
    step: int,
    keep: sql.Composable,
) -> pd.DataFrame:
    names = [ROW, *columns]
    frame = read_frame(
        conn,
        sql.SQL(
            "SELECT {cols} FROM {t} WHERE {canary} IS NOT TRUE AND {row} % {step} = 0 AND {keep}"
        ).format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in names),
            t=table,
            canary=sql.Identifier(CANARY),
            row=sql.Identifier(ROW),
            step=sql.Literal(step),
            keep=keep,
        ),
        names,
    )
    return frame.set_index(ROW).sort_index()


def _model(settings: UtilitySettings, numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "cat",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES),
                categorical,
            ),
        ]
    )
    clf = (
        LogisticRegression(max_iter=300)
        if settings.model == "logistic_regression"
        else RandomForestClassifier(n_estimators=100, random_state=settings.seed, n_jobs=1)
    )
    return Pipeline([("prep", prep), ("model", clf)])


def _features(
    frame: pd.DataFrame, features: list[str]
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Numeric columns as numbers, every other one as text (NULL a category of its own)."""
    out = pd.DataFrame(index=frame.index)
    numeric, categorical = [], []
    for c in features:
        as_number = pd.to_numeric(frame[c], errors="coerce")
        if frame[c].notna().sum() and as_number.notna().sum() == frame[c].notna().sum():
            out[c] = as_number.astype("float64")
            numeric.append(c)
        else:
            out[c] = frame[c].astype("object").where(frame[c].notna(), "<NULL>").astype(str)
            categorical.append(c)
    return out, numeric, categorical


def score(
    frame: pd.DataFrame, settings: UtilitySettings, train: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    """Train on ``train`` rows of ``frame``, score on ``test`` rows: accuracy and AUC."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    x, numeric, categorical = _features(frame, settings.features)
    y = frame[settings.target].astype("object").where(frame[settings.target].notna(), "<NULL>")
    y = y.astype(str)
    model = _model(settings, numeric, categorical)
    model.fit(x.iloc[train], y.iloc[train])
    predicted = model.predict(x.iloc[test])
    out: dict[str, Any] = {
        "accuracy": round(float(accuracy_score(y.iloc[test], predicted)), 4),
        "features": {"numeric": numeric, "categorical": categorical},
    }
    classes = list(model.classes_)
    proba = model.predict_proba(x.iloc[test])
    truth = y.iloc[test]
    try:
        if len(classes) == 2:
            out["auc"] = round(float(roc_auc_score(truth == classes[1], proba[:, 1])), 4)
        elif set(truth) == set(classes):
            out["auc"] = round(
                float(roc_auc_score(truth, proba, multi_class="ovr", labels=classes)), 4
            )
    except ValueError:  # a held-out split without every class: no AUC, accuracy stands
        pass
    return out


def utility_report(
    conn: psycopg.Connection, ctx: GateContext, settings: UtilitySettings
) -> dict[str, Any]:
    """Train and score on the source and on the masked candidate; metrics only. A failure
    is reported in the result (by its type), never fatal: the gate, not the report, decides
    what is published."""
    t0 = time.perf_counter()
    columns = [settings.target, *settings.features]
    step = max(1, -(-ctx.rows_in // settings.sample)) if settings.sample else 1
    try:
        keep = not_erased(conn, ctx.policy, ctx.tables)
        source = _sample(conn, ctx.tables.snapshot, columns, step, keep)
        masked = _sample(conn, ctx.tables.candidate, columns, step, keep)
        rows = source.index.intersection(masked.index)
        source, masked = source.loc[rows], masked.loc[rows]
        rng = np.random.default_rng(settings.seed)
        order = rng.permutation(len(rows))
        cut = round(len(rows) * (1 - settings.test_share))
        train, test = np.sort(order[:cut]), np.sort(order[cut:])
        if len(train) < 10 or len(test) < 10:
            raise ValueError("too few records to train and score")
        variants = {
            "source": score(source, settings, train, test),
            "masked": score(masked, settings, train, test),
        }
    except Exception as exc:  # the message could quote a value: keep its type only
        conn.rollback()
        log.warning("utility report failed: %s", type(exc).__name__)
        return {"error": type(exc).__name__, "target": settings.target}
    src, msk = variants["source"], variants["masked"]
    cost: dict[str, float] = {"accuracy": round(src["accuracy"] - msk["accuracy"], 4)}
    if "auc" in src and "auc" in msk:
        cost["auc"] = round(src["auc"] - msk["auc"], 4)
    return {
        "target": settings.target,
        "features": list(settings.features),
        "model": settings.model,
        "records": {"train": len(train), "test": len(test)},
        "variants": variants,
        "cost": cost,
        "not_scored": {"dp_releases": "aggregates, not records: no model trains on them"},
        "seconds": round(time.perf_counter() - t0, 3),
    }
