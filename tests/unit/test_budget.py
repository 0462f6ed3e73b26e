"""The shutdown budget of SPEC §4: platform table, detection, arithmetic, timeline."""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from typing import Callable, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gsup import budget
from gsup.budget import Budget, Platform, detect, detection, parse_platform, resolve
from gsup.errors import UsageError


def _exists(*paths: str) -> Callable[[str], bool]:
    """A file-existence test that knows only *paths*."""
    return frozenset(paths).__contains__


def _detect(environ: Mapping[str, str], *paths: str) -> Platform:
    return detect(environ, _exists(*paths))


# -- the table -----------------------------------------------------------------


def test_every_platform_has_one_row() -> None:
    """Every Platform member has exactly one row in the table, keyed by itself."""
    assert set(budget.PLATFORMS) == set(Platform)
    for platform, info in budget.PLATFORMS.items():
        assert info.platform is platform


@pytest.mark.parametrize(
    ("platform", "first_signal", "deadline"),
    [
        (Platform.KUBERNETES, signal.SIGTERM, 30.0),
        (Platform.ECS, signal.SIGTERM, 30.0),
        (Platform.CLOUDRUN, signal.SIGTERM, 10.0),
        (Platform.AZURE, signal.SIGTERM, 30.0),
        (Platform.NOMAD, signal.SIGINT, 5.0),
        (Platform.FLY, signal.SIGINT, 5.0),
        (Platform.HEROKU, signal.SIGTERM, 30.0),
        (Platform.SYSTEMD, signal.SIGTERM, 90.0),
        (Platform.DOCKER, signal.SIGTERM, 10.0),
        (Platform.COMPOSE, signal.SIGTERM, 10.0),
        (Platform.SWARM, signal.SIGTERM, 10.0),
        (Platform.PODMAN, signal.SIGTERM, 10.0),
        (Platform.NONE, None, None),
    ],
)
def test_table_matches_the_spec(
    platform: Platform, first_signal: Optional[signal.Signals], deadline: Optional[float]
) -> None:
    """Each platform's first signal and default deadline are those of the SPEC §4 table."""
    info = budget.PLATFORMS[platform]
    assert info.first_signal == first_signal
    assert info.deadline == deadline
    assert info.note


def test_platforms_that_signal_every_process() -> None:
    """Exactly Heroku and systemd are marked as signalling every process, not only PID 1."""
    marked = {p for p, info in budget.PLATFORMS.items() if info.signals_every_process}
    assert marked == {Platform.HEROKU, Platform.SYSTEMD}


def test_fargate_limit_is_noted() -> None:
    """The ECS row notes Fargate's 120 s maximum stopTimeout."""
    assert "120s" in budget.PLATFORMS[Platform.ECS].note


# -- detection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "platform"),
    [
        ("KUBERNETES_SERVICE_HOST", Platform.KUBERNETES),
        ("ECS_CONTAINER_METADATA_URI_V4", Platform.ECS),
        ("ECS_CONTAINER_METADATA_URI", Platform.ECS),
        ("K_SERVICE", Platform.CLOUDRUN),
        ("CLOUD_RUN_JOB", Platform.CLOUDRUN),
        ("CONTAINER_APP_NAME", Platform.AZURE),
        ("NOMAD_ALLOC_ID", Platform.NOMAD),
        ("FLY_APP_NAME", Platform.FLY),
        ("DYNO", Platform.HEROKU),
        ("INVOCATION_ID", Platform.SYSTEMD),
    ],
)
def test_detected_by_its_variable(var: str, platform: Platform) -> None:
    """Each platform's variable alone identifies the platform."""
    assert _detect({var: "x"}) is platform


@pytest.mark.parametrize(
    "var",
    ["KUBERNETES_SERVICE_HOST", "ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"],
)
@pytest.mark.parametrize("path", [budget.DOCKERENV, budget.CONTAINERENV])
def test_platform_variable_beats_container_files(var: str, path: str) -> None:
    """A Kubernetes or ECS container that also carries a generic container file is not docker."""
    expected = Platform.KUBERNETES if var.startswith("KUBERNETES") else Platform.ECS
    assert _detect({var: "10.0.0.1", "container": "docker"}, path) is expected


def test_kubernetes_pod_with_dockerenv() -> None:
    """A Kubernetes pod whose image runtime left /.dockerenv is detected as kubernetes."""
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert _detect(env, "/.dockerenv") is Platform.KUBERNETES


def test_azure_container_apps_on_kubernetes() -> None:
    """Azure Container Apps, which may also expose the Kubernetes variables, is azure."""
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "CONTAINER_APP_NAME": "web"}
    assert _detect(env) is Platform.AZURE


