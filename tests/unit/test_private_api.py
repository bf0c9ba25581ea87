"""Every private attribute churn touches in another package, checked to exist in the installed
release: a new release that drops one fails here, by name, not in a customer's service. The
packages are capped below their next minor release (pyproject.toml, requirements.in)."""

import argparse
import importlib
import inspect
import re
import tomllib

import numpy as np
import pytest
from support import REPO

# uvicorn: the service's protocol (read timeouts, JSON errors, shutdown grace) and server (signals)
UVICORN_PROTOCOL_METHODS = ("connection_made", "connection_lost", "on_message_begin", "on_headers_complete",
                            "on_message_complete", "send_400_response", "shutdown")  # fmt: skip
UVICORN_PROTOCOL_STATE = ("self.connections", "self.cycle", "self.scope", "self.transport", "self.loop")
UVICORN_CYCLE_STATE = ("self.keep_alive", "self.response_complete", "self.disconnected", "self.message_event")
# tracking.SKOPS_TRUSTED: type names skops is told to rebuild
SKOPS_TYPES = ("sklearn.tree._tree.Tree", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
HIST_NODE_FIELDS = ("feature_idx", "num_threshold", "left", "right", "is_leaf", "value", "count",
                    "missing_go_to_left", "is_categorical")  # fmt: skip


def test_uvicorns_protocol_has_what_the_guarded_protocol_overrides_and_reads():
    from uvicorn.protocols.http import httptools_impl

    assert 503 in httptools_impl.STATUS_LINE and 408 in httptools_impl.STATUS_LINE
    protocol = httptools_impl.HttpToolsProtocol
    for name in UVICORN_PROTOCOL_METHODS:
        assert callable(getattr(protocol, name, None)), name
    setup = inspect.getsource(protocol.__init__) + inspect.getsource(protocol.connection_made)
    cycle = inspect.getsource(httptools_impl.RequestResponseCycle.__init__)
    for attributes, source in ((UVICORN_PROTOCOL_STATE, setup), (UVICORN_CYCLE_STATE, cycle)):
        for attribute in attributes:  # assigned, annotated or not
            assert re.search(rf"{re.escape(attribute)}\b[^=\n]*=", source), attribute


def test_uvicorns_server_has_what_the_service_overrides():
    import uvicorn

    assert inspect.isfunction(uvicorn.Server.capture_signals) and callable(uvicorn.Server.handle_exit)
    assert inspect.iscoroutinefunction(uvicorn.Server.shutdown)
    setup = inspect.getsource(uvicorn.Server.__init__)
    assert "self.server_state =" in setup and "self.config =" in setup
    assert "limit_concurrency" in inspect.signature(uvicorn.Config).parameters  # public, but the bound rests on it
    assert hasattr(uvicorn.Config, "http_protocol_class") or "http_protocol_class" in inspect.getsource(uvicorn.Config)


def test_fitted_boosting_has_the_predictors_treeshap_reads():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    model = HistGradientBoostingClassifier(max_iter=3, max_depth=2).fit(X, y)
    assert np.ravel(model._baseline_prediction).shape == (1,)
    nodes = model._predictors[0][0].nodes
    assert set(HIST_NODE_FIELDS) <= set(nodes.dtype.names)


def test_fitted_classic_boosting_has_the_initial_prediction_the_tree_scorer_starts_from():
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), (rng.random(200) < 0.3).astype(int)
    model = GradientBoostingClassifier(n_estimators=3, max_depth=2).fit(X, y)
    start = model._raw_predict_init(np.zeros((1, 3), dtype="float32"))
    assert start.shape == (1, 1) and start[0, 0] == pytest.approx(np.log(y.mean() / (1 - y.mean())))


@pytest.mark.parametrize("name", SKOPS_TYPES)
def test_the_tree_types_named_for_skops_exist(name):
    module, _, type_name = name.rpartition(".")
    assert isinstance(getattr(importlib.import_module(module), type_name), type)


def test_argparse_has_what_the_typo_check_reads():
    parser = argparse.ArgumentParser()
    parser.add_subparsers()
    assert any(isinstance(action, argparse._SubParsersAction) for action in parser._actions)


def test_the_packages_whose_private_api_churn_touches_are_capped_below_their_next_minor():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = (REPO / "requirements.in").read_text().splitlines()
    for package in ("scikit-learn", "uvicorn"):
        for listed in (project, runtime):
            (spec,) = [line for line in listed if line.startswith(f"{package}>=")]
            assert ",<" in spec, spec
