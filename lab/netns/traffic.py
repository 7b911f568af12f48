"""A constant-rate UDP sender, run inside a router's namespace: ``traffic.py DST KBPS SIZE``.

Standalone (stdlib only) so it starts fast under ``ip netns exec`` without the
package on its path. It paces datagrams to DST port 9 (discard) and runs until
killed; the routers' kernels forward them, so IF-MIB counters along the path
move as they would with real traffic.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time


def main(argv: list[str]) -> None:
    dst, kbps, size = argv[0], float(argv[1]), int(argv[2])
    interval = size * 8 / (kbps * 1000.0)
    payload = b"\x00" * size
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    due = time.monotonic()
    while True:
        with contextlib.suppress(OSError):  # no route while the IGP converges: keep the pace
            sock.sendto(payload, (dst, 9))
        due += interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        elif pause < -1.0:
            due = time.monotonic()  # fell far behind (suspended): do not burst


if __name__ == "__main__":
    main(sys.argv[1:])
