# One image for all four services; the command picks the service:
#   python -m services.intake | services.analysis | services.followup | services.reporting
# deploy/compose.yaml and deploy/k8s/ set it per container.
# The base is the newest Python the tests run on (README: "Which Pythons"); change it only
# together with requires-python in pyproject.toml and .ci/run.

FROM python:3.13-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# The context is only pyproject.toml and the packages (.dockerignore is an allowlist).
COPY . .
# The runtime dependencies only: no [dev] extras in the image.
RUN /opt/venv/bin/pip install .

FROM python:3.13-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    TASKFORCE_HTTP_HOST=0.0.0.0
RUN groupadd --system --gid 10001 taskforce \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/taskforce --create-home \
       --shell /usr/sbin/nologin taskforce
COPY --from=build /opt/venv /opt/venv
WORKDIR /home/taskforce
# Numeric user, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# reporting 8000, intake 8001, analysis 8002, followup 8003 (TASKFORCE_HTTP_PORT overrides).
EXPOSE 8000 8001 8002 8003
# Exec form: the Python process receives SIGTERM itself, finishes and commits its current batch.
CMD ["python", "-m", "services.reporting"]
