# syntax=docker/dockerfile:1
#
# orderflow's database backup job: deploy/backup/pg-backup.sh and
# pg-restore.sh with pg_dump, pg_restore, psql and the AWS CLI. The build
# context is the repository root:
#
#   docker build -f deploy/docker/backup.Dockerfile -t orderflow/backup:dev .
#
#   docker run --rm -e DATABASE_URL -e BACKUP_S3_BUCKET -e BACKUP_S3_ENDPOINT \
#       -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION \
#       orderflow/backup:dev                               # take a backup
#   docker run --rm ... --entrypoint pg-restore orderflow/backup:dev --list
#
# Variables and the restore runbook: deploy/backup/README.md.

# pg_dump refuses a server newer than itself, and a dump restores most
# reliably with the pg_restore of the same major version, so the client's
# major version is the server's: PostgreSQL 15, as in docker-compose.yml.
# Moving the server to 16 means moving this line with it.
FROM postgres:15-alpine

# The AWS CLI from Alpine's community repository; it speaks to S3 and to
# S3-compatible stores (DigitalOcean Spaces, MinIO) through
# BACKUP_S3_ENDPOINT. The image's PostgreSQL server is never started.
# Unpinned on purpose: Alpine's repositories keep only the current build of
# a package, so a pinned version stops building at its next security fix;
# the base image tag pins the Alpine release.
# hadolint ignore=DL3018
RUN apk add --no-cache aws-cli

COPY --chmod=0755 deploy/backup/pg-backup.sh /usr/local/bin/pg-backup
COPY --chmod=0755 deploy/backup/pg-restore.sh /usr/local/bin/pg-restore

# A numeric non-root user (the services' uid), so Kubernetes can verify
# runAsNonRoot without a passwd entry. HOME=/tmp gives the AWS CLI a
# writable home for its cache; the dump goes to BACKUP_WORK_DIR (/tmp by
# default), so mount an emptyDir there sized for one dump.
ENV HOME=/tmp \
    BACKUP_WORK_DIR=/tmp
USER 10001:10001
WORKDIR /tmp

# A batch job, not a server: it runs, exits 0 or not, and the exit status is
# its health. A probe would only fire while a backup is running.
HEALTHCHECK NONE

# The base image stops PostgreSQL with SIGINT; the scripts clean up on
# SIGTERM (and SIGINT), which is what docker and Kubernetes send.
STOPSIGNAL SIGTERM

LABEL org.opencontainers.image.title="orderflow-backup" \
      org.opencontainers.image.description="Backs orderflow's PostgreSQL database up to S3-compatible storage, with retention, and restores it" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/postgres:15-alpine" \
      org.opencontainers.image.documentation="deploy/backup/README.md"

# The base image's entrypoint initialises and starts a server; replace it
# and its `postgres` command. Restore with --entrypoint pg-restore.
ENTRYPOINT ["/usr/local/bin/pg-backup"]
CMD []
