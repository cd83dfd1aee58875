import json
from pathlib import Path

import pytest

from roomsight.config import load_settings
from roomsight.errors import ConfigError


def test_defaults_live_under_home(tmp_path: Path):
    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.db_url == f"sqlite:///{tmp_path / 'roomsight.db'}"
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert s.artifact_root.startswith("file://") and str(tmp_path) in s.artifact_root


def test_a_tracking_server_keeps_the_artifacts_unless_a_root_is_configured(tmp_path: Path):
    """A folder in one node's home is on no other node (tests/test_remote_stores.py shows it end to end)."""
    def root(**env: str) -> str | None:
        return load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **env}).artifact_root

    assert root(ROOMSIGHT_MLFLOW_TRACKING_URI="https://mlflow.internal") is None
    assert root(ROOMSIGHT_MLFLOW_TRACKING_URI="https://mlflow.internal",
                ROOMSIGHT_MLFLOW_ARTIFACT_ROOT="s3://team-bucket/roomsight") == "s3://team-bucket/roomsight"
    # A database has no artifact store of its own: the home folder, unless a root is configured.
    assert root(ROOMSIGHT_MLFLOW_TRACKING_URI="postgresql+psycopg://u@db/mlflow").startswith("file://")


def test_file_then_env_override(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("serve:\n  port: 9000\n  max_batch_size: 4\nmodel_name: rooms\n")
    s = load_settings(cfg, environ={"ROOMSIGHT_SERVE__PORT": "9100", "ROOMSIGHT_HOME": str(tmp_path)})
    assert (s.serve.port, s.serve.max_batch_size, s.model_name) == (9100, 4, "rooms")


def test_home_config_file_is_found(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("database_url: postgresql://u:secret@db/rs\n")
    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path)})
    assert s.db_url == "postgresql://u:secret@db/rs"


@pytest.mark.parametrize("env,key", [
    ({"ROOMSIGHT_SERVE__PORT": "eighty"}, "serve.port"),
    ({"ROOMSIGHT_SERVE__PORT": "70000"}, "serve.port"),
    ({"ROOMSIGHT_SERVE__PROT": "8000"}, "serve.prot"),
    ({"ROOMSIGHT_LOG__BATCH_SIZE": "0"}, "log.batch_size"),
    ({"ROOMSIGHT_SERVE__SHADOW_BATCH_WAIT_S": "6"}, "serve.shadow_batch_wait_s"),  # not below shadow_max_wait_s
    ({"ROOMSIGHT_RAY__ADDRESS": "localhost"}, "ray.address"),  # Ray's own parse would fail later, as a traceback
    ({"ROOMSIGHT_RAY__ADDRESS": "head:port"}, "ray.address"),
    ({"ROOMSIGHT_RAY__ADDRESS": "ray://"}, "ray.address"),
    ({"ROOMSIGHT_RAY__NUM_CPUS": "0"}, "ray.num_cpus"),  # a local Ray that can run nothing
    ({"ROOMSIGHT_RAY__NUM_CPUS": "-2"}, "ray.num_cpus"),
    ({"ROOMSIGHT_RAY__NUM_CPUS": "nan"}, "ray.num_cpus"),
    ({"ROOMSIGHT_MODEL_NAME": "rooms/v2"}, "model_name"),  # models:/rooms/v2@champion is no model URI
    ({"ROOMSIGHT_MODEL_NAME": ""}, "model_name"),
])
def test_bad_value_names_the_key_and_env(tmp_path: Path, env, key):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **env})
    assert key in str(info.value)
    assert "ROOMSIGHT_" + key.replace(".", "__").upper() in str(info.value)


def test_the_tests_and_benchmarks_variables_are_not_taken_for_settings(tmp_path: Path):
    """`ROOMSIGHT_REAL_DATA` and its kind share the prefix; a shell that exports one for a benchmark must still
    load the settings, while a key that is neither a setting nor one of them is refused by name."""
    from roomsight.config import NOT_SETTINGS

    knobs = {name: "x" for name in NOT_SETTINGS - {"ROOMSIGHT_CONFIG"}}
    assert "ROOMSIGHT_REAL_DATA" in knobs
    assert load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **knobs}).home == tmp_path
    with pytest.raises(ConfigError, match="ROOMSIGHT_REAL_DATUM"):
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REAL_DATUM": "x"})


