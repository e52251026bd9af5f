"""Command builds: real processes started from a template, sampled, crashed, torn down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from builds_helpers import MASTER_KEY, assert_all_gone, command_template

from observatory.builds.command import render_command
from observatory.builds.provision import start_gateway
from observatory.builds.sampler import ResourceSampler
from observatory.domain import ProvisionKind, ResourceSample
from observatory.errors import BuildError, ConfigError, InputError
from observatory.settings import Settings, load_settings

UPSTREAM = "http://127.0.0.1:9"  # never contacted by the fake gateway

Make = Callable[..., Settings]


def _start(settings: Settings, run_dir: Path):  # type: ignore[no-untyped-def]
    build = settings.build("b")
    return start_gateway(build, settings.gateways[build.gateway], settings, UPSTREAM, run_dir)


def test_command_build_starts_is_sampled_and_leaves_nothing_behind(
    make_settings: Make, tmp_path: Path
) -> None:
    settings = make_settings(command=command_template("--spawn-child", "--ignore-term"))
    samples: list[ResourceSample] = []
    gateway = _start(settings, tmp_path / "run")
    try:
        assert gateway.kind is ProvisionKind.COMMAND
        assert gateway.pid is not None
        tree = [gateway.pid, *(p.pid for p in psutil.Process(gateway.pid).children(True))]
        assert len(tree) == 2, "the fake gateway spawns one grandchild"
        with ResourceSampler(samples.append, interval=0.3) as sampler:
            sampler.add(gateway.resource_probe())
            deadline = time.monotonic() + 10
            while len(samples) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert gateway.crash() is None
    finally:
        gateway.stop(grace=1.0)
    assert_all_gone(tree)
    assert len(samples) >= 3
    last = samples[-1]
    assert last.role == "gateway"
    assert last.processes == 2
    assert last.rss_mb is not None
    assert last.rss_mb > 5
    assert last.uss_mb is not None
    assert 0 < last.uss_mb < last.rss_mb
    assert last.cpu_percent is not None
    assert last.cpu_percent >= 0
    assert last.threads is not None
    assert last.threads >= 2
    assert last.fds is not None
    assert last.fds > 3
    assert gateway.log_path is not None
    log = gateway.log_path.read_text()
    assert "listening on 127.0.0.1" in log
    assert "ignoring SIGTERM" in log  # it was asked nicely first, then killed


def test_fingerprint_config_and_repr_keep_the_master_key_out(
    make_settings: Make, tmp_path: Path
) -> None:
    settings = make_settings(command=command_template("--print-key"), version="2.0.1")
    with _start(settings, tmp_path / "run") as gateway:
        assert gateway.api_key == MASTER_KEY
        assert gateway.version == "2.0.1"
        fingerprint = gateway.fingerprint()
        assert fingerprint["provision"] == "command"
        assert fingerprint["command"][1].endswith("fake_gateway.py")
        config = (tmp_path / "run" / "gateway-config.yaml").read_text()
        assert "upstream" in config
        deadline = time.monotonic() + 5
        while "master key is" not in gateway.log_tail() and time.monotonic() < deadline:
            time.sleep(0.05)
        tail = gateway.log_tail()
    for text in (repr(gateway), str(fingerprint), config, tail):
        assert MASTER_KEY not in text
    assert "master key is <redacted>" in tail
    assert MASTER_KEY not in (tmp_path / "run" / "gateway.log").read_text()


def test_crash_is_detected_with_exit_code_and_log_tail(make_settings: Make, tmp_path: Path) -> None:
    settings = make_settings(command=command_template("--crash-after 1.0 --exit-code 3"))
    with _start(settings, tmp_path / "run") as gateway:
        assert gateway.crash() is None
        deadline = time.monotonic() + 10
        while gateway.crash() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        crash = gateway.crash()
    assert crash is not None
    assert crash.exit_code == 3
    assert crash.signal is None
    assert "fatal: simulated crash" in crash.log_tail
    assert "exit code 3" in crash.describe()


def test_crash_by_signal_is_named(make_settings: Make, tmp_path: Path) -> None:
    settings = make_settings(command=command_template("--kill-self-after 0.8"))
    with _start(settings, tmp_path / "run") as gateway:
        deadline = time.monotonic() + 10
        while gateway.crash() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        crash = gateway.crash()
    assert crash is not None
    assert crash.signal == "SIGKILL"
    assert crash.exit_code is None


def test_exit_before_ready_is_a_build_error_with_the_log(
    make_settings: Make, tmp_path: Path
) -> None:
    settings = make_settings(command=command_template("--crash-after 0 --exit-code 7"))
    with pytest.raises(BuildError, match=r"exit code 7 before it was ready") as info:
        _start(settings, tmp_path / "run")
    assert "simulated crash" in str(info.value)


def test_not_ready_in_time_names_the_timeout_and_stops_the_process(
    make_settings: Make, tmp_path: Path
) -> None:
    settings = make_settings(
        {"readiness_timeout": "1.5s"}, command=command_template("--never-ready")
    )
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(BuildError, match=r"not ready within 1.5s \(readiness_timeout\)") as info:
        _start(settings, tmp_path / "run")
    assert "listening on" in str(info.value)  # the log tail comes with the error
    time.sleep(0.2)
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert_all_gone(sorted(after - before))


def test_missing_executable_is_a_build_error(make_settings: Make, tmp_path: Path) -> None:
    settings = make_settings(command="/nonexistent/gateway --port {port}")
    with pytest.raises(BuildError, match=r"could not start '/nonexistent/gateway'"):
        _start(settings, tmp_path / "run")


def test_cpu_affinity_is_applied_to_the_tree(make_settings: Make, tmp_path: Path) -> None:
    settings = make_settings({"cpu_affinity": [0]}, command=command_template("--spawn-child"))
    gateway = _start(settings, tmp_path / "run")
    try:
        assert gateway.cpu_affinity == [0]
        assert gateway.pid is not None
        root = psutil.Process(gateway.pid)
        for proc in [root, *root.children(recursive=True)]:
            assert proc.cpu_affinity() == [0]
    finally:
        gateway.stop(grace=1.0)


def test_unknown_placeholder_in_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "observatory.yaml"
    config.write_text("builds:\n  x:\n    gateway: litellm\n    command: gw --port {prot}\n")
    with pytest.raises(ConfigError, match=r"builds.x.command: unknown placeholder\(s\) prot"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("gw --port {prot}", r"unknown placeholder \{prot\}; accepted: \{host\}"),
        ("gw --port {port!r}", r"unknown placeholder \{port!r\}"),
        ("gw 'open", r"cannot be split"),
        ("  ", r"command template is empty"),
    ],
)
def test_bad_templates_are_input_errors(template: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        render_command(template, host="127.0.0.1", port=1, config="/c.yaml")


def test_template_substitutes_inside_one_argument() -> None:
    argv = render_command(
        "gw --listen={host}:{port} --config '{config}'", host="127.0.0.1", port=80,
        config="/a b/c.yaml",
    )  # fmt: skip
    assert argv == ["gw", "--listen=127.0.0.1:80", "--config", "/a b/c.yaml"]
