"""Ports for the servers the tests start themselves (SMTP sinks, gunicorn, redis, PostgreSQL,
the OIDC provider).

A port is first found free and bound later, by another thread or process. With the kernel
choosing (bind to port 0) the port comes from the ephemeral range, where every live server,
every port-0 bind and every outgoing connection's own end draws too, and two xdist workers (or
CI's two concurrent passes) can be handed the same port inside that gap: a CI run once sent a
data-source call to another worker's SMTP sink. So the ports are drawn at random from below the
ephemeral range (32768 on Linux), where nothing else takes them, and checked bindable.
Anything that can bind port 0 itself and report the port should do that instead.
"""

import random
import socket

HOST = "127.0.0.1"
LOW, HIGH = 20000, 32000  # below /proc/sys/net/ipv4/ip_local_port_range


def free_port() -> int:
    """A port below the ephemeral range that nothing listens on right now."""
    for _ in range(200):
        port = random.randint(LOW, HIGH)  # noqa: S311 - not a secret
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {LOW} and {HIGH}")