def test_systemd_variable_is_checked_last() -> None:
    """INVOCATION_ID, inherited from a systemd-run agent, does not hide a Nomad task."""
    assert _detect({"INVOCATION_ID": "abc", "NOMAD_ALLOC_ID": "1"}) is Platform.NOMAD


def test_empty_variable_does_not_count() -> None:
    """A platform variable set to the empty string does not identify the platform."""
    assert _detect({"KUBERNETES_SERVICE_HOST": ""}) is Platform.NONE


@pytest.mark.parametrize(
    ("environ", "paths", "platform"),
    [
        ({}, (budget.DOCKERENV,), Platform.DOCKER),
        ({}, (budget.CONTAINERENV,), Platform.PODMAN),
        ({"container": "podman"}, (), Platform.PODMAN),
        ({"container": "podman"}, (budget.DOCKERENV,), Platform.PODMAN),
        ({"container": "docker"}, (), Platform.DOCKER),
        ({"container": "oci"}, (), Platform.DOCKER),
        ({"container": ""}, (), Platform.NONE),
        ({}, (), Platform.NONE),
        ({"HOME": "/home/app", "PATH": "/bin"}, ("/etc/passwd",), Platform.NONE),
    ],
)
def test_generic_container_detection(
    environ: dict[str, str], paths: tuple[str, ...], platform: Platform
) -> None:
    """Without platform variables, the container files and $container pick docker or podman."""
    assert _detect(environ, *paths) is platform


def test_detection_names_its_evidence() -> None:
    """detection() says which variable or file decided."""
    env = {"ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x"}
    exists = _exists(budget.DOCKERENV)
    assert detection(env, exists) == (Platform.ECS, "ECS_CONTAINER_METADATA_URI_V4 is set")
    platform, why = detection({}, exists)
    assert platform is Platform.DOCKER
    assert budget.DOCKERENV in why


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=10), max_size=8))
def test_detect_always_returns_a_platform(environ: dict[str, str]) -> None:
    """detect() returns a Platform for any environment, and never raises."""
    assert isinstance(_detect(environ), Platform)


# -- parse_platform --------------------------------------------------------------


@pytest.mark.parametrize("platform", list(Platform))
def test_parse_every_platform_name(platform: Platform) -> None:
    """Every platform's name parses back to it, in any case and with spaces around."""
    assert parse_platform(platform.value) is platform
    assert parse_platform(f" {platform.value.upper()} ") is platform


@pytest.mark.parametrize("text", ["", "k8s ", "docker-compose", "kubernetes,ecs"])
def test_parse_platform_rejects_unknown_names(text: str) -> None:
    """An unknown platform is a UsageError that lists every valid name."""
    with pytest.raises(UsageError) as err:
        parse_platform(text)
    assert err.value.exit_code == 2
    for platform in Platform:
        assert platform.value in err.value.message


# -- resolve: the default arithmetic -----------------------------------------------


@pytest.mark.parametrize(
    ("platform", "deadline", "margin", "grace"),
    [
        (Platform.KUBERNETES, 30, 3, 27),
        (Platform.ECS, 30, 3, 27),
        (Platform.CLOUDRUN, 10, 1, 9),
        (Platform.AZURE, 30, 3, 27),
        (Platform.NOMAD, 5, 1, 4),
        (Platform.FLY, 5, 1, 4),
        (Platform.HEROKU, 30, 3, 27),
        (Platform.SYSTEMD, 90, 9, 81),
        (Platform.DOCKER, 10, 1, 9),
        (Platform.COMPOSE, 10, 1, 9),
        (Platform.SWARM, 10, 1, 9),
        (Platform.PODMAN, 10, 1, 9),
    ],
)
def test_default_budget(platform: Platform, deadline: float, margin: float, grace: float) -> None:
    """With no options, grace = deadline - max(1 s, 10 % of the deadline), exactly."""
    b = resolve(platform)
    assert (b.deadline, b.margin, b.grace, b.stop_delay) == (deadline, margin, grace, 0.0)
    assert b.platform is platform
    assert b.first_signal == budget.PLATFORMS[platform].first_signal


def test_no_platform_means_no_deadline() -> None:
    """Platform none has no deadline, no margin, a 10 s grace, and no signal of its own."""
    b = resolve(Platform.NONE)
    assert b == Budget(Platform.NONE, None, 0.0, 10.0, 0.0, None)
    assert b.slack is None


def test_no_platform_refuses_nothing() -> None:
    """Without a deadline any grace and stop delay are accepted as given."""
    b = resolve(Platform.NONE, grace=3600, stop_delay=600)
    assert (b.grace, b.stop_delay, b.kill_at) == (3600, 600, 4200)