def test_every_variable_the_tests_and_benchmarks_read_is_passed_over() -> None:
    """A knob added to a test or a benchmark without its line in NOT_SETTINGS would make every CLI command
    fail in a shell that exported it."""
    import re

    from roomsight.config import NOT_SETTINGS

    root = Path(__file__).resolve().parents[1]
    read = re.compile(r"""(?:environ\.get\(|environ\[|getenv\()\s*["'](ROOMSIGHT_[A-Z0-9_]+)["']""")
    found = {m for folder in ("tests", "benchmarks") for f in (root / folder).rglob("*.py")
             for m in read.findall(f.read_text(encoding="utf-8"))}
    assert {"ROOMSIGHT_REAL_DATA", "ROOMSIGHT_FUZZ_EXAMPLES"} <= found  # the pattern sees the reads
    assert found <= NOT_SETTINGS, sorted(found - NOT_SETTINGS)


@pytest.mark.parametrize("url", ["postgres://u:hunter2@db/rs", "hunter2@db/rs"])
def test_unusable_database_url_fails_at_start_without_echoing_it(tmp_path: Path, url: str):
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_DATABASE_URL": url})
    assert "ROOMSIGHT_DATABASE_URL" in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize("address", ["auto", "head.internal:6379", "ray://head.internal", "ray://10.0.0.5:10001", "[::1]:6379"])
def test_ray_addresses_of_every_form_ray_takes_are_accepted(tmp_path: Path, address: str):
    assert load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_RAY__ADDRESS": address}).ray.address == address


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_ray_cluster_out_of_reach_is_said_in_seconds_naming_the_key(settings, scheme: str):
    """Ray itself retried for minutes (a GCS address) or ended in a traceback (ray://)."""
    import os
    import subprocess
    import sys

    from tests.conftest import free_port

    address = f"{scheme}127.0.0.1:{free_port()}"  # nothing listens
    out = subprocess.run([sys.executable, "-c", "from shell.cli import main; main()", "serve"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "ROOMSIGHT_HOME": str(settings.home),
                                                      "ROOMSIGHT_RAY__ADDRESS": address, "COLUMNS": "200"})
    assert out.returncode == 1, out.stderr[-2000:]
    assert f"cannot reach the Ray cluster at {address} (ray.address): connection refused" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_ray_runs_where_the_settings_say_whatever_ray_address_is_in_the_environment(settings):
    """With `ray.address` unset the Ray is local, as documented, and a RAY_ADDRESS in the shell is named in a
    warning: Ray read it itself, tried to join what it names and refused the local Ray's num_cpus there."""
    import os
    import subprocess
    import sys

    from tests.conftest import free_port

    code = ("import logging, ray; logging.basicConfig(); from roomsight.config import load_settings; "
            "from roomsight.cluster import init_ray; init_ray(load_settings()); "
            "print('CPUS', ray.cluster_resources().get('CPU')); ray.shutdown()")
    env = {k: v for k, v in os.environ.items() if k != "ROOMSIGHT_RAY__ADDRESS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         env={**env, "ROOMSIGHT_HOME": str(settings.home), "ROOMSIGHT_RAY__NUM_CPUS": "1",
                              "RAY_ADDRESS": f"127.0.0.1:{free_port()}"})  # nothing listens there
    assert out.returncode == 0, out.stderr[-3000:]
    assert "CPUS 1.0" in out.stdout
    assert "RAY_ADDRESS is set in the environment but ray.address is not: starting a local Ray" in out.stderr


def test_bad_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(bad, environ={})
    # A key written twice: YAML loaders keep the later silently, whichever the user meant.
    twice = tmp_path / "twice.yaml"
    twice.write_text("serve:\n  port: 8000\n  host: 0.0.0.0\n  port: 9000\n")
    with pytest.raises(ConfigError, match=r"(?s)twice.yaml is not valid YAML.*'port' is given twice.*line 4"):
        load_settings(twice, environ={})


