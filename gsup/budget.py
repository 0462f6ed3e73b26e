"""The shutdown budget of SPEC §4: platforms, their detection, the deadline arithmetic.

Owns: the table of platforms (how each is detected, which signal it sends
first, how long it waits before its own SIGKILL), the order in which
detection looks at them, and the arithmetic that turns a platform deadline,
``--platform-timeout``, ``--grace`` and ``--stop-delay`` into a ``Budget``
(or refuses, showing the sum). Also the shutdown timeline ``gsup check``
prints.

Pure: no I/O. The environment and a file-existence test are passed in, so
tests need neither. Imports the standard library, ``gsup.errors`` and
``gsup.units`` only; never typer, rich, psutil or the supervisor.

Resolution, for a platform whose deadline is ``D`` seconds::

    deadline = --platform-timeout, or the platform's default D
    margin   = max(1 s, 10 % of deadline)   # gsup's own SIGKILL, reaping, report
    grace    = --grace, or deadline - stop_delay - margin
    refused  when stop_delay + grace + margin > deadline, or the default grace <= 0

With no deadline (platform ``none`` and no ``--platform-timeout``) the grace
defaults to 10 s and nothing is refused.
"""

from __future__ import annotations

import enum
import math
import signal
import types
from collections.abc import Mapping
from typing import Callable, NamedTuple, Optional, Tuple

from gsup.errors import UsageError
from gsup.units import format_duration, parse_duration, quote

#: The grace when no platform deadline bounds it (platform ``none``).
DEFAULT_GRACE = 10.0
#: The smallest margin gsup keeps for its own SIGKILL, reaping and report.
MIN_MARGIN = 1.0
#: Durations are typed with at most microsecond precision; a sum that exceeds
#: the deadline by less than this is float rounding (0.1 + 8.9 + 1 vs 10), not
#: a budget overrun, and is accepted.
_SLACK = 1e-6


class Platform(str, enum.Enum):
    """Where gsup runs, as far as stopping is concerned (SPEC §4)."""

    KUBERNETES = "kubernetes"
    ECS = "ecs"
    CLOUDRUN = "cloudrun"
    AZURE = "azure"
    NOMAD = "nomad"
    FLY = "fly"
    HEROKU = "heroku"
    SYSTEMD = "systemd"
    DOCKER = "docker"
    COMPOSE = "compose"
    SWARM = "swarm"
    PODMAN = "podman"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


class PlatformInfo(NamedTuple):
    """One row of the SPEC §4 table: what a platform does when it stops a container."""

    platform: Platform
    #: Environment variables whose presence (non-empty) identifies the platform.
    variables: Tuple[str, ...]
    #: The signal the platform sends first; None when nothing stops gsup (``none``).
    first_signal: Optional[signal.Signals]
    #: Seconds between that signal and the platform's SIGKILL; None: no deadline.
    deadline: Optional[float]
    #: The platform signals every process of the container, not only PID 1, so
    #: the child gets the stop signal from the platform and again from gsup.
    signals_every_process: bool
    #: One line for people: where the numbers come from, what to watch for.
    note: str


_GENERIC_NOTE = (
    "TERM (or the image's STOPSIGNAL); {cmd} changes the timeout; "
    "detected by /.dockerenv, /run/.containerenv or $container"
)


def _row(
    platform: Platform,
    variables: Tuple[str, ...],
    first_signal: Optional[signal.Signals],
    deadline: Optional[float],
    note: str,
    *,
    signals_every_process: bool = False,
) -> Tuple[Platform, PlatformInfo]:
    return platform, PlatformInfo(platform, variables, first_signal, deadline, signals_every_process, note)