def test_none_with_platform_timeout_has_a_deadline() -> None:
    """--platform-timeout gives platform none a deadline and the usual arithmetic."""
    b = resolve(Platform.NONE, platform_timeout=20)
    assert (b.deadline, b.margin, b.grace) == (20, 2, 18)


def test_platform_timeout_overrides_the_default() -> None:
    """--platform-timeout replaces the platform's default deadline."""
    b = resolve(Platform.KUBERNETES, platform_timeout=60)
    assert (b.deadline, b.margin, b.grace) == (60, 6, 54)


def test_platform_timeout_of_two_seconds() -> None:
    """--platform-timeout 2 leaves a 1 s margin and a 1 s grace."""
    b = resolve(Platform.KUBERNETES, platform_timeout=2)
    assert (b.deadline, b.margin, b.grace) == (2, 1, 1)


def test_stop_delay_reduces_the_default_grace() -> None:
    """The drain comes out of the grace: kubernetes 30 s with a 5 s stop delay leaves 22 s."""
    b = resolve(Platform.KUBERNETES, stop_delay=5)
    assert (b.stop_delay, b.grace, b.margin, b.kill_at) == (5, 22, 3, 27)


def test_given_grace_that_fits_is_kept() -> None:
    """A --grace that fits inside the deadline is used as given."""
    b = resolve(Platform.KUBERNETES, grace=10, stop_delay=5)
    assert (b.grace, b.kill_at, b.slack) == (10, 15, 15)


def test_given_grace_that_exactly_fills_the_budget() -> None:
    """stop_delay + grace + margin equal to the deadline is accepted."""
    assert resolve(Platform.KUBERNETES, grace=22, stop_delay=5).grace == 22


def test_rounding_noise_is_not_an_overrun() -> None:
    """Typed decimals that add up to the deadline (0.1 + 8.9 + 1 = 10) are accepted."""
    assert resolve(Platform.DOCKER, stop_delay=0.1, grace=8.9).grace == 8.9


def test_zero_grace_is_allowed() -> None:
    """--grace 0 (SIGKILL right after the stop signal) is a valid choice."""
    assert resolve(Platform.KUBERNETES, grace=0).grace == 0


# -- resolve: refusals ------------------------------------------------------------


def test_refusal_shows_the_arithmetic() -> None:
    """A grace that does not fit is refused with the sum and the deadline in the message."""
    with pytest.raises(UsageError) as err:
        resolve(Platform.KUBERNETES, grace=28, stop_delay=5)
    assert err.value.exit_code == 2
    assert (
        "stop delay 5s + grace 28s + margin 3s = 36s exceeds the kubernetes deadline of 30s"
        in err.value.message
    )


def test_refusal_names_a_given_platform_timeout() -> None:
    """When the deadline came from --platform-timeout, the refusal says so."""
    with pytest.raises(UsageError) as err:
        resolve(Platform.ECS, platform_timeout=5, grace=10)
    assert "grace 10s + margin 1s = 11s exceeds the ecs deadline of 5s" in err.value.message
    assert "(--platform-timeout)" in err.value.message


def test_refusal_when_margin_alone_is_too_much() -> None:
    """A grace that fits the deadline but not the margin is refused (cloudrun: 10 s, margin 1 s)."""
    with pytest.raises(UsageError, match="exceeds the cloudrun deadline of 10s"):
        resolve(Platform.CLOUDRUN, grace=10)


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"stop_delay": 28}, "30s - stop delay 28s - margin 3s = -1s"),
        ({"stop_delay": 27}, "30s - stop delay 27s - margin 3s = 0s"),
        ({"platform_timeout": 1}, "1s - stop delay 0s - margin 1s = 0s"),
        ({"platform_timeout": 0.5}, "500ms - stop delay 0s - margin 1s = -500ms"),
        ({"platform_timeout": 0}, "0s - stop delay 0s - margin 1s = -1s"),
    ],
)
def test_refusal_when_default_grace_is_not_positive(kwargs: dict[str, float], shown: str) -> None:
    """A default grace of zero or less is refused, showing the subtraction."""
    with pytest.raises(UsageError) as err:
        resolve(Platform.KUBERNETES, **kwargs)
    assert "leaves no grace" in err.value.message
    assert shown in err.value.message


