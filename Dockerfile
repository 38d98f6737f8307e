# The archive's Dagster image: the code location (gRPC server, runs), and with other
# commands the webserver and the daemon (docker-compose.yml). Everything Dagster reads
# from DAGSTER_HOME is deploy/dagster.yaml + deploy/workspace.yaml.

# 3.11: the project's floor (requires-python). An exact patch release on a named Debian
# release, so a rebuild gets the same interpreter and libc (docs/deployment.md "Images").

# Stage 1, the package as a wheel, its C encoder compiled (audit_archive/format/
# _nativecodec.c: about half the encode step's CPU on ordinary events). Only this stage
# has a compiler; the image itself carries none. The extension is optional for
# `pip install`, so the build fails here if the wheel came out without it.
FROM python:3.11.14-slim-bookworm AS wheel
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY audit_archive ./audit_archive
COPY deploy/wheel_check.py /tmp/wheel_check.py
RUN pip wheel --no-deps --wheel-dir /wheels . && python /tmp/wheel_check.py /wheels

# Stage 2, the image.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/dagster/app
# Dependencies first, from pyproject.toml alone: a change to the code reuses this layer
# (the slow one), only a change of dependencies rebuilds it. The `k8s` extra
# (dagster-k8s) lets the same image run under the K8sRunLauncher (deploy/helm/).
COPY pyproject.toml ./
COPY deploy/requirements.py /tmp/requirements.py
RUN python /tmp/requirements.py pyproject.toml deploy k8s > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.py /tmp/requirements.txt

# Then the code, as stage 1's wheel (.dockerignore keeps .venv, .demo and tests out);
# its dependencies are installed already.
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
# The containers' health checks (docker-compose.yml): cheap, they run for ever.
COPY deploy/healthcheck.py /opt/dagster/healthcheck.py
# A user of its own; the log and work folders are volumes, created here so that fresh
# named volumes start out owned by it.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin dagster \
    && mkdir -p /opt/dagster/logs /opt/dagster/work \
    && chown -R dagster:dagster /opt/dagster
USER dagster

EXPOSE 4000 3000
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", \
     "--module-name", "audit_archive.definitions", "--attribute", "defs", \
     "--location-name", "audit_archive"]