#: The SPEC §4 table, one row per platform, in the SPEC's order.
PLATFORMS: Mapping[Platform, PlatformInfo] = types.MappingProxyType(
    dict(
        [
            _row(
                Platform.KUBERNETES,
                ("KUBERNETES_SERVICE_HOST",),
                signal.SIGTERM,
                30.0,
                "TERM (or the image's STOPSIGNAL) after the preStop hook; "
                "terminationGracePeriodSeconds (default 30s) counts the preStop hook's time",
            ),
            _row(
                Platform.ECS,
                ("ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"),
                signal.SIGTERM,
                30.0,
                "TERM (or the image's STOPSIGNAL); stopTimeout, default 30s, Fargate max 120s",
            ),
            _row(
                Platform.CLOUDRUN,
                ("K_SERVICE", "CLOUD_RUN_JOB"),
                signal.SIGTERM,
                10.0,
                "TERM, then SIGKILL 10s later; not configurable",
            ),
            _row(
                Platform.AZURE,
                ("CONTAINER_APP_NAME",),
                signal.SIGTERM,
                30.0,
                "Azure Container Apps: TERM; terminationGracePeriodSeconds, default 30s",
            ),
            _row(
                Platform.NOMAD,
                ("NOMAD_ALLOC_ID",),
                signal.SIGINT,
                5.0,
                "INT (kill_signal; the docker driver sends TERM); kill_timeout, default 5s",
            ),
            _row(
                Platform.FLY,
                ("FLY_APP_NAME",),
                signal.SIGINT,
                5.0,
                "INT (kill_signal in fly.toml); kill_timeout, default 5s",
            ),
            _row(
                Platform.HEROKU,
                ("DYNO",),
                signal.SIGTERM,
                30.0,
                "TERM to every process in the dyno, maybe more than once; SIGKILL after 30s",
                signals_every_process=True,
            ),
            _row(
                Platform.SYSTEMD,
                ("INVOCATION_ID",),
                signal.SIGTERM,
                90.0,
                "TERM to the whole cgroup by default (use KillMode=mixed); TimeoutStopSec, default 90s",
                signals_every_process=True,
            ),
            _row(
                Platform.DOCKER,
                (),
                signal.SIGTERM,
                10.0,
                _GENERIC_NOTE.format(cmd="docker stop -t / --stop-timeout"),
            ),
            _row(
                Platform.COMPOSE,
                (),
                signal.SIGTERM,
                10.0,
                "TERM (or stop_signal); stop_grace_period, default 10s; "
                "never detected (looks like docker): pass --platform compose",
            ),
            _row(
                Platform.SWARM,
                (),
                signal.SIGTERM,
                10.0,
                "TERM (or stop_signal); stop_grace_period, default 10s; "
                "never detected (looks like docker): pass --platform swarm",
            ),
            _row(
                Platform.PODMAN,
                (),
                signal.SIGTERM,
                10.0,
                _GENERIC_NOTE.format(cmd="podman stop -t / --stop-timeout"),
            ),
            _row(
                Platform.NONE,
                (),
                None,
                None,
                "nothing detected: no platform deadline, the grace defaults to 10s",
            ),
        ]
    )
)

#: The order in which detect() tries the platform variables. Azure Container
#: Apps runs on Kubernetes and its containers can see the Kubernetes service
#: variables, so it comes before Kubernetes (Knative on Kubernetes sets K_SERVICE
#: too, and is rightly taken for Kubernetes). systemd comes last: INVOCATION_ID
#: is inherited by everything a systemd service starts, a Nomad agent's
#: raw_exec tasks included.
DETECTION_ORDER: Tuple[Platform, ...] = (
    Platform.AZURE,
    Platform.KUBERNETES,
    Platform.ECS,
    Platform.CLOUDRUN,
    Platform.NOMAD,
    Platform.FLY,
    Platform.HEROKU,
    Platform.SYSTEMD,
)

DOCKERENV = "/.dockerenv"
CONTAINERENV = "/run/.containerenv"


def detection(environ: Mapping[str, str], exists: Callable[[str], bool]) -> Tuple[Platform, str]:
    """The platform gsup runs on and the evidence for it (for ``gsup check``).

    See ``detect`` for the rules.
    """
    for platform in DETECTION_ORDER:
        for var in PLATFORMS[platform].variables:
            if environ.get(var):
                return platform, f"{var} is set"
    container = environ.get("container", "")
    if container.strip().lower() == "podman":
        return Platform.PODMAN, f"container={container}"
    if exists(CONTAINERENV):
        return Platform.PODMAN, f"{CONTAINERENV} exists"
    if exists(DOCKERENV):
        return Platform.DOCKER, f"{DOCKERENV} exists"
    if container:
        return Platform.DOCKER, f"container={container}"
    return Platform.NONE, "no platform variable or container file found"


def detect(environ: Mapping[str, str], exists: Callable[[str], bool]) -> Platform:
    """The platform gsup runs on, from its environment and two well-known files.

    1. The specific platforms' variables (in ``DETECTION_ORDER``), first:
       Kubernetes and ECS nodes run containers that also carry the generic
       container files. A variable set to the empty string does not count.
    2. Podman: ``container=podman`` or ``/run/.containerenv`` (podman creates
       both).
    3. Docker: ``/.dockerenv``, or ``container`` set to anything else
       (``docker``, ``oci`` in UBI images, ``lxc``...): an unknown engine gets
       the generic engines' 10 s, the common default of docker, podman and
       containerd's nerdctl.
    4. Otherwise ``none``.

    Compose and Swarm cannot be told apart from plain Docker from inside the
    container; they are only chosen with ``--platform`` (same defaults anyway).

    *exists* is ``os.path.exists`` in production; tests pass a set's
    ``__contains__``.
    """
    return detection(environ, exists)[0]


