"""Shell completion, as typer CLIs offer it: --show-completion, --install-completion, and the
completions a shell asks for."""

from __future__ import annotations

import pytest
from gsupkit import GSUP, clean_env, run_to_end


@pytest.mark.timeout(30)
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_the_script_for_the_shell(shell: str) -> None:
    """``gsup --show-completion SHELL`` prints a completion script that calls gsup back."""
    r = run_to_end([GSUP, "--show-completion", shell], env=clean_env())
    assert r.returncode == 0, r.stderr
    assert "_GSUP_COMPLETE" in r.stdout and "gsup" in r.stdout


@pytest.mark.timeout(30)
def test_a_shell_asking_for_completions_gets_gsups_options() -> None:
    """With the variable the bash script sets, gsup prints the options that complete "--gr" and
    starts nothing."""
    env = clean_env(COMP_WORDS="gsup --gr", COMP_CWORD="1", _GSUP_COMPLETE="complete_bash")
    r = run_to_end([GSUP], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["--grace"]
    assert r.stderr == ""
