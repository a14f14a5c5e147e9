"""Run a whole CLI as one SLURM job, and check a Ray address before using it.

`submit_command` is what `python -m bench.tune ... --launcher slurm` uses: the
job runs the same `main(argv)` on a compute node. When SLURM requeues it (time
limit via submitit's checkpoint, preemption, `scontrol requeue`), the restarted
job runs `resume_argv` instead, so an interrupted study is finished, not redone.
"""
from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from typing import Any, Sequence

from bench.errors import ConfigError
from bench.launch.slurm import SlurmOptions, check_cluster, submit

__all__ = ["ResumableCommand", "submit_command", "check_ray_address", "check_cluster_address",
           "ray_dial_address"]


class ResumableCommand:
    """`target(argv)` in the job; `target(resume_argv)` once the job restarted and state exists.

    target is "module:function" so the pickle holds a name, not code.
    submitit calls `checkpoint` on its pre-timeout signal and requeues the job.
    """

    def __init__(self, target: str, argv: Sequence[str], resume_argv: Sequence[str],
                 state_path: str | Path) -> None:
        self.target, self.argv, self.resume_argv = target, list(argv), list(resume_argv)
        self.state_path = str(state_path)

    def restarted(self) -> bool:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0 and Path(self.state_path).exists()

    def __call__(self) -> Any:
        module, _, name = self.target.partition(":")
        main = getattr(importlib.import_module(module), name)
        code = main(self.resume_argv if self.restarted() else self.argv)
        if isinstance(code, int) and code:
            raise SystemExit(code)
        return code

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(
            ResumableCommand(self.target, self.resume_argv, self.resume_argv, self.state_path))


def submit_command(target: str, argv: Sequence[str], resume_argv: Sequence[str],
                   state_path: str | Path, options: SlurmOptions) -> Any:
    """Submit one job running the CLI; returns the submitit Job (job.job_id, job.paths)."""
    check_cluster(options)
    return submit(ResumableCommand(target, argv, resume_argv, state_path), options=options)


# An HTTP/2 client's opening (RFC 9113 section 3.4) and an empty SETTINGS frame. A gRPC
# server such as Ray's GCS answers with its own SETTINGS frame before anything else,
# token authentication or not; a socket that is not HTTP/2 stays silent, closes, or
# answers with something else.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_SETTINGS = 0x4


def ray_dial_address(host: str, port: int) -> str:
    """HOST:PORT as `ray.init(address=...)` dials it.

    Ray replaces a loopback host (localhost, 127.0.0.1, ::1) by this machine's
    routable address before connecting; probing the loopback one would pass a
    check that Ray's own connection then fails.
    """
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:  # Ray missing or reorganised: the address as given
        return f"{host}:{port}"
    try:
        return canonicalize_bootstrap_address(f"{host}:{port}") or f"{host}:{port}"
    except Exception:  # an address Ray cannot parse fails in ray.init with its own words
        return f"{host}:{port}"


def _answers_http2(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the peer answers an HTTP/2 opening with a SETTINGS frame within `timeout_s`."""
    sock.settimeout(timeout_s)
    try:
        sock.sendall(_H2_PREFACE)
        head = b""
        while len(head) < 9:  # a frame header: length (3), type, flags, stream id (4)
            chunk = sock.recv(9 - len(head))
            if not chunk:
                return False
            head += chunk
    except OSError:  # timeout, reset
        return False
    return head[3] == _SETTINGS and not head[4] & 0x1 and head[5:9] == b"\0\0\0\0"


def check_ray_address(address: str, timeout_s: float = 5.0, reply_timeout_s: float = 3.0
                      ) -> tuple[str, int]:
    """HOST:PORT Ray will dial for `address`, checked to be a running Ray head; one line if not.

    Two steps, both bounded: a TCP connection to the address Ray dials (see
    `ray_dial_address`), then an HTTP/2 handshake, which Ray's GCS (a gRPC
    server) answers at once and a plain TCP listener does not. Without the second
    step ray.init would retry against such a listener for minutes. With TLS on
    (RAY_USE_TLS) the handshake is encrypted and only the connection is checked.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"Ray address {address!r} is not HOST:PORT")
    dial = ray_dial_address(host, int(port))
    dial_host, _, dial_port = dial.rpartition(":")
    via = "" if dial == f"{host}:{port}" else f" (Ray dials it as {dial})"
    try:
        sock = socket.create_connection((dial_host.strip("[]"), int(dial_port)), timeout=timeout_s)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"cannot reach the Ray head at {address}{via} ({why}): is it running? "
                          "(slurm/sweep.sh starts one; by hand: ray start --head --port PORT)") from None
    with sock:
        tls = os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")
        if not tls and not _answers_http2(sock, reply_timeout_s):
            raise ConfigError(f"{address}{via} accepts connections but is not a Ray head (no "
                              f"gRPC answer within {reply_timeout_s:g} s): give the GCS port of "
                              "`ray start --head` (6379 unless --port says otherwise)")
    return dial_host, int(dial_port)


def check_cluster_address(address: str | None) -> None:
    """`--address` as bench.tune takes it: auto, local and ray:// are Ray's to resolve;
    HOST:PORT is checked now, before a run folder or data exist."""
    if address and address not in ("auto", "local") and not address.startswith("ray://"):
        check_ray_address(address)