def parse_platform(text: str) -> Platform:
    """The platform named by *text* (``kubernetes``, ``ECS``...), case-insensitive."""
    name = text.strip().lower()
    try:
        return Platform(name)
    except ValueError:
        valid = ", ".join(p.value for p in Platform)
        raise UsageError(f"invalid platform {quote(text)}: use one of {valid}") from None


class Budget(NamedTuple):
    """The resolved shutdown budget, in seconds from the stop signal's arrival."""

    platform: Platform
    #: When the platform sends its own SIGKILL; None: never (platform ``none``).
    deadline: Optional[float]
    #: Reserved between gsup's SIGKILL and the platform's (0 without a deadline).
    margin: float
    #: From the stop signal sent to the child until gsup's SIGKILL.
    grace: float
    #: From the stop request until the child is signalled (load-balancer drain).
    stop_delay: float
    #: What the platform sends first (TERM, or INT on Nomad and Fly); None for ``none``.
    first_signal: Optional[signal.Signals]
    #: The pre-stop commands' slot, before the drain (0: none).
    pre_stop: float = 0.0
    #: ``--stop-delay auto``: ``stop_delay`` is the longest the drain may take.
    auto_delay: bool = False

    @property
    def kill_at(self) -> float:
        """When gsup sends SIGKILL, counted from the stop request."""
        return self.pre_stop + self.stop_delay + self.grace

    @property
    def slack(self) -> Optional[float]:
        """Time left between gsup's SIGKILL and the platform's (>= margin); None: no deadline."""
        if self.deadline is None:
            return None
        return self.deadline - self.kill_at


