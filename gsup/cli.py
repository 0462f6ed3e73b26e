"""The command line: argv and environment -> plan -> supervise -> exit status.

Owns: option names, ``GSUP_<NAME>`` environment variables, the three modes
(supervise, ``check``, ``drill``), the choice of sink, and the translation of
errors into exit codes and one-line messages. The only module that imports
typer; rich is imported (by ``ui``) only when stderr is a terminal.

(No ``from __future__ import annotations`` here: typer reads the annotations
at run time, and some typer releases cannot resolve them as strings on 3.9.)
"""

import os
import signal
import sys
import traceback
from typing import Annotated, Dict, List, NoReturn, Optional, Set

import typer

from gsup import __version__
from gsup.config import OPTIONS, Resolved, Setting, Source, closest, env_name, unknown_variables
from gsup.errors import EXIT_INTERNAL, EXIT_USAGE, GsupError, UsageError, exit_now

USAGE = (
    "gsup [OPTIONS] -- CMD [ARG...] | gsup check [OPTIONS] [-- CMD...] | gsup drill [OPTIONS] -- CMD..."
    " | gsup status [--json] [--health ADDR]"
)
MODES = ("check", "drill", "status")
#: What a shell's completion script sets to ask for completions (click's convention).
COMPLETE_VAR = "_GSUP_COMPLETE"
#: How long a just-started child may take to exit before gsup hands over to
#: its lean supervising process: shorter than that handover itself (~15 ms).
HANDOFF_AFTER = 0.01

HELP = """Supervise CMD as PID 1 or as a wrapper: forward every signal, reap zombies,
stop it inside the platform's deadline, and say what happened.

\b
  gsup [OPTIONS] -- CMD [ARG...]        supervise CMD
  gsup check [OPTIONS] [-- CMD...]      print the resolved settings and the shutdown timeline
  gsup drill [OPTIONS] -- CMD...        run CMD, stop it as the platform would, PASS/FAIL
  gsup status [--json] [--health ADDR]  ask a running gsup how its programs are (exit 0 ready, 1 not)

Every option can also be set as GSUP_<NAME> (--grace: GSUP_GRACE). Precedence:
command line, then environment, then the config file's [gsup] table, then the
platform's default.
"""

CHECK_HELP = """Validate the options, the environment and the config file as a start would,
and print the resolved settings, where each came from, the programs and the
shutdown timeline. Starts nothing; exit 0 when valid, 2 with the reason.

\b
  gsup check [OPTIONS] [-- CMD...]
  gsup check --config FILE [OPTIONS]
"""

DRILL_HELP = """Run CMD under gsup, stop it the way the platform would (its first stop
signal, after --after or once --ready answers), and report the time to exit,
the exit status, whether it beat the grace and what was left behind:
PASS (exit 0) or FAIL (exit 1) with the reasons.

\b
  gsup drill [--after DURATION | --ready tcp=|http=|file=...] [--probe URL] [OPTIONS] -- CMD...
"""

STATUS_HELP = """Ask a running gsup, at its health endpoint (--health, GSUP_HEALTH or the
config file's [gsup] health), how its programs are and how much of the
budget is left. Exit 0 ready, 1 not ready (or stopping), 2 unreachable:
usable as a Docker HEALTHCHECK (HEALTHCHECK CMD gsup status).

\b
  gsup status [--json] [--health ADDR]
"""

# typer re-exports click's usage errors under its own name in some releases and
# vendors click in others; find the common base either way.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

app = typer.Typer(
    # --install-completion and --show-completion: 0.2 ms more to build the
    # command (1.57 -> 1.78 ms, median of 30 starts), nothing else on the start.
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"gsup {__version__}")
        raise typer.Exit(0)


