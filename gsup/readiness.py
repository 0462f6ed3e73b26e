"""Readiness probes: is a program ready to serve? (tcp, http, file)

Owns: the probe kinds and their spelling (``tcp=HOST:PORT``, ``http=URL``,
``file=PATH``) and one attempt of each, with a short timeout. Used by
``gsup drill --ready``. Imports the standard library and ``gsup.errors``.
"""

from __future__ import annotations

import os
import socket
from typing import NamedTuple

from gsup.errors import UsageError

KINDS = ("tcp", "http", "file")


class Probe(NamedTuple):
    kind: str
    target: str

    @classmethod
    def parse(cls, text: str) -> Probe:
        kind, sep, target = text.partition("=")
        if not sep or kind not in KINDS or not target:
            raise UsageError(f"--ready: {text!r} is not tcp=HOST:PORT, http=URL or file=PATH")
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit():
                raise UsageError(f"--ready: {target!r} is not HOST:PORT")
        if kind == "http" and not target.startswith(("http://", "https://")):
            raise UsageError(f"--ready: {target!r} is not an http:// or https:// URL")
        return cls(kind, target)

    def __str__(self) -> str:
        return f"{self.kind}={self.target}"

    def attempt(self, timeout: float = 1.0) -> bool:
        """One try: True if the program answers."""
        if self.kind == "file":
            return os.path.exists(self.target)
        if self.kind == "tcp":
            host, _, port = self.target.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                    return True
            except OSError:
                return False
        return http_ok(self.target, timeout)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """A GET of *url* answered with a 2xx or 3xx status."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 400
    except urllib.error.HTTPError as e:
        return 200 <= e.code < 400
    except (OSError, ValueError):
        return False
