"""What durable_ext does not run fails at once, saying why and what to use instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import durable_ext as df
from durable_ext.compatibility import UnsupportedFeatureError
from durable_ext.host.app_loader import AppLoadError, load_app


def orchestrator(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello")


def test_the_v1_model_orchestrator_fails_at_import_of_the_function() -> None:
    with pytest.raises(UnsupportedFeatureError, match="v1 programming model") as error:
        df.Orchestrator.create(orchestrator)
    assert "@app.orchestration_trigger" in str(error.value)
    with pytest.raises(UnsupportedFeatureError):
        df.Orchestrator(orchestrator)


def test_a_v1_app_folder_is_refused_by_the_host(tmp_path: Path) -> None:
    function = tmp_path / "HelloOrchestrator"
    function.mkdir()
    binding = {"name": "context", "type": "orchestrationTrigger", "direction": "in"}
    (function / "function.json").write_text(json.dumps({"bindings": [binding]}))
    (function / "__init__.py").write_text("main = None\n")
    with pytest.raises(AppLoadError, match="v1 programming model.*DFApp"):
        load_app(tmp_path)


def test_the_openai_agents_orchestrator_fails_at_registration() -> None:
    app = df.DFApp()
    with pytest.raises(UnsupportedFeatureError, match="OpenAI Agents.*call_activity"):

        @app.durable_openai_agent_orchestrator
        def agent(context: df.DurableOrchestrationContext) -> str:
            return "never"


def test_the_compatibility_warning_is_a_user_warning() -> None:
    assert issubclass(df.DurableFunctionsCompatibilityWarning, UserWarning)
