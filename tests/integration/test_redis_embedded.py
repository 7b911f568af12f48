"""The embedded Redis starts, serves and always goes away; external URLs fail fast and clean."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from autonoc.core.errors import RedisUnavailable
from autonoc.core.redis import redis_endpoint
from autonoc.core.settings import Settings


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # An orphan that exited waits as a zombie until init reaps it: that is gone for us.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone_within(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _embedded(home: Path) -> Settings:
    return Settings.load(home=home, redis_url=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_embedded_server_serves_then_leaves_nothing_behind(tmp_path: Path) -> None:
    with redis_endpoint(_embedded(tmp_path / "home")) as ep:
        assert ep.embedded and ep.owner and ep.pid is not None and ep.socket_path is not None
        assert ep.url == f"unix://{ep.socket_path}"
        assert ep.celery_url == f"redis+socket://{ep.socket_path}"
        assert ep.socket_path == tmp_path / "home" / "run" / "redis.sock"
        client = redis.Redis.from_url(ep.url)
        client.set("autonoc:test", "42")
        assert client.get("autonoc:test") == b"42"
        client.close()
        pid, sock = ep.pid, ep.socket_path
    assert not _alive(pid)
    assert not sock.exists()
    assert (tmp_path / "home" / "run" / "redis.log").read_text()


_CHILD = """
import json, signal, sys, time
from autonoc.core.redis import redis_endpoint
from autonoc.core.settings import Settings

# Ctrl-C as in a terminal, even when the test runs as a background job (whose
# children inherit SIGINT ignored, and Python then never raises KeyboardInterrupt).
signal.signal(signal.SIGINT, signal.default_int_handler)
mode, home = sys.argv[1], sys.argv[2]
with redis_endpoint(Settings.load(home=home, redis_url=None)) as ep:
    print(json.dumps({"pid": ep.pid, "socket": str(ep.socket_path)}), flush=True)
    sys.stdin.readline()  # the test has seen the server alive: now end as told
    if mode == "raise":
        raise RuntimeError("boom")
    if mode != "exit":
        time.sleep(60)
