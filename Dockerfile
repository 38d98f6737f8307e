# The archive's Dagster image: the code location (gRPC server, runs), and with other
# commands the webserver and the daemon (docker-compose.yml). Everything Dagster reads
# from DAGSTER_HOME is deploy/dagster.yaml + deploy/workspace.yaml.

# 3.11: the project's floor (requires-python), and what CI tests on.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/dagster/app
# Only what the package needs (.dockerignore keeps .venv, .demo and tests out).
COPY pyproject.toml README.md ./
COPY audit_archive ./audit_archive
RUN pip install ".[deploy]"

COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
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
