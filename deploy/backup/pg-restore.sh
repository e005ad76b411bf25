#!/bin/sh
# Restores an orderflow backup made by pg-backup into a fresh, empty
# database, or lists the backups.
#
#   pg-restore --list                        # key, size, time of each backup
#   pg-restore latest   <target DATABASE_URL> # the newest backup
#   pg-restore <key>    <target DATABASE_URL> # one backup: its full key, or
#                                             # its name under the prefix
#
# The restore runs in a single transaction and stops at the first error, so
# the target ends up with the whole backup or nothing. A target that already
# has tables in schema public is refused: a restore never merges into data.
# Storage variables as for pg-backup (BACKUP_S3_BUCKET, BACKUP_S3_PREFIX,
# BACKUP_S3_ENDPOINT, AWS_*, BACKUP_WORK_DIR); see deploy/backup/README.md.
set -eu

log() { printf 'pg-restore: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }
usage() {
  fail "usage: pg-restore --list | pg-restore <key|latest> <target DATABASE_URL>"
}

require() {
  eval "value=\${$1:-}"
  [ -n "$value" ] || fail "$1 is not set ($2)"
}

require BACKUP_S3_BUCKET "the bucket the backups are in"
require AWS_ACCESS_KEY_ID "the storage access key"
require AWS_SECRET_ACCESS_KEY "the storage secret key"
require AWS_DEFAULT_REGION "the storage region, e.g. us-east-1, or fra1 for Spaces"
command -v aws >/dev/null || fail "the AWS CLI (aws) is not installed"

work_dir=${BACKUP_WORK_DIR:-/tmp}
prefix=${BACKUP_S3_PREFIX:-orderflow}
prefix=${prefix%/}
tab=$(printf '\t')

# Recent AWS CLIs add CRC checksums to every upload and expect them on every
# download; several S3-compatible stores reject or lack them. Only when an
# endpoint is set, and only unless the caller chose otherwise, ask for
# checksums just where the S3 API requires them.
if [ -n "${BACKUP_S3_ENDPOINT:-}" ]; then
  export AWS_REQUEST_CHECKSUM_CALCULATION="${AWS_REQUEST_CHECKSUM_CALCULATION:-when_required}"
  export AWS_RESPONSE_CHECKSUM_VALIDATION="${AWS_RESPONSE_CHECKSUM_VALIDATION:-when_required}"
fi

s3() {
  if [ -n "${BACKUP_S3_ENDPOINT:-}" ]; then
    aws --endpoint-url "$BACKUP_S3_ENDPOINT" "$@"
  else
    aws "$@"
  fi
}

# Backups under the prefix as "key<TAB>size<TAB>last modified", oldest
# first; only names pg-backup writes (orderflow-YYYYMMDDTHHMMSSZ.dump),
# whose names sort by the time they were taken.
backups() {
  listing=$(s3 s3api list-objects-v2 --bucket "$BACKUP_S3_BUCKET" --prefix "$prefix/" \
    --query 'Contents[].[Key,Size,LastModified]' --output text) ||
    fail "cannot list s3://$BACKUP_S3_BUCKET/$prefix/"
  printf '%s\n' "$listing" | while IFS= read -r row; do
    name=${row#"$prefix/"}
    case $name in
      orderflow-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.dump"$tab"*)
        printf '%s\n' "$row"
        ;;
    esac
  done | sort
}

if [ "${1:-}" = "--list" ]; then
  [ $# -eq 1 ] || usage
  printf 'key\tsize\tlast_modified\n'
  backups
  exit 0
fi
[ $# -eq 2 ] || usage
wanted=$1
target=$2
command -v pg_restore >/dev/null || fail "pg_restore is not installed"
command -v psql >/dev/null || fail "psql is not installed"

case $wanted in
  latest)
    # Listed first, so a listing error stops here rather than reading as
    # an empty bucket.
    listed=$(backups) || exit 1
    key=$(printf '%s\n' "$listed" | tail -n 1 | cut -f 1)
    [ -n "$key" ] || fail "no backups under s3://$BACKUP_S3_BUCKET/$prefix/"
    ;;
  */*) key=$wanted ;;
  *) key="$prefix/$wanted" ;;
esac

# Never merge into live data: the target must have no tables in public.
tables=$(psql --no-password --no-psqlrc --quiet --tuples-only --no-align --dbname="$target" \
  --command "select count(*) from pg_catalog.pg_tables where schemaname = 'public'") ||
  fail "cannot connect to the target database"
if [ "$tables" != 0 ]; then
  fail "the target database already has $tables table(s) in schema public; restore only into a fresh one:
  psql \"postgres://USER@HOST:5432/postgres\" -c 'create database orderflow_restored'
and pass postgres://USER@HOST:5432/orderflow_restored as the target"
fi

dump=$(mktemp "$work_dir/orderflow-restore.XXXXXX")
trap 'rm -f "$dump"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

log "download started key=$key"
s3 s3 cp --only-show-errors "s3://$BACKUP_S3_BUCKET/$key" "$dump" || fail "cannot download $key"
size=$(wc -c <"$dump" | tr -d ' ')
log "downloaded key=$key size=$size"

pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --no-password \
  --dbname="$target" "$dump" || fail "restore of $key failed; the target is unchanged"
log "restored key=$key size=$size"