@pytest.mark.parametrize("name", ["platform_timeout", "grace", "stop_delay"])
@pytest.mark.parametrize("value", [-1.0, -0.001, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("platform", [Platform.KUBERNETES, Platform.NONE])
def test_negative_or_non_finite_values_are_rejected(name: str, value: float, platform: Platform) -> None:
    """Negative, NaN or infinite durations are a UsageError naming the option, on any platform."""
    with pytest.raises(UsageError, match=name.replace("_", " ")):
        resolve(platform, **{name: value})


# -- resolve: properties ------------------------------------------------------------

_seconds = st.floats(min_value=0, max_value=10_000, allow_nan=False, allow_infinity=False)


@given(deadline=_seconds, stop_delay=_seconds)
def test_accepted_default_budget_fits_the_deadline(deadline: float, stop_delay: float) -> None:
    """Whenever the default grace is accepted, stop_delay + grace + margin <= deadline exactly,
    the grace is positive and the margin at least 1 s and 10 % of the deadline."""
    try:
        b = resolve(Platform.KUBERNETES, platform_timeout=deadline, stop_delay=stop_delay)
    except UsageError as err:
        assert deadline - stop_delay - max(1.0, deadline / 10) <= 0
        assert "leaves no grace" in err.message
        return
    assert b.deadline == deadline
    assert b.stop_delay + b.grace + b.margin <= deadline
    assert b.grace > 0
    assert b.margin >= 1.0
    assert b.margin >= deadline / 10


@given(deadline=_seconds, stop_delay=_seconds, grace=_seconds)
def test_accepted_given_grace_fits_the_deadline(deadline: float, stop_delay: float, grace: float) -> None:
    """A given grace is accepted exactly when the sum fits the deadline (to a microsecond)."""
    margin = max(1.0, deadline / 10)
    fits = stop_delay + grace + margin <= deadline
    try:
        b = resolve(Platform.ECS, platform_timeout=deadline, stop_delay=stop_delay, grace=grace)
    except UsageError as err:
        assert not fits
        assert "exceeds the ecs deadline" in err.message
        return
    assert b.grace == grace
    assert b.margin >= 1.0
    assert b.stop_delay + b.grace + b.margin <= deadline + 1e-6


# -- the timeline ----------------------------------------------------------------


def test_timeline_with_a_drain() -> None:
    """The timeline gives the drain's end, gsup's SIGKILL and the platform's, in order."""
    b = resolve(Platform.KUBERNETES, stop_delay=5)
    events = budget.timeline(b)
    times = [t for t, _ in events]
    assert times == sorted(times)
    assert times[0] == 0
    text = dict((round(t), what) for t, what in events if t > 0)
    assert "drain ends" in text[5]
    assert "SIGKILL" in text[27] and "gsup" in text[27]
    assert "kubernetes" in text[30] and "3s after gsup's" in text[30]
    assert "SIGTERM" in events[0][1]


def test_timeline_without_a_drain() -> None:
    """Without a stop delay the child is signalled at t=0 and no drain is mentioned."""
    events = budget.timeline(resolve(Platform.NOMAD))
    assert all("drain" not in what for _, what in events)
    assert [t for t, _ in events] == [0, 0, 4, 5]
    assert "SIGINT" in events[0][1]


def test_timeline_shows_the_real_gap() -> None:
    """With a short given grace, the platform line shows the whole gap, not just the margin."""
    last = budget.timeline(resolve(Platform.KUBERNETES, grace=10))[-1]
    assert last[0] == 30
    assert "20s after gsup's" in last[1]
    assert "margin 3s" in last[1]


def test_timeline_without_deadline() -> None:
    """With no platform deadline the timeline ends at gsup's SIGKILL."""
    events = budget.timeline(resolve(Platform.NONE, stop_delay=2))
    assert events[-1][0] == 12
    assert "SIGKILL" in events[-1][1]


def test_timeline_text() -> None:
    """The plain-text timeline has the sum in its first line and one t= line per event."""
    b = resolve(Platform.KUBERNETES, stop_delay=5)
    lines = budget.timeline_text(b).splitlines()
    assert lines[0] == ("shutdown budget (kubernetes): stop delay 5s + grace 22s + margin 3s <= deadline 30s")
    assert len(lines) == 1 + len(budget.timeline(b))
    assert [re.match(r"\s*t=(\S+)", line).group(1) for line in lines[1:]] == [  # type: ignore[union-attr]
        "0s",
        "0s",
        "5s",
        "27s",
        "30s",
    ]
    assert "\x1b" not in budget.timeline_text(b)


def test_timeline_text_without_deadline() -> None:
    """The plain-text timeline of platform none says there is no platform deadline."""
    text = budget.timeline_text(resolve(Platform.NONE))
    assert "no platform deadline" in text.splitlines()[0]
    assert text.endswith("\n")
