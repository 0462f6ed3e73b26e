"""--user drops root for the child (and only root may switch); --parent-death-signal outlives gsup."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from typing import Callable

import pytest
from gsupkit import GSUP, clean_env

from .conftest import CHILD, Run, gsup_once

NONE = ["--platform", "none"]
#: The child prints its identity with id(1): the interpreter running the tests
#: may live where nobody cannot read it.
PRINT_IDS = ["sh", "-c", 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"']

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")


def as_nobody() -> list[str]:
    """Run as uid/gid nobody with no supplementary groups.

    The process keeps only CAP_DAC_READ_SEARCH (ambient), so that it can read
    the interpreter and gsup wherever they are installed (e.g. under /root);
    it is not root: its uid and euid are nobody's, and it cannot setuid.
    """
    pw = nobody()
    return [
        "setpriv",
        f"--reuid={pw.pw_uid}",
        f"--regid={pw.pw_gid}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]


@needs_root
@pytest.mark.timeout(30)
def test_user_nobody_runs_the_child_as_nobody() -> None:
    """With --user nobody, the child's uid, gid and groups are nobody's and nothing of root's."""
    pw = nobody()
    r = gsup_once([*NONE, "--user", "nobody", "--", *PRINT_IDS])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"uid={pw.pw_uid} gid={pw.pw_gid} groups={pw.pw_gid}", r.stdout


def gsup_as_nobody(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*as_nobody(), GSUP, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
    )


PRINT_ACCOUNT = ["sh", "-c", 'echo "home=$HOME user=$USER logname=$LOGNAME"']


@needs_root
@pytest.mark.timeout(30)
def test_user_nobody_gets_nobodys_home_and_name() -> None:
    """With --user nobody, HOME, USER and LOGNAME are nobody's, not those of root's environment (as gosu)."""
    pw = nobody()
    env = clean_env(HOME="/root", USER="root", LOGNAME="root")
    r = gsup_once([*NONE, "--user", "nobody", "--", *PRINT_ACCOUNT], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"home={pw.pw_dir} user=nobody logname=nobody"


@needs_root
@pytest.mark.timeout(30)
def test_a_uid_without_an_account_gets_home_slash() -> None:
    """With --user of a uid that has no account, HOME is / (nothing of root's), USER stays as given."""
    uid = next(u for u in range(54321, 60000) if not _has_account(u))
    env = clean_env(HOME="/root", USER="someone")
    r = gsup_once([*NONE, "--user", str(uid), "--", *PRINT_ACCOUNT], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "home=/ user=someone logname="


@needs_root
@pytest.mark.timeout(30)
def test_a_programs_own_home_wins_over_its_accounts(tmp_path) -> None:
    """A program with user = "nobody" and env = { HOME = ... } gets its own HOME, and nobody's USER."""
    config = tmp_path / "gsup.toml"
    config.write_text(
        "[programs.p]\ncommand = 'echo \"home=$HOME user=$USER\"'\nshell = true\noneshot = true\n"
        'user = "nobody"\nenv = { HOME = "/srv/app" }\n'
    )
    r = gsup_once([*NONE, "--config", str(config)], env=clean_env(HOME="/root", USER="root"))
    assert r.returncode == 0, r.stderr
    assert "p | home=/srv/app user=nobody" in r.stdout.splitlines(), r.stdout


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


@needs_root
@pytest.mark.timeout(30)
def test_non_root_asking_for_another_user_is_refused() -> None:
    """gsup running as nobody refuses --user root with exit 2 and one clear line, before starting anything."""
    p = gsup_as_nobody([*NONE, "--user", "root", "--", "sh", "-c", "echo started"])
    assert p.returncode == 2, p.stderr
    assert p.stdout == "", "the command ran"
    assert "--user root: switching users needs root" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@needs_root
@pytest.mark.timeout(30)
def test_non_root_asking_for_itself_is_allowed() -> None:
    """gsup running as nobody accepts --user nobody (no switch is needed) and runs the child as nobody."""
    p = gsup_as_nobody([*NONE, "--user", "nobody", "--", "sh", "-c", "id -u"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(nobody().pw_uid)


def orphan_status(pid: int, run: Run, timeout: float) -> int:
    """The wait status of *pid*, an orphan of the SIGKILLed gsup now reparented to us."""
    run.watches[-1].wait(timeout)
    got, status = os.waitpid(pid, 0)
    assert got == pid
    return status


@pytest.mark.timeout(30)
def test_parent_death_signal_reaches_the_child(gsup_run: Callable[..., Run], subreaper: None) -> None:
    """With --parent-death-signal TERM, SIGKILLing gsup (not PID 1) kills the child by SIGTERM."""
    run = gsup_run([*NONE, "--parent-death-signal", "TERM", "--", *CHILD])
    child = int(run.ready().match.group(1))
    run.send(signal.SIGKILL)
    status = orphan_status(child, run, timeout=5)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, f"status {status:#x}"
    assert run.finish() == -signal.SIGKILL


@pytest.mark.timeout(30)
def test_without_parent_death_signal_the_child_outlives_gsup(
    gsup_run: Callable[..., Run], subreaper: None
) -> None:
    """Without --parent-death-signal the child survives gsup's SIGKILL (so the flag is what kills it)."""
    run = gsup_run([*NONE, "--", *CHILD])
    child = int(run.ready().match.group(1))
    run.send(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    assert os.waitpid(child, os.WNOHANG) == (0, 0), "the child died with gsup"
    os.kill(child, signal.SIGKILL)
    status = orphan_status(child, run, timeout=5)
    assert os.WTERMSIG(status) == signal.SIGKILL
