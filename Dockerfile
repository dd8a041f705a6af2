# cors-edge sidecar image.
#
#   docker build -t cors-edge .
#   docker run --rm -p 8080:8080 \
#       -v "$PWD/config/policies.yaml:/etc/cors-edge/policies.yaml:ro" cors-edge
#
# The policy file lives at /etc/cors-edge/policies.yaml (CORS_EDGE_CONFIG below);
# the image ships config/policies.yaml there as a default. Mount your own file, or
# in Kubernetes a ConfigMap directory, over it.

FROM python:3.12.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged user with a numeric id: Kubernetes' runAsNonRoot can only verify
# a numeric USER, and the proxy never needs root (it binds ports above 1024).
RUN groupadd --system --gid 10001 cors-edge \
    && useradd --system --uid 10001 --gid cors-edge --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin cors-edge

# Only the distribution itself is copied (see .dockerignore): no tests, examples or
# benchmarks end up in the image.
WORKDIR /usr/src/cors-edge
COPY pyproject.toml README.md ./
COPY proxy/ ./proxy/
RUN pip install --no-cache-dir .

COPY config/policies.yaml /etc/cors-edge/policies.yaml

# The three listeners:
# - 8080, the public port: the only one exposed, and the only one a Service targets.
# - 9901, the admin port (/healthz, /readyz, /metrics). DESIGN.md keeps it off the
#   public port. Outside a container it binds 127.0.0.1; inside the container it has
#   to bind 0.0.0.0, because Kubernetes' kubelet probes the pod IP, not the pod's
#   loopback. It stays private all the same: it is not EXPOSEd, `docker run -p`
#   publishes only 8080, and the Kubernetes Service lists only 8080.
# Flags given to `cors-edge serve` override these variables.
ENV CORS_EDGE_CONFIG=/etc/cors-edge/policies.yaml \
    CORS_EDGE_LISTEN=0.0.0.0:8080 \
    CORS_EDGE_ADMIN=0.0.0.0:9901
EXPOSE 8080

WORKDIR /
USER 10001:10001

# slim images carry no curl: probe /healthz with the standard library. The port is
# taken from CORS_EDGE_ADMIN so that overriding it keeps the health check working.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('CORS_EDGE_ADMIN', '127.0.0.1:9901').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"]

# Exec form, no shell in between: the Python process is PID 1 and receives SIGTERM
# itself, stops accepting and drains in-flight requests, then exits 0. Docker sends
# SIGKILL 10 s after SIGTERM by default (`docker stop -t`, `--stop-timeout`), so
# the drain is bounded below that. SIGHUP (`docker kill -s HUP`) reloads the policy.
ENTRYPOINT ["cors-edge"]
CMD ["serve", "--grace", "8", "--log-format", "json"]
