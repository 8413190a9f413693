# StageBackup: one image with nginx (port 5555: static/ itself, the rest proxied to gunicorn on
# 127.0.0.1:6996), the job worker and the scheduler, under supervisord. Data lives in /data.
#
#   docker build -t stage-backup:latest .
#   docker-compose -f docker-compose-run.yml up -d          (or see docs/deployment.md for docker run)
#
# BASE_IMAGE: CI builds against a Debian base it makes itself (.ci/docker-base-image.sh: no registry there).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# nginx-light: the front. tzdata: schedules' time zones. postgresql-client: pg_dump for `flask db backup`.
# tar/gzip/p7zip-full: the archive tools the pipeline and restores use. mt-st is not
# used by StageBackup: it is there so an operator can drive the LTO drive by hand during disaster recovery.
# Unpinned on purpose: a rebuild takes Debian stable's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx-light tar gzip p7zip-full mt-st tzdata postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# One system user for every process; in Debian's "tape" group (gid 26) so it may open /dev/nst0 when the
# host's device belongs to that group (see docs/deployment.md for another gid).
RUN groupadd --system --gid 10001 stagebackup \
    && useradd --system --uid 10001 --gid 10001 --groups tape --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin stagebackup \
    && install -d -o stagebackup -g stagebackup -m 0700 /data

WORKDIR /app
COPY . /app

# Editable install: the app finds templates/, static/ and migrations/ beside the package, in /app.
RUN pip install --no-cache-dir -e . supervisor==4.2.5 \
    && rm -rf build ./*.egg-info \
    && nginx -t -q -c /app/docker/nginx.conf \
    && rm -rf /tmp/nginx*

ENV STAGEBACKUP_DATA_DIR=/data \
    STAGEBACKUP_PROXY_COUNT=1 \
    FLASK_APP=stagebackup
VOLUME /data
EXPOSE 5555
USER 10001

# Through nginx to gunicorn and the database: 200 "ok" or the check fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5555/healthz', timeout=4)"]

# supervisord (PID 1 after the start script) stops every process on one SIGTERM; give it the time a
# running job needs to stop: docker run --stop-timeout 60, compose stop_grace_period: 60s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/docker/start.sh"]
CMD ["all"]