def test_json_env_values_and_secrets_never_echoed(tmp_path: Path):
    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REVIEW__TOKENS": '{"ann": "s3cret-token"}',
                               "ROOMSIGHT_SMTP__RECIPIENTS": '["team@example.com"]', "ROOMSIGHT_SMTP__PASSWORD": "hunter2"})
    assert s.review.tokens == {"ann": "s3cret-token"} and s.smtp.recipients == ("team@example.com",)
    assert "hunter2" not in repr(s) and "s3cret-token" not in repr(s)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REVIEW__TOKENS": "not-json-s3cret"})
    assert "review.tokens" in str(info.value) and "s3cret" not in str(info.value)


def test_default_home_is_expanded(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = load_settings(environ={})
    assert s.home == tmp_path / ".roomsight"
    assert "secret" not in repr(load_settings(environ={"ROOMSIGHT_DATABASE_URL": "postgresql://u:secret@h/db"}))


def test_the_config_file_is_found_under_a_home_written_as_tilde(monkeypatch, tmp_path: Path):
    """ROOMSIGHT_CONFIG='~/rs.yaml' (quoted, or from a .env file) was looked for under a folder named `~`."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "rs.yaml").write_text("model_name: rooms\n")
    assert load_settings(environ={"ROOMSIGHT_CONFIG": "~/rs.yaml"}).model_name == "rooms"
    assert load_settings("~/rs.yaml", environ={}).model_name == "rooms"


def test_the_plan_setting_is_expanded_as_the_other_paths_are(monkeypatch, tmp_path: Path):
    """`plan: ~/plans/mine.yaml` was read as a folder named `~`: the plan was not found."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings(environ={"ROOMSIGHT_PLAN": "~/plans/mine.yaml"}).plan == tmp_path / "plans" / "mine.yaml"
    assert load_settings(environ={}).plan is None


def test_serve_replicas_that_ray_cannot_place_fail_at_start_naming_the_keys(tmp_path: Path):
    from serving.runner import check_fits

    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__MODEL_REPLICAS": "2"}).serve
    check_fits(s.model_copy(update={"model_cpus": 0.4}), 2.0)  # 0.25 + 4 x 0.4 = 1.85 fits
    with pytest.raises(ConfigError) as info:
        check_fits(s, 2.0)  # 0.25 + 4 x 0.5 = 2.25 does not
    assert "serve.model_replicas" in str(info.value) and "serve.model_cpus" in str(info.value)
    assert "2.25" in str(info.value)


def test_replica_resources_are_custom_and_must_exist_in_the_cluster(tmp_path: Path):
    from serving.runner import check_fits

    env = {"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__MODEL_RESOURCES": '{"models": 1}',
           "ROOMSIGHT_SERVE__INGRESS_RESOURCES": '{"edge": 0.5}', "ROOMSIGHT_SERVE__PROXY_LOCATION": "head_only"}
    s = load_settings(environ=env).serve
    assert s.model_resources == {"models": 1.0} and s.proxy_location == "head_only"
    check_fits(s, 2.0, {"CPU": 2.0, "models": 2.0, "edge": 1.0})
    with pytest.raises(ConfigError, match=r"serve.model_resources asks 2 replica\(s\) for 1 of resource 'models' each, "
                                          r"but the Ray cluster has 1"):
        check_fits(s, 2.0, {"CPU": 2.0, "models": 1.0, "edge": 1.0})
    with pytest.raises(ConfigError, match="serve.ingress_resources .* the Ray cluster has 0"):
        check_fits(s, 2.0, {"CPU": 2.0, "models": 2.0})
    for key, value, message in (("MODEL_RESOURCES", '{"CPU": 1}', "not a custom resource name"),
                                ("INGRESS_RESOURCES", '{"edge": 0}', "needs a positive amount"),
                                ("PROXY_LOCATION", "everywhere", "every_node")):
        with pytest.raises(ConfigError) as info:
            load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), f"ROOMSIGHT_SERVE__{key}": value})
        assert f"serve.{key.lower()}" in str(info.value) and message in str(info.value)


