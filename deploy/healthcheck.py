"""Cheap container health checks for the archive's image (docker-compose.yml).

``python /opt/dagster/healthcheck.py grpc 127.0.0.1 4000`` asks the code location's gRPC
server the standard gRPC health question for Dagster's service ("DagsterApi"), which is
what ``dagster api grpc-health-check`` asks, without importing Dagster: about 60 ms of
CPU instead of about a second, every interval, for the life of the container.
``python /opt/dagster/healthcheck.py http http://127.0.0.1:3000/server_info`` checks
that the webserver answers 200. Exit status 0 means healthy, 1 not (what Docker reads).
"""

from __future__ import annotations

import sys
import urllib.request

TIMEOUT_S = 5


def grpc_serving(host: str, port: int, service: str = "DagsterApi") -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT_S
            )
        except grpc.RpcError:
            return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.status == 200
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "grpc":
        return 0 if grpc_serving(argv[1], int(argv[2])) else 1
    if len(argv) == 2 and argv[0] == "http":
        return 0 if http_ok(argv[1]) else 1
    print("usage: healthcheck.py grpc HOST PORT | http URL", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
