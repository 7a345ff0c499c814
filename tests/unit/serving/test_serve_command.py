"""``shipyard serve``: which deployment it serves (SOURCE, --config, --deployment), its flags, how it starts
uvicorn, and its clean errors."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from serving_harness import served
from typer.testing import CliRunner

import shipyard.serving
from shipyard.cli.main import app as cli_app
from shipyard.cli.serve_model import resolve_model_source
from shipyard.config import load_settings
from shipyard.errors import ConfigError, InvalidInput, UnsafeModel
from shipyard.registry.flavors import save_model_dir
from shipyard.serving import ServeOptions, create_deployment_app, single_model_deployment
from shipyard.serving import app as serving_app
from shipyard.serving.app import DEPLOYMENT_ENV, deployment_app_from_env, serve_deployment
from shipyard.serving.deployment import DeploymentSpec


def test_a_model_directory_is_served_as_is(classifier_dir: Path) -> None:
    assert resolve_model_source(str(classifier_dir), load_settings()) == classifier_dir


def test_a_packaged_context_serves_its_model_folder(classifier_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(classifier_dir, tmp_path / "model")
    assert resolve_model_source(str(tmp_path), load_settings()) == tmp_path / "model"


def test_registry_references_go_through_the_registry_not_the_filesystem() -> None:
    with pytest.raises(InvalidInput, match="registry reference"):
        resolve_model_source("models:/churn@prod", load_settings())


def test_a_missing_or_wrong_source_names_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a directory"):
        resolve_model_source(str(tmp_path / "nope"), load_settings())
    with pytest.raises(InvalidInput, match="shipyard-model.yaml"):
        resolve_model_source(str(tmp_path), load_settings())


Call = tuple[DeploymentSpec, ServeOptions, dict[str, Any]]


def capture_serve(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """What ``shipyard serve`` hands ``serve_deployment`` (which is not run)."""
    calls: list[Call] = []

    def fake(spec: DeploymentSpec, options: ServeOptions, **kw: Any) -> None:
        calls.append((spec, options, kw))

    monkeypatch.setattr("shipyard.serving.app.serve_deployment", fake)
    return calls


def capture_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What ``serve_deployment`` hands ``uvicorn.run``, or ``run_workers`` with several workers (neither
    is run)."""
    runs: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(serving_app.uvicorn, "run", lambda app, **kw: runs.append((app, kw)))
    monkeypatch.setattr(
        serving_app, "run_workers", lambda app, workers, **kw: runs.append((app, {**kw, "workers": workers}))
    )
    return runs