def test_drift_sampling_and_check_ages_are_validated(tmp_path: Path):
    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path)}).monitoring
    assert (s.drift_sample, s.drift_sample_seed, s.drift_check_every_s, s.drift_max_age_s) == (20_000, 0, 300, 900)
    for env, message in (({"ROOMSIGHT_MONITORING__DRIFT_SAMPLE": "10"}, "monitoring.drift_sample"),
                         ({"ROOMSIGHT_MONITORING__DRIFT_MAX_AGE_S": "60"}, "monitoring.drift_max_age_s")):
        with pytest.raises(ConfigError, match=message):
            load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **env})


def test_an_alarm_share_of_zero_is_refused_as_an_alarm_on_every_window(tmp_path: Path):
    """"At least 0" of the columns drifted, or of the window flagged, holds for every window: the guard would
    pause every rollout on a clean check."""
    for key in ("DRIFT_SHARE_ALARM", "OOD_SHARE_ALARM"):
        with pytest.raises(ConfigError, match=f"monitoring.{key.lower()}"):
            load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), f"ROOMSIGHT_MONITORING__{key}": "0"})


@pytest.mark.timeout(120)
def test_serve_refuses_at_start_an_app_the_local_ray_cannot_place(tmp_path: Path, ray_session, serve_port):
    from serving.runner import start_serve

    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__PORT": str(serve_port),
                               "ROOMSIGHT_SERVE__MODEL_REPLICAS": "2"})
    with pytest.raises(ConfigError, match="serve.model_replicas"):
        start_serve(s)  # 2.25 CPUs on the session's 2: Serve would wait for them without end


def test_serve_beside_a_listener_sharing_its_port_fails_before_ray_starts(tmp_path: Path, monkeypatch):
    """A second `rollout serve` in its own local Ray: the first's proxy listens with SO_REUSEPORT, as Ray
    Serve's does, so the second's proxy would bind beside it and take half the requests."""
    import socket

    import ray

    import serving.runner
    from serving.runner import start_serve

    def no_ray(_settings: object) -> None:
        raise AssertionError("Ray was started before the port was checked")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # whatever Ray other tests left in this process
    monkeypatch.setattr(serving.runner, "init_ray", no_ray)
    with socket.socket() as first:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        first.bind(("127.0.0.1", 0))
        first.listen()
        port = first.getsockname()[1]
        s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__PORT": str(port)})
        with pytest.raises(ConfigError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: .*serve\.port"):
            start_serve(s)
        # On a cluster the proxy is on its nodes, maybe not this one: Ray's bind is the check there.
        joined = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__PORT": str(port),
                                        "ROOMSIGHT_RAY__ADDRESS": "auto"})
        with pytest.raises(AssertionError, match="Ray was started"):
            start_serve(joined)


@pytest.mark.timeout(180)
def test_serve_on_a_taken_port_fails_at_start_naming_the_keys(tmp_path: Path, ray_session, serve_port):
    import socket

    from ray import serve

    from serving.runner import start_serve

    serve.shutdown()  # a running Serve keeps its own port and ignores the one asked for
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__PORT": str(taken.getsockname()[1])})
        try:
            with pytest.raises(ConfigError, match="serve.port"):
                start_serve(s)
        finally:
            serve.shutdown()  # the half-started proxy; the next test starts Serve on the session's port


def test_a_settle_window_shorter_than_twice_the_shadow_wait_is_refused_naming_both_keys(tmp_path: Path) -> None:
    """Shadow answers written more than half of review.settle_s after their request are marked late and
    left out of the review sample, so a shadow queue allowed to wait that long would empty the sample."""
    with pytest.raises(ConfigError, match=r"review.*settle_s \(8\).*serve.shadow_max_wait_s \(5\)"):
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REVIEW__SETTLE_S": "8"})
    # A shadow call may also run for its time-out once started: 5 s waiting and 10 s running come 15 s late.
    with pytest.raises(ConfigError, match=r"settle_s \(30\).*shadow_max_wait_s \(5\) \+ serve.shadow_timeout_s \(10\)"):
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REVIEW__SETTLE_S": "30"})
    assert load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_REVIEW__SETTLE_S": "31"}).review.settle_s == 31