"""


@pytest.mark.parametrize("mode", ["exit", "raise", "sigint", "sigint-group", "sigkill"])
def test_server_goes_away_however_the_owner_ends(tmp_path: Path, mode: str) -> None:
    """Normal exit, an exception, Ctrl-C (to the process or its terminal group), kill -9."""
    home = tmp_path / "home"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, child.communicate(timeout=10)[1].decode()
        started = json.loads(line)
        pid, sock = int(started["pid"]), Path(started["socket"])
        assert _alive(pid)
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        if mode == "sigint":
            child.send_signal(signal.SIGINT)
        elif mode == "sigint-group":
            os.killpg(child.pid, signal.SIGINT)
        elif mode == "sigkill":
            child.kill()
        # Generous: only a hang should fail here, not a loaded machine.
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    if mode == "exit":
        assert child.returncode == 0, err.decode()
    else:
        assert child.returncode != 0
    if mode == "raise":
        assert b"RuntimeError: boom" in err
    # After kill -9 the server learns of it by PR_SET_PDEATHSIG, asynchronously.
    assert _gone_within(pid), f"redis-server {pid} outlived its owner ({mode})"
    assert not sock.exists()
    with redis_endpoint(_embedded(home)) as again:
        assert again.owner


def test_stale_socket_from_a_dead_run_does_not_block_start(tmp_path: Path) -> None:
    run = tmp_path / "home" / "run"
    run.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(run / "redis.sock"))  # bound, never listening: what a crash leaves
    stale.close()
    assert (run / "redis.sock").exists()
    with redis_endpoint(_embedded(tmp_path / "home")) as ep:
        assert ep.owner
        assert redis.Redis.from_url(ep.url).ping()


def test_second_context_on_a_live_home_reuses_the_server(tmp_path: Path) -> None:
    with redis_endpoint(_embedded(tmp_path / "home")) as first:
        assert first.pid is not None
        with redis_endpoint(_embedded(tmp_path / "home")) as second:
            assert second.embedded and not second.owner
            assert second.url == first.url
            redis.Redis.from_url(second.url).set("shared", "yes")
        # The reuser leaves the owner's server running.
        assert _alive(first.pid)
        assert redis.Redis.from_url(first.url).get("shared") == b"yes"
    assert not _alive(first.pid)


def test_deep_home_puts_the_socket_in_a_short_private_dir(tmp_path: Path) -> None:
    home = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    assert len(os.fsencode(home / "run" / "redis.sock")) > 107
    with redis_endpoint(_embedded(home)) as ep:
        assert ep.socket_path is not None
        assert len(os.fsencode(ep.socket_path)) <= 107
        assert ep.socket_path.parent.name.startswith(f"autonoc-{os.getuid()}-")
        assert ep.socket_path.parent.stat().st_mode & 0o077 == 0
        assert redis.Redis.from_url(ep.url).ping()
        sock = ep.socket_path
    assert not sock.exists()
    assert (home / "run" / "redis.log").exists()
    shutil.rmtree(sock.parent)


def test_unix_url_is_external_and_gets_a_celery_form(tmp_path: Path) -> None:
    with redis_endpoint(_embedded(tmp_path / "home")) as emb:
        for given in (emb.url, emb.celery_url):
            with redis_endpoint(Settings.load(redis_url=given)) as ep:
                assert not ep.embedded
                assert ep.url == emb.url
                assert ep.celery_url == emb.celery_url


def test_external_url_is_used_as_given(external_redis_url: str) -> None:
    with redis_endpoint(Settings.load(redis_url=external_redis_url)) as ep:
        assert not ep.embedded and not ep.owner and ep.pid is None
        assert ep.url == ep.celery_url == external_redis_url
        client = redis.Redis.from_url(ep.url)
        key = f"autonoc:test:{os.getpid()}"
        client.set(key, "1", ex=30)
        assert client.get(key) == b"1"
        client.delete(key)


@pytest.mark.parametrize("userinfo", ["", ":s3cr3t-pw@", "admin:s3cr3t-pw@"])
def test_unreachable_url_fails_fast_and_masks_the_password(userinfo: str) -> None:
    url = f"redis://{userinfo}127.0.0.1:{_free_port()}/0"
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info, redis_endpoint(Settings.load(redis_url=url)):
        pass
    assert time.monotonic() - started < 7.0
    message = str(info.value)
    assert "s3cr3t-pw" not in message
    assert message.startswith("cannot reach Redis at redis://")
    assert "within 5.0 s" in message
    assert "unset AUTONOC_REDIS_URL to use the embedded one" in message
    if userinfo:
        assert ":***@127.0.0.1" in message


def test_silent_server_times_out_instead_of_hanging() -> None:
    # Listens but never answers: the TCP connect succeeds, the PING never returns.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        settings = Settings.load(
            redis_url=f"redis://:pw-xyz@127.0.0.1:{port}/0", redis_connect_timeout=1.0
        )
        started = time.monotonic()
        with (
            pytest.raises(RedisUnavailable, match=r"within 1\.0 s") as info,
            redis_endpoint(settings),
        ):
            pass
        assert time.monotonic() - started < 4.0
        assert "pw-xyz" not in str(info.value)


_RACER = """
import json, sys
from autonoc.core.redis import redis_endpoint
from autonoc.core.settings import Settings

with redis_endpoint(Settings.load(home=sys.argv[1], redis_url=None)) as ep:
    print(json.dumps({"owner": ep.owner, "url": ep.url, "pid": ep.pid}), flush=True)
    sys.stdin.readline()
"""


def test_two_processes_starting_at_once_share_one_server(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, home],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        seen = []
        for racer in racers:
            assert racer.stdout is not None
            seen.append(json.loads(racer.stdout.readline()))
        assert sorted(s["owner"] for s in seen) == [False, True]
        assert seen[0]["url"] == seen[1]["url"]
        pid = next(s["pid"] for s in seen if s["owner"])
    finally:
        for racer in racers:
            racer.communicate(b"\n", timeout=15)
    assert _gone_within(pid)
