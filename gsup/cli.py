"""The command line: argv and environment -> plan -> supervise -> exit status.

Owns: option names, ``GSUP_<NAME>`` environment variables, the choice of
sink, and the translation of errors into exit codes and one-line messages.
The only module that imports typer; rich is imported (by ``ui``) only when
stderr is a terminal.
"""


import os
import signal
import sys
import traceback
from typing import Annotated, List, NoReturn, Optional

import typer

from gsup import __version__
from gsup.errors import EXIT_INTERNAL, EXIT_USAGE, GsupError, UsageError
from gsup.model import ForwardTo, Plan, ProgramSpec, Sink
from gsup.units import UNCATCHABLE, parse_duration, parse_signal

USAGE = "gsup [OPTIONS] -- CMD [ARG...]"

# typer re-exports click's usage errors under its own name in some releases and
# vendors click in others; find the common base either way.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"gsup {__version__}")
        raise typer.Exit(0)


@app.command(
    help=f"Supervise CMD: forward signals, reap zombies, stop it inside the grace.\n\n{USAGE}"
)
def run(
    command: Annotated[
        Optional[List[str]], typer.Argument(help="The command and its arguments.")
    ] = None,
    grace: Annotated[
        Optional[str],
        typer.Option(envvar="GSUP_GRACE", help="Time from the stop request until SIGKILL."),
    ] = None,
    stop_delay: Annotated[
        str,
        typer.Option(envvar="GSUP_STOP_DELAY", help="Wait this long before signalling the child."),
    ] = "0",
    stop_signal: Annotated[
        Optional[str],
        typer.Option(
            envvar="GSUP_STOP_SIGNAL",
            help="Signal for the child on stop (default: the one received).",
        ),
    ] = None,
    rewrite: Annotated[
        Optional[List[str]],
        typer.Option(
            envvar="GSUP_REWRITE", help="FROM:TO, repeatable: translate a forwarded signal."
        ),
    ] = None,
    forward_to: Annotated[
        ForwardTo, typer.Option(envvar="GSUP_FORWARD_TO", help="Where forwarded signals go.")
    ] = ForwardTo.GROUP,
    success_code: Annotated[
        Optional[List[int]],
        typer.Option(
            envvar="GSUP_SUCCESS_CODE", help="Repeatable: exit code reported as 0 after a stop."
        ),
    ] = None,
    success_on_stop: Annotated[
        bool,
        typer.Option(
            envvar="GSUP_SUCCESS_ON_STOP", help="Exit 0 when the child ended by the stop signal."
        ),
    ] = False,
    user: Annotated[
        Optional[str], typer.Option(envvar="GSUP_USER", help="Run the child as USER[:GROUP].")
    ] = None,
    parent_death_signal: Annotated[
        Optional[str],
        typer.Option(
            envvar="GSUP_PARENT_DEATH_SIGNAL", help="Signal for the child if gsup is killed."
        ),
    ] = None,
    log_format: Annotated[
        str, typer.Option(envvar="GSUP_LOG_FORMAT", help="text or json.")
    ] = "text",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", envvar="GSUP_QUIET", help="Only errors and the report.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", envvar="GSUP_VERBOSE", help="Also each reaped orphan."),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> int:
    if not command:
        raise UsageError(f"missing command: {USAGE}")
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format: {log_format!r} is not one of text, json")
    plan = Plan(
        program=ProgramSpec(argv=tuple(os.fsencode(a) for a in command), user=user),
        grace=_duration("--grace", grace) if grace is not None else 10.0,
        stop_delay=_duration("--stop-delay", stop_delay),
        stop_signal=_signal("--stop-signal", stop_signal) if stop_signal else None,
        rewrite=tuple(_rewrite(r) for r in rewrite or ()),
        forward_to=forward_to,
        success_codes=frozenset(_exit_code(c) for c in success_code or ()),
        success_on_stop=success_on_stop,
        parent_death_signal=_signal("--parent-death-signal", parent_death_signal)
        if parent_death_signal
        else None,
    )
    sink = make_sink(log_format, quiet=quiet, verbose=verbose)
    return _supervise(plan, sink)


def _duration(option: str, text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as e:
        raise UsageError(f"{option}: {e.message}") from None


def _signal(option: str, text: str) -> signal.Signals:
    try:
        return parse_signal(text)
    except UsageError as e:
        raise UsageError(f"{option}: {e.message}") from None


def _rewrite(text: str) -> tuple[signal.Signals, signal.Signals]:
    src, sep, dst = text.partition(":")
    if not sep:
        raise UsageError(f"--rewrite: {text!r} is not FROM:TO (e.g. TERM:QUIT)")
    pair = parse_signal(src), parse_signal(dst)
    if pair[0] in UNCATCHABLE:
        raise UsageError(f"--rewrite: {pair[0].name} cannot be caught, so it cannot be rewritten")
    return pair


def _exit_code(n: int) -> int:
    if not 0 <= n <= 255:
        raise UsageError(f"--success-code: {n} is not an exit code (0-255)")
    return n


def make_sink(log_format: str, *, quiet: bool, verbose: bool) -> Sink:
    """JSON lines, a rich rendering on a terminal, or plain text lines."""
    from gsup.log import JsonSink, TextSink

    if log_format == "json":
        return JsonSink(quiet=quiet, verbose=verbose)
    if sys.stderr is not None and sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        from gsup.ui import TerminalSink

        return TerminalSink(quiet=quiet, verbose=verbose)
    return TextSink(quiet=quiet, verbose=verbose)


def _supervise(plan: Plan, sink: Sink) -> int:
    from gsup.supervisor import supervise

    try:
        outcome = supervise(plan, sink)
    except GsupError as e:
        sink.error(e.message)
        return e.exit_code
    sink.report(outcome)
    return outcome.exit_code


def main(argv: Optional[List[str]] = None) -> NoReturn:
    """The ``gsup`` console script."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="gsup", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except GsupError as e:
        _print_error(e.message)
        code = e.exit_code
    except typer.Exit as e:
        code = e.exit_code
    except _ClickException as e:
        _print_error(f"{e.format_message()} (usage: {USAGE}; see gsup --help)")  # type: ignore[attr-defined]
        code = EXIT_USAGE
    except typer.Abort:
        code = 128 + 2
    except Exception as e:  # gsup itself failed: supervise() has killed what it started
        _print_error(f"internal error: {type(e).__name__}: {e}")
        traceback.print_exc()
        code = EXIT_INTERNAL
    sys.exit(code)


def _print_error(message: str) -> None:
    try:
        sys.stderr.write(f"gsup: error: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