@pytest.mark.parametrize("env, key, variable", [
    ({"ROOMSIGHT_NOTIFY__WEBHOOKS": '[{"url": "https://hooks.example.org/x"}, {"url": "ftp://hooks.example.org/y"}]'},
     "notify.webhooks.1.url", "ROOMSIGHT_NOTIFY__WEBHOOKS"),
    ({"ROOMSIGHT_SMTP__RECIPIENTS": '["team@example.org", 7]'}, "smtp.recipients.1", "ROOMSIGHT_SMTP__RECIPIENTS"),
])
def test_an_item_of_a_list_is_named_with_the_variable_that_holds_the_list(tmp_path: Path, env, key, variable):
    """A list comes whole, as JSON: ROOMSIGHT_NOTIFY__WEBHOOKS__1__URL, which the message named, sets nothing."""
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **env})
    assert f"{key} (env {variable})" in str(info.value)


@pytest.mark.parametrize("env, key, message", [
    ({"ROOMSIGHT_REVIEW__TOKENS": '{"ann": "same-s3cret", "bob": "same-s3cret"}'}, "review.tokens",
     "'ann' and 'bob' hold the same token"),
    ({"ROOMSIGHT_CONTROL__TOKENS": '{"ops": ""}'}, "control.tokens", "the token of 'ops' is empty"),
    ({"ROOMSIGHT_REVIEW__TOKENS": '{"ann": "s3cret-with-newline\\n"}'}, "review.tokens", "spaces around it"),
    # Read back from a header as Latin-1 and compared as UTF-8, it never matched.
    ({"ROOMSIGHT_CONTROL__TOKENS": json.dumps({"ops": "geheimnis-\u00fc"})}, "control.tokens", "other than printable ASCII"),
    # Stored with each claim and verdict, a longer name failed every claim on PostgreSQL (not on SQLite).
    ({"ROOMSIGHT_REVIEW__TOKENS": json.dumps({"a" * 65: "s3cret-token"})}, "review.tokens", "longer than 64 characters"),
    ({"ROOMSIGHT_CONTROL__TOKENS": '{"ops": "ops-s3cret"}', "ROOMSIGHT_CONTROL__SCRAPE_TOKENS": '{"prom": "ops-s3cret"}'},
     "control.scrape_tokens", "the token of 'prom' is also an operator's"),
])
def test_tokens_no_request_can_present_or_that_two_hold_are_refused(tmp_path: Path, env, key, message):
    """The header's token is stripped, and the holder of the last match is who acted: an empty or padded token
    let nobody in, one held twice recorded one person's verdicts under the other's name, and a scrape token
    that is an operator's could change a rollout from Prometheus's disk."""
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **env})
    assert key in str(info.value) and message in str(info.value)
    assert "s3cret" not in str(info.value)


def test_a_section_given_whole_and_a_key_of_it_both_apply_in_any_order(tmp_path: Path):
    """The environment's order decided: listed after the key's variable, the whole section dropped the key."""
    s = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__HOST": "0.0.0.0",
                               "ROOMSIGHT_SERVE": '{"port": 8080, "host": "127.0.0.2"}'})
    assert (s.serve.host, s.serve.port) == ("0.0.0.0", 8080)
    with pytest.raises(ConfigError, match=r"serve \(env ROOMSIGHT_SERVE\): not a mapping, but ROOMSIGHT_SERVE__PORT sets"):
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE": "x", "ROOMSIGHT_SERVE__PORT": "1"})