def _fmt(seconds: float) -> str:
    """``format_duration`` that also shows negative numbers the way people write them."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    return format_duration(seconds)


def _exact(seconds: float) -> str:
    """``_fmt``, or more digits where its rounding would hide the difference (27.001s, not 27.0s)."""
    shown = _fmt(seconds)
    if parse_duration(shown.lstrip("-")) == abs(seconds):
        return shown
    return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"


def _check(name: str, value: Optional[float]) -> None:
    if value is None:
        return
    if not math.isfinite(value):
        raise UsageError(f"invalid {name} {value!r}: must be a finite duration")
    if value < 0:
        raise UsageError(f"invalid {name} {_fmt(value)}: must not be negative")


#: The longest drain ``--stop-delay auto`` may take (it ends much sooner when polled).
AUTO_DELAY_MAX = 10.0


def resolve(
    platform: Platform,
    *,
    platform_timeout: Optional[float] = None,
    grace: Optional[float] = None,
    stop_delay: float = 0.0,
    timeout_origin: str = "--platform-timeout",
    pre_stop: float = 0.0,
    auto_delay: bool = False,
) -> Budget:
    """The shutdown budget for *platform* and the user's options, or a ``UsageError``.

    *platform_timeout*, *grace* and *stop_delay* are seconds as parsed from
    ``--platform-timeout``, ``--grace`` and ``--stop-delay`` (None: not given);
    *timeout_origin* names where the timeout came from, for the message.
    The error message shows the sum that does not fit, e.g. ``stop delay 5s
    + grace 28s + margin 3s = 36s exceeds the kubernetes deadline of 30s``.
    """
    _check("platform timeout", platform_timeout)
    _check("grace", grace)
    _check("stop delay", stop_delay)
    _check("pre-stop timeout", pre_stop)
    info = PLATFORMS[platform]
    deadline = float(platform_timeout) if platform_timeout is not None else info.deadline
    stop_delay = float(stop_delay)
    pre_stop = float(pre_stop)
    if auto_delay:
        # The longest the drain may take: what the budget leaves, at most AUTO_DELAY_MAX
        # (and a third of what the platform gives when the grace is not set).
        if deadline is None:
            stop_delay = AUTO_DELAY_MAX
        else:
            room = deadline - max(MIN_MARGIN, deadline / 10) - pre_stop
            left = room - float(grace) if grace is not None else room / 3
            stop_delay = max(0.0, math.floor(min(AUTO_DELAY_MAX, left) * 10) / 10)  # 7.3s, not 7.33s
    if deadline is None:
        return Budget(
            platform=platform,
            deadline=None,
            margin=0.0,
            grace=DEFAULT_GRACE if grace is None else float(grace),
            stop_delay=stop_delay,
            first_signal=info.first_signal,
            pre_stop=pre_stop,
            auto_delay=auto_delay,
        )
    # 10 % as deadline / 10, not deadline * 0.1: 30 * 0.1 is 3.0000000000000004.
    margin = max(MIN_MARGIN, deadline / 10)
    what = "the deadline" if platform is Platform.NONE else f"the {platform.value} deadline"
    where = f"{what} of {_fmt(deadline)}"
    if platform_timeout is not None:
        where += f" ({timeout_origin})"
    pre = f"pre-stop {_exact(pre_stop)} + " if pre_stop else ""
    if grace is None:
        grace = deadline - pre_stop - stop_delay - margin
        if grace <= 0:
            pre_minus = f" - pre-stop {_fmt(pre_stop)}" if pre_stop else ""
            raise UsageError(
                f"{where} leaves no grace: {_fmt(deadline)}{pre_minus} - stop delay {_fmt(stop_delay)}"
                f" - margin {_fmt(margin)} = {_fmt(grace)}; lower --stop-delay"
                + (" or --pre-stop-timeout" if pre_stop else "")
                + " or raise --platform-timeout"
            )
        # Float rounding must not push the default past the deadline by an ulp.
        while pre_stop + stop_delay + grace + margin > deadline:
            grace = math.nextafter(grace, -math.inf)
    else:
        grace = float(grace)
        total = pre_stop + stop_delay + grace + margin
        if total > deadline + _SLACK:
            raise UsageError(
                f"{pre}stop delay {_exact(stop_delay)} + grace {_exact(grace)} + margin {_exact(margin)}"
                f" = {_exact(total)} exceeds {where}; lower --grace or --stop-delay"
                + (" or --pre-stop-timeout" if pre_stop else "")
                + ", or raise --platform-timeout"
            )
    return Budget(
        platform=platform,
        deadline=deadline,
        margin=margin,
        grace=grace,
        stop_delay=stop_delay,
        first_signal=info.first_signal,
        pre_stop=pre_stop,
        auto_delay=auto_delay,
    )


def timeline(budget: Budget, health: Optional[str] = None) -> list[tuple[float, str]]:
    """The shutdown as (seconds after the stop signal arrives, what happens), in order.

    *health*: where the health endpoint listens, if it does.
    """
    p = budget.platform
    if budget.first_signal is not None:
        arrival = f"{p.value} sends {budget.first_signal.name}: stop requested"
    else:
        arrival = "stop requested (TERM, INT or QUIT reaches gsup)"
    events: list[tuple[float, str]] = [(0.0, arrival)]
    if health:
        events.append((0.0, f"/readyz on {health} answers 503 from now on (/livez stays 200)"))
    if budget.pre_stop > 0:
        events.append(
            (0.0, f"pre-stop commands run, for at most {_fmt(budget.pre_stop)} (then SIGKILL for them)")
        )
    drain_at = budget.pre_stop
    if budget.stop_delay > 0:
        if budget.auto_delay:
            how = (
                f"until /readyz has been polled and one poll interval more, at most {_fmt(budget.stop_delay)}"
            )
        else:
            how = f"for {_fmt(budget.stop_delay)}"
        events.append((drain_at, f"drain starts: the child is not signalled {how}"))
        sent = "drain ends: gsup sends the stop signal to the child"
    else:
        sent = "gsup sends the stop signal to the child"
    events.append((drain_at + budget.stop_delay, f"{sent}; the grace of {_fmt(budget.grace)} starts"))
    events.append((budget.kill_at, "grace ends: gsup sends SIGKILL to every process left, reaps, reports"))
    slack = budget.slack
    if budget.deadline is not None and slack is not None:
        # With no platform, the deadline is --platform-timeout's: whatever stops gsup kills then.
        who = (
            f"{p.value} deadline: the platform" if p is not Platform.NONE else "deadline: whatever stops gsup"
        )
        events.append(
            (
                budget.deadline,
                f"{who} sends SIGKILL, {_fmt(slack)} after gsup's (margin {_fmt(budget.margin)})",
            )
        )
    return events


def timeline_text(budget: Budget, health: Optional[str] = None) -> str:
    """The timeline as plain text lines (``gsup check`` when stdout is not a terminal)."""
    pre = f"pre-stop {_fmt(budget.pre_stop)} + " if budget.pre_stop else ""
    delay = ("at most " if budget.auto_delay else "") + _fmt(budget.stop_delay)
    if budget.deadline is None:
        head = (
            f"shutdown budget ({budget.platform.value}): {pre}stop delay {delay}"
            f" + grace {_fmt(budget.grace)}, no platform deadline"
        )
    else:
        head = (
            f"shutdown budget ({budget.platform.value}): {pre}stop delay {delay}"
            f" + grace {_fmt(budget.grace)} + margin {_fmt(budget.margin)}"
            f" <= deadline {_fmt(budget.deadline)}"
        )
    rows = [(f"t={_fmt(t)}", text) for t, text in timeline(budget, health)]
    width = max(len(t) for t, _ in rows)
    return "\n".join([head, *(f"  {t:>{width}}  {text}" for t, text in rows)]) + "\n"