def test_the_command_serves_the_resolved_directory(
    classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = capture_serve(monkeypatch)
    shutil.copytree(classifier_dir, tmp_path / "model")
    args = ["serve", str(tmp_path), "--port", "9123", "--workers", "3", "--host", "0.0.0.0"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    spec, options, kw = calls[0]
    assert [v.model for v in spec.variants] == [str(tmp_path / "model")]
    assert options == ServeOptions(host="0.0.0.0", port=9123, workers=3)  # the rest: the SDK's defaults
    assert kw["client"] is None  # a folder needs no store
    assert kw["settings"].home == str(tmp_path / "home")  # the CLI's settings (SHIPYARD_HOME of the test)


def test_the_command_and_the_sdk_share_their_defaults(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = capture_serve(monkeypatch)
    result = CliRunner().invoke(cli_app, ["serve", str(classifier_dir)])
    assert result.exit_code == 0, result.output
    assert calls[0][1] == ServeOptions()
    assert ServeOptions().access_log is False  # off in both: it costs throughput


def test_a_packaged_model_answers_under_the_reference_its_image_sets(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = capture_serve(monkeypatch)
    monkeypatch.setenv("SHIPYARD_SERVE_MODEL_REF", "models:/flights@prod")  # the Dockerfile's ENV line
    result = CliRunner().invoke(cli_app, ["serve", str(classifier_dir)])
    assert result.exit_code == 0, result.output
    spec, options, _ = calls[0]
    assert spec.name == "flights" and options.labels == {str(classifier_dir): "models:/flights@prod"}


def test_batching_logging_and_polling_flags_become_overrides(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = capture_serve(monkeypatch)
    args = ["serve", str(classifier_dir), "--batch-size", "128", "--batch-wait-ms", "0.5"]
    result = CliRunner().invoke(cli_app, [*args, "--no-prediction-log", "--poll-interval", "0.25"])
    assert result.exit_code == 0, result.output
    assert calls[0][1].overrides == {
        "batching": {"max_batch_size": 128, "max_wait_ms": 0.5},
        "prediction_log": {"enabled": False},
        "reload": {"poll_interval_s": 0.25},
    }
    result = CliRunner().invoke(cli_app, ["serve", str(classifier_dir), "--no-batching"])
    assert calls[1][1].overrides == {"batching": {"enabled": False}}


def test_a_deployment_file_is_served_with_its_variants(
    classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = capture_serve(monkeypatch)
    config = tmp_path / "deployment.yaml"
    config.write_text(
        f"name: flights\nvariants:\n  - {{name: a, model: '{classifier_dir}', weight: 90}}\n"
        f"  - {{name: b, model: '{classifier_dir}', weight: 10, mode: canary}}\n"
    )
    result = CliRunner().invoke(cli_app, ["serve", "--config", str(config)])
    assert result.exit_code == 0, result.output
    spec, options, kw = calls[0]
    assert spec.name == "flights" and spec.shares() == {"a": 0.9, "b": 0.1}
    assert kw["client"] is None and options.stored is None and options.labels == {}


@pytest.mark.parametrize("args", [[], ["models:/churn@prod", "--deployment", "churn"]])
def test_exactly_one_source_is_required(args: list[str]) -> None:
    result = CliRunner().invoke(cli_app, ["serve", *args])
    assert result.exit_code == 1
    assert "exactly one of SOURCE" in result.stderr


def test_a_bad_source_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "models:/churn@prod"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Registered model 'churn' not found")
    assert "Traceback" not in result.output


def test_a_bad_log_level_is_one_error_line_naming_the_levels(classifier_dir: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", str(classifier_dir), "--log-level", "loud"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Serve option log_level='loud' is not a log level")
    assert "critical, error, warning, info, debug, trace" in result.stderr
    assert "Traceback" not in result.output


def test_one_worker_serves_the_model_loaded_up_front(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = capture_uvicorn(monkeypatch)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))  # not this test process's heap
    frozen: list[bool] = []
    serve_deployment(single_model_deployment(str(classifier_dir)), ServeOptions(port=9000))
    app, options = runs[0]
    assert isinstance(app, FastAPI)
    assert app.state.engine.ready()  # loaded before uvicorn starts
    assert frozen == [True]  # then kept out of the garbage collector's full walks
    assert served(app).ref == str(classifier_dir)
    assert len(served(app).version) == 12  # the model file's digest prefix
    assert options["port"] == 9000 and "workers" not in options


def test_an_unsafe_model_fails_before_the_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Doubler:
        def predict(self, frame: Any) -> Any:
            return frame["x"] * 2

    save_model_dir(Doubler(), tmp_path / "pyfunc", input_example={"x": [1.0]})
    monkeypatch.setattr(serving_app.uvicorn, "run", lambda *a, **kw: pytest.fail("server started"))
    with pytest.raises(UnsafeModel):
        serve_deployment(single_model_deployment(str(tmp_path / "pyfunc")))


def test_a_registry_reference_is_served_as_a_followed_variant(
    classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.registry import core
    from shipyard.registry.flavors import load_model_dir
    from shipyard.tracking import Client

    monkeypatch.setenv("SHIPYARD_TRACKING_URI", f"sqlite:///{tmp_path / 'reg.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", str(tmp_path / "artifacts"))
    client = Client()
    loaded = load_model_dir(classifier_dir)
    mv = core.register_model(loaded.raw, "churn", signature=loaded.signature, client=client)
    client.store.set_model_alias("churn", "prod", mv.version, "alice")
    client.close()
    calls = capture_serve(monkeypatch)
    result = CliRunner().invoke(cli_app, ["serve", "models:/churn@prod"])
    assert result.exit_code == 0, result.output
    spec, _, kw = calls[0]
    assert spec.name == "churn"
    assert [v.model for v in spec.variants] == ["models:/churn@prod"]
    assert kw["client"] is not None


def test_a_stored_deployment_is_served_and_followed_by_name(
    classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.serving.manage import deploy
    from shipyard.tracking import Client

    monkeypatch.setenv("SHIPYARD_TRACKING_URI", f"sqlite:///{tmp_path / 'reg.db'}")
    monkeypatch.setenv("SHIPYARD_ARTIFACT_URI", str(tmp_path / "artifacts"))
    client = Client()
    deploy(single_model_deployment(str(classifier_dir), name="stored-one"), client=client)
    client.close()
    calls = capture_serve(monkeypatch)
    result = CliRunner().invoke(cli_app, ["serve", "--deployment", "stored-one"])
    assert result.exit_code == 0, result.output
    spec, options, kw = calls[0]
    assert spec.name == "stored-one" and [v.model for v in spec.variants] == [str(classifier_dir)]
    assert options.stored == "stored-one" and kw["client"] is not None


def test_the_access_log_is_off_unless_asked_for(
    classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = capture_serve(monkeypatch)
    result = CliRunner().invoke(cli_app, ["serve", str(classifier_dir), "--access-log"])
    assert result.exit_code == 0, result.output
    assert calls[0][1].access_log is True


def test_serve_deployment_logs_requests_only_when_asked(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = capture_uvicorn(monkeypatch)
    spec = single_model_deployment(str(classifier_dir), name="flights")
    serve_deployment(spec)
    serve_deployment(spec, ServeOptions(access_log=True))
    assert runs[0][1]["access_log"] is False  # the library default is the command's: off
    assert runs[1][1]["access_log"] is True


def test_several_workers_build_the_deployment_from_the_environment(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = capture_uvicorn(monkeypatch)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # not this test process's heap
    monkeypatch.setenv(DEPLOYMENT_ENV, "")  # serve_deployment sets it; monkeypatch removes it afterwards
    spec = single_model_deployment(str(classifier_dir), name="flights")
    options = ServeOptions(
        overrides={"batching": {"max_batch_size": 256}},
        labels={str(classifier_dir): "models:/flights@prod"},
        workers=2,
        port=9001,
    )
    serve_deployment(spec, options)
    target, run = runs[0]
    assert target == "shipyard.serving.app:deployment_app_from_env"
    assert run["factory"] is True and run["workers"] == 2 and run["port"] == 9001
    worker_app = deployment_app_from_env()
    engine = worker_app.state.engine
    assert engine.plan.spec.name == "flights" and engine.plan.spec.batching.max_batch_size == 256
    assert engine.ready()  # each worker loads its own copy before uvicorn serves it
    assert served(worker_app).ref == "models:/flights@prod"  # the labels reach the workers too


def test_the_deployment_factory_without_its_variable_says_how_to_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DEPLOYMENT_ENV, raising=False)
    with pytest.raises(ConfigError, match="shipyard serve --config"):
        deployment_app_from_env()


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"options": {}}'])
def test_the_deployment_factory_refuses_a_garbled_variable_with_a_config_error(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEPLOYMENT_ENV, text)
    with pytest.raises(ConfigError, match="SHIPYARD_SERVE_DEPLOYMENT does not hold a deployment"):
        deployment_app_from_env()


# -- the options object and the old keywords ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log_level": "loud"}, "log_level='loud' is not a log level"),
        ({"port": 70000}, "port=70000 is not a TCP port"),
        ({"workers": 0}, "workers=0 must be at least 1"),
        ({"max_request_bytes": 0}, "max_request_bytes=0 must be positive"),
    ],
)
def test_serve_options_refuse_values_that_cannot_work(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        ServeOptions(**options)


def test_serve_options_travel_as_json_and_refuse_unknown_keys() -> None:
    options = ServeOptions(stored="churn", overrides={"batching": {"enabled": False}}, labels={"/m": "x"})
    assert ServeOptions.from_json(json.loads(json.dumps(options.to_json()))) == options
    with pytest.raises(InvalidInput, match="Unknown serve option.*colour"):
        ServeOptions.from_json({"colour": "blue"})


def test_the_old_keywords_still_work_with_a_deprecation_warning(
    classifier_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = capture_uvicorn(monkeypatch)
    spec = single_model_deployment(str(classifier_dir))
    with pytest.warns(DeprecationWarning, match=r"serve_deployment\(access_log=, port=\) is deprecated"):
        serve_deployment(spec, client=None, port=9002, access_log=True)
    assert (runs[0][1]["port"], runs[0][1]["access_log"]) == (9002, True)
    with pytest.warns(DeprecationWarning, match="options=ServeOptions"):
        app = create_deployment_app(spec, labels={str(classifier_dir): "churn"})
    app.state.engine.preload()
    assert served(app).ref == "churn"
    with pytest.raises(TypeError, match="unexpected keyword argument.*example_model"):
        create_deployment_app(spec, example_model=None)


@pytest.mark.parametrize("name", ["create_model_app", "serve_model", "app_from_env"])
def test_the_removed_single_model_path_names_its_replacement(name: str) -> None:
    with pytest.raises(AttributeError, match="one-variant deployment"):
        getattr(shipyard.serving, name)
