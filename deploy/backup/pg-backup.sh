#!/bin/sh
# Backs orderflow's PostgreSQL database up to S3-compatible object storage
# (AWS S3, DigitalOcean Spaces, MinIO), then prunes old backups.
#
#   1. pg_dump --format=custom into BACKUP_WORK_DIR;
#   2. verify the file: its table of contents lists, every data block reads
#      back (a truncated dump fails here), and it holds the orders table;
#   3. upload it to s3://$BACKUP_S3_BUCKET/$BACKUP_S3_PREFIX/orderflow-<UTC>.dump
#      and check the stored object's size;
#   4. prune: delete backups whose key-name timestamp is older than
#      BACKUP_RETENTION_DAYS, always keeping the newest BACKUP_KEEP_MIN.
# Any failure stops the run with a non-zero exit before the next step, so a
# failed or unverified backup is never uploaded and never triggers pruning.
# See deploy/backup/README.md for every variable.
set -eu

log() { printf 'pg-backup: %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

require() {
  eval "value=\${$1:-}"
  [ -n "$value" ] || fail "$1 is not set ($2)"
}

# Whole numbers only: the retention and keep-minimum feed arithmetic.
require_count() {
  case $2 in
    '' | *[!0-9]*) fail "$1 must be a whole number of $3, got '$2'" ;;
  esac
}

require DATABASE_URL "the database to back up, postgres://user:password@host:5432/orderflow"
require BACKUP_S3_BUCKET "the bucket backups go to"
require AWS_ACCESS_KEY_ID "the storage access key"
require AWS_SECRET_ACCESS_KEY "the storage secret key"
require AWS_DEFAULT_REGION "the storage region, e.g. us-east-1, or fra1 for Spaces"
command -v pg_dump >/dev/null || fail "pg_dump is not installed"
command -v pg_restore >/dev/null || fail "pg_restore is not installed"
command -v aws >/dev/null || fail "the AWS CLI (aws) is not installed"

work_dir=${BACKUP_WORK_DIR:-/tmp}
prefix=${BACKUP_S3_PREFIX:-orderflow}
prefix=${prefix%/}
retention_days=${BACKUP_RETENTION_DAYS:-14}
keep_min=${BACKUP_KEEP_MIN:-3}
require_count BACKUP_RETENTION_DAYS "$retention_days" days
require_count BACKUP_KEEP_MIN "$keep_min" backups
if [ ! -d "$work_dir" ] || [ ! -w "$work_dir" ]; then
  fail "BACKUP_WORK_DIR $work_dir is not a writable directory"
fi

# Recent AWS CLIs add CRC checksums to every upload and expect them on every
# download; several S3-compatible stores reject or lack them. Only when an
# endpoint is set, and only unless the caller chose otherwise, ask for
# checksums just where the S3 API requires them.
if [ -n "${BACKUP_S3_ENDPOINT:-}" ]; then
  export AWS_REQUEST_CHECKSUM_CALCULATION="${AWS_REQUEST_CHECKSUM_CALCULATION:-when_required}"
  export AWS_RESPONSE_CHECKSUM_VALIDATION="${AWS_RESPONSE_CHECKSUM_VALIDATION:-when_required}"
fi

# Every aws call goes through here, so the endpoint is set in one place.
s3() {
  if [ -n "${BACKUP_S3_ENDPOINT:-}" ]; then
    aws --endpoint-url "$BACKUP_S3_ENDPOINT" "$@"
  else
    aws "$@"
  fi
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
key="$prefix/orderflow-$stamp.dump"
dump=$(mktemp "$work_dir/orderflow-$stamp.XXXXXX")
trap 'rm -f "$dump"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

log "dump started key=$key"
pg_dump --format=custom --no-password --dbname="$DATABASE_URL" --file="$dump" ||
  fail "pg_dump failed; nothing uploaded"
size=$(wc -c <"$dump" | tr -d ' ')
log "dump written key=$key size=$size"

# --list reads only the table of contents at the head of the file, which a
# dump cut short in its data still has; restoring to /dev/null reads every
# data block too, so truncation anywhere fails here.
toc=$(pg_restore --list "$dump") || fail "pg_restore --list cannot read the dump; nothing uploaded"
pg_restore --file=/dev/null "$dump" || fail "the dump does not read back to its end; nothing uploaded"
# A dump of the wrong database (the default postgres one, say) is complete
# and useless; orderflow's always holds the orders table.
printf '%s\n' "$toc" | grep -q ' TABLE DATA public orders ' ||
  fail "the dump holds no orders table: is DATABASE_URL orderflow's database? Nothing uploaded"
entries=$(printf '%s\n' "$toc" | grep -c -v '^;')
log "dump verified key=$key size=$size entries=$entries"

s3 s3 cp --only-show-errors "$dump" "s3://$BACKUP_S3_BUCKET/$key" ||
  fail "upload of $key failed; nothing pruned"
stored=$(s3 s3api head-object --bucket "$BACKUP_S3_BUCKET" --key "$key" \
  --query ContentLength --output text) || fail "cannot read back $key after the upload; nothing pruned"
[ "$stored" = "$size" ] || fail "stored $key has $stored bytes, the dump $size; nothing pruned"
log "uploaded key=s3://$BACKUP_S3_BUCKET/$key size=$size"

# Pruning. Only keys named orderflow-YYYYMMDDTHHMMSSZ.dump directly under the
# prefix take part; anything else there is left alone. The timestamp in the
# name, not the object's modification time, decides its age, so copying or
# re-uploading a backup does not make it young again.
cutoff=$(date -u -d "@$(($(date +%s) - retention_days * 86400))" +%Y%m%dT%H%M%SZ) ||
  fail "cannot compute the retention cutoff with date"
listing=$(s3 s3api list-objects-v2 --bucket "$BACKUP_S3_BUCKET" --prefix "$prefix/" \
  --query 'Contents[].[Key]' --output text) || fail "cannot list s3://$BACKUP_S3_BUCKET/$prefix/ to prune"
stamps=$(printf '%s\n' "$listing" | while IFS= read -r listed; do
  name=${listed#"$prefix/"}
  case $name in
    orderflow-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.dump)
      name=${name#orderflow-}
      printf '%s\n' "${name%.dump}"
      ;;
  esac
done | sort -r)
kept=0
pruned=0
for candidate_stamp in $stamps; do
  kept=$((kept + 1))
  [ "$kept" -le "$keep_min" ] && continue
  # The same fixed-width format on both sides: string order is time order.
  if expr "$candidate_stamp" \< "$cutoff" >/dev/null; then
    candidate="$prefix/orderflow-$candidate_stamp.dump"
    s3 s3 rm --only-show-errors "s3://$BACKUP_S3_BUCKET/$candidate" || fail "cannot delete $candidate"
    log "pruned key=$candidate older than $retention_days days"
    pruned=$((pruned + 1))
  fi
done
log "done key=$key size=$size pruned=$pruned retention_days=$retention_days keep_min=$keep_min"