def test_a_bad_key_in_the_config_file_is_named_with_the_file_not_a_variable(tmp_path: Path):
    """A mistake in config.yaml was reported as `serve.port (env ROOMSIGHT_SERVE__PORT)`: a variable nobody set."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("serve:\n  port: 0\n  host: 127.0.0.1\nfoo: 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={"ROOMSIGHT_HOME": str(tmp_path)})
    said = str(info.value)
    assert f"serve.port (in {cfg}): " in said and f"foo (in {cfg}): " in said and "(env " not in said
    # A variable over the file's value is where the bad value came from.
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__PORT": "-1"})
    assert "serve.port (env ROOMSIGHT_SERVE__PORT): " in str(info.value)


@pytest.mark.parametrize("env, says", [
    ({"ROOMSIGHT_SERVE__PORTT": "8000"}, "serve.portt (env ROOMSIGHT_SERVE__PORTT): no such setting"),
    ({"ROOMSIGHT_SMTP__RECIPIENTS": "ops@example.org"}, "smtp.recipients (env ROOMSIGHT_SMTP__RECIPIENTS): should be a list"),
    ({"ROOMSIGHT_SERVE": "3"}, "serve (env ROOMSIGHT_SERVE): should be a mapping of its keys"),
    # A check of roomsight's own spoke with pydantic's prefix: "ray.address (env ...): Value error, expected 'auto', ...".
    ({"ROOMSIGHT_RAY__ADDRESS": "localhost"}, "ray.address (env ROOMSIGHT_RAY__ADDRESS): expected 'auto'"),
])
def test_a_wrong_shape_is_said_in_the_terms_of_yaml_and_json(tmp_path: Path, env, says):
    """pydantic's words reached the user: "Extra inputs are not permitted", "Input should be a valid tuple",
    "a valid dictionary or instance of ServeSettings"."""
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), **env})
    assert says in str(info.value), str(info.value)
    assert "Extra inputs" not in str(info.value) and "tuple" not in str(info.value) and "instance of" not in str(info.value)


@pytest.mark.parametrize("variable, key", [("ROOMSIGHT_HOME", "home"), ("ROOMSIGHT_PLAN", "plan")])
def test_an_empty_path_setting_is_refused_not_read_as_the_current_folder(tmp_path: Path, monkeypatch, variable, key):
    """ROOMSIGHT_HOME= (a variable set from an unset one) was Path(""): the current folder, where mlflow.db appeared."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path / "home"), variable: " "})
    assert f"{key} (env {variable}): is empty" in str(info.value), str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_variable_of_broken_json_says_so_without_its_value(tmp_path: Path):
    """ROOMSIGHT_CONTROL__TOKENS='{ops: s3cret}' was refused as "should be a mapping": it was one, in broken JSON."""
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_CONTROL__TOKENS": "{ops: s3cret}"})
    said = str(info.value)
    assert "control.tokens (env ROOMSIGHT_CONTROL__TOKENS): should be a mapping; the value is not valid JSON (" in said, said
    assert "s3cret" not in said
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SMTP__RECIPIENTS": '["a@example.org"'})
    assert "should be a list; the value is not valid JSON (" in str(info.value)


def test_a_file_that_is_not_yaml_is_refused_with_its_line_and_no_parser_internals(tmp_path: Path):
    """The message read 'in "<unicode string>", line 2, column 1': PyYAML's name for the text it was given."""
    bad = tmp_path / "c.yaml"
    bad.write_text("serve:\n  port: [8000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(bad, environ={"ROOMSIGHT_HOME": str(tmp_path)})
    said = str(info.value)
    assert f"config file {bad} is not valid YAML" in said and "at line 3" in said, said
    assert "<unicode string>" not in said


def test_a_toml_settings_file_is_refused_as_not_yaml(tmp_path: Path):
    """roomsight.toml was parsed as YAML: "expected '<document start>', but found '<scalar>'"."""
    toml = tmp_path / "roomsight.toml"
    toml.write_text('model_name = "rooms"\n[serve]\nport = 9000\n')
    with pytest.raises(ConfigError, match=r"roomsight.toml: settings are YAML .*not TOML"):
        load_settings(toml, environ={"ROOMSIGHT_HOME": str(tmp_path)})