@app.command(help=HELP)
def run(
    ctx: typer.Context,
    command: Annotated[Optional[List[str]], typer.Argument(help="The command and its arguments.")] = None,
    grace: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("grace"),
            help="Time from the stop signal until SIGKILL. Default: from the budget.",
        ),
    ] = None,
    platform: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("platform"),
            help="kubernetes, ecs, cloudrun, azure, nomad, fly, heroku, systemd, docker, compose, "
            "swarm, podman or none. Default: detected.",
        ),
    ] = None,
    platform_timeout: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("platform_timeout"),
            help="The platform's own kill deadline, if not its default.",
        ),
    ] = None,
    stop_delay: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("stop_delay"),
            help="Wait this long after the stop request before signalling (load-balancer drain); "
            "auto: until the health endpoint has been polled, and one poll interval more.",
        ),
    ] = None,
    stop_signal: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("stop_signal"),
            help="Signal the child gets on stop. Default: the one received.",
        ),
    ] = None,
    rewrite: Annotated[
        Optional[List[str]],
        typer.Option(envvar=env_name("rewrite"), help="FROM:TO, repeatable: translate a forwarded signal."),
    ] = None,
    forward_to: Annotated[
        Optional[str],
        typer.Option(envvar=env_name("forward_to"), help="group (default) or child: where signals go."),
    ] = None,
    success_code: Annotated[
        Optional[List[str]],
        typer.Option(
            envvar=env_name("success_code"), help="Repeatable: exit code reported as 0 after a stop."
        ),
    ] = None,
    success_on_stop: Annotated[
        Optional[bool],
        typer.Option(
            "--success-on-stop",
            envvar=env_name("success_on_stop"),
            help="Exit 0 when the child ended by the stop signal gsup was asked to deliver.",
        ),
    ] = None,
    user: Annotated[
        Optional[str], typer.Option(envvar=env_name("user"), help="Run the child as USER[:GROUP].")
    ] = None,
    parent_death_signal: Annotated[
        Optional[str],
        typer.Option(envvar=env_name("parent_death_signal"), help="Signal for the child if gsup is killed."),
    ] = None,
    log_format: Annotated[
        Optional[str], typer.Option(envvar=env_name("log_format"), help="text (default) or json.")
    ] = None,
    quiet: Annotated[
        Optional[bool],
        typer.Option("--quiet", "-q", envvar=env_name("quiet"), help="Only errors and the report."),
    ] = None,
    verbose: Annotated[
        Optional[bool],
        typer.Option("--verbose", "-v", envvar=env_name("verbose"), help="Also each reaped orphan."),
    ] = None,
    config: Annotated[
        Optional[str], typer.Option(envvar=env_name("config"), help="A TOML file of settings ([gsup]).")
    ] = None,
    timestamps: Annotated[
        Optional[bool],
        typer.Option(
            "--timestamps",
            envvar=env_name("timestamps"),
            help="Many programs: an ISO-8601 time in each output line's prefix.",
        ),
    ] = None,
    after: Annotated[
        Optional[str], typer.Option(help="drill: send the stop signal this long after the start.")
    ] = None,
    ready: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("ready"),
            help="When the command is ready (for /readyz): tcp=HOST:PORT, http=URL, file=PATH or "
            "log=REGEX (a line of its output; its stdout and stderr then pass through gsup). "
            "drill: wait for it before the stop.",
        ),
    ] = None,
    health: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("health"),
            help="Serve GET /livez and /readyz (503 from the stop request on) on HOST:PORT, :PORT "
            "or unix:PATH.",
        ),
    ] = None,
    pre_stop: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("pre_stop"),
            help="Run this command at the stop request, before the drain and any stop signal.",
        ),
    ] = None,
    pre_stop_timeout: Annotated[
        Optional[str],
        typer.Option(
            envvar=env_name("pre_stop_timeout"),
            help="The longest the pre-stop commands may run (default 5s); then they are killed.",
        ),
    ] = None,
    probe: Annotated[
        Optional[str],
        typer.Option(help="drill: send requests to URL during the stop, count failures."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="status: print the endpoint's answer as JSON.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> int:
    mode = ctx.meta.get("gsup_mode", "run")
    given: Dict[str, Setting] = {}
    for name in OPTIONS:
        source = ctx.get_parameter_source(name)
        kind = getattr(source, "name", "DEFAULT")
        if kind in ("COMMANDLINE", "ENVIRONMENT"):
            given[name] = Setting(ctx.params[name], Source.FLAG if kind == "COMMANDLINE" else Source.ENV)
    if mode != "drill":
        for name, v in (("--after", after), ("--probe", probe)):
            if v is not None:
                raise UsageError(f"{name} is an option of gsup drill")
    if json_output and mode != "status":
        raise UsageError("--json is an option of gsup status (gsup's own log: --log-format json)")
    argv = tuple(os.fsencode(a) for a in command or ())

    from gsup.config import resolve

    resolved = resolve(given, argv, config_path=config, environ=os.environ)
    warnings = unknown_variables(os.environ)
    if warnings:
        from gsup.log import make_sink

        sink = make_sink(resolved.log_format, quiet=resolved.quiet, verbose=resolved.verbose)
        for warning in warnings:
            sink.event("warning", f"warning: {warning}")
    if mode == "status":
        from gsup.health import print_status

        return print_status(resolved.plan.health, as_json=json_output)
    if not argv and resolved.plan.single and mode != "check":
        raise UsageError(f"missing command: {USAGE.split(' | ')[0 if mode == 'run' else 2]}")
    if mode == "check":
        from gsup.check import print_check

        return print_check(resolved)
    if mode == "drill":
        from gsup.drill import DrillOptions, run_drill

        return run_drill(
            resolved,
            ctx.meta["gsup_argv"],
            DrillOptions.parse(after=after, ready=ready, probe=probe),
        )
    return _supervise(resolved)


def _supervise(resolved: "Resolved") -> int:
    """Start, hand over to the lean supervising process, or supervise here."""
    from gsup.log import make_sink
    from gsup.supervisor import prepare, run

    plan = resolved.plan
    options = {"quiet": resolved.quiet, "verbose": resolved.verbose}
    try:
        prepared = prepare(plan)
    except GsupError as e:
        make_sink(resolved.log_format, **options).error(e.message)
        return e.exit_code
    from gsup import reaper

    # A child that is gone within moments (`gsup -- true`, a command that
    # fails at once) needs no long-lived supervisor: finish here, and save
    # the lean interpreter's start. A signal that comes meanwhile waits, pending.
    started = prepared.started
    if started is None or not reaper.exits_within(started.pid, HANDOFF_AFTER):
        from gsup.lean import Handoff, handoff

        handoff(Handoff(plan, prepared, resolved.log_format, sys_path=tuple(sys.path), **options))
    # Still here: the child has exited already, or no exec was possible.
    sink = make_sink(resolved.log_format, **options)
    try:
        outcome = run(plan, sink, prepared)
    except GsupError as e:
        sink.error(e.message)
        return e.exit_code
    sink.report(outcome)
    return outcome.exit_code


def main(argv: Optional[List[str]] = None, *, mask: Optional[Set[int]] = None) -> NoReturn:
    """The command line (``gsup.entry`` is the console script).

    *mask*: the signal mask from before the entry point blocked every
    signal; it is restored for the modes that do not supervise, so Ctrl+C
    works on ``gsup check`` and ``gsup drill``.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    _reserve_stdio()
    if COMPLETE_VAR in os.environ:  # a shell asking for completions (gsup --install-completion)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        typer.main.get_command(app).main(args, prog_name="gsup", complete_var=COMPLETE_VAR)
    mode = "run"
    if args and args[0] in MODES:
        mode, args = args[0], args[1:]
    if mode != "run" and mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        result = _invoke(args, mode)
        code = result if isinstance(result, int) else 0
    except GsupError as e:
        _print_error(e.message)
        code = e.exit_code
    except typer.Exit as e:
        code = e.exit_code
    except _ClickException as e:
        _print_error(_usage_message(e, mode))
        code = EXIT_USAGE
    except typer.Abort:
        code = 128 + 2
    except Exception as e:  # gsup itself failed: supervise() has killed what it started
        _print_error(f"internal error: {type(e).__name__}: {e}")
        traceback.print_exc()
        code = EXIT_INTERNAL
    if mode == "run":
        exit_now(code)  # the platform is waiting for this status: no teardown first
    sys.exit(code)


def _usage_message(e: Exception, mode: str) -> str:
    """click's complaint as one short line naming the option or variable and the value as typed."""
    from gsup.units import quote

    see = "gsup --help" if mode == "run" else f"gsup {mode} --help"
    kind = type(e).__name__
    if kind == "NoSuchOption":
        name: str = getattr(e, "option_name", "")
        options = [o for p in typer.main.get_command(app).params for o in p.opts if o.startswith("--")]
        near = closest(name, options)
        return f"unknown option {quote(name)[1:-1]}" + (f": did you mean {near}?" if near else f"; see {see}")
    param, ctx = getattr(e, "param", None), getattr(e, "ctx", None)
    if kind == "BadParameter" and param is not None and ctx is not None:
        source = getattr(ctx.get_parameter_source(param.name), "name", "")
        if source == "ENVIRONMENT" and isinstance(param.envvar, str):
            typed = os.environ.get(param.envvar, "")
            return f"{param.envvar}: {quote(typed)} is not true or false (use 1, 0, true, false, yes, no)"
    message: str = e.format_message()  # type: ignore[attr-defined]
    return f"{message} (see {see})"


def _invoke(args: List[str], mode: str) -> object:
    command = typer.main.get_command(app)
    command.help = {"check": CHECK_HELP, "drill": DRILL_HELP, "status": STATUS_HELP}.get(mode, HELP)
    original = list(args)  # click consumes the list it parses
    with command.make_context(f"gsup {mode}" if mode != "run" else "gsup", args) as ctx:
        ctx.meta["gsup_mode"] = mode
        ctx.meta["gsup_argv"] = original
        return command.invoke(ctx)


def _reserve_stdio() -> None:
    """Open /dev/null on any of fds 0-2 that is closed (``2>&-``).

    Otherwise gsup's own descriptors (the signalfd, pipes) would take those
    numbers, and gsup or its children would write their output into them.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # os.open made it close-on-exec


def _print_error(message: str) -> None:
    try:
        sys.stderr.write(f"gsup: error: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
