# StageBackup container image (first version).
#
#   docker build -t stagebackup .
#   docker run -d -p 5555:5555 -v stagebackup-data:/data stagebackup          # web + worker + scheduler (honcho)
#   docker run ... stagebackup web      # web only (runs "flask db upgrade" first)
#   docker run ... stagebackup worker   # job worker only
#   docker run ... stagebackup scheduler   # scheduler only (enqueues scheduled runs)
#   docker run ... stagebackup bash     # anything else is exec'd as-is
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# tar/gzip/p7zip-full: archive tools used by the backup pipeline.
# mt-st: NOT used by StageBackup itself; shipped only so operators can drive
# an LTO drive (mt -f /dev/nst0 ...) from inside the container during
# disaster recovery.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        tar gzip p7zip-full mt-st \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY . /app

# Editable install: the app finds templates/, static/ and migrations/ beside
# the stagebackup package, at the top of the checkout (/app).
RUN pip install --no-cache-dir -e . \
    && rm -rf build ./*.egg-info \
    && chmod 0755 /app/docker/entrypoint.sh

ENV STAGEBACKUP_DATA_DIR=/data
VOLUME /data
EXPOSE 5555

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["all"]
