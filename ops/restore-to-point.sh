#!/bin/sh
# Point-in-time recovery, prepared: a base backup (pg_basebackup -Ft -z) unpacked into a new
# data directory, told to replay the archived WAL up to a time or a named restore point and
# then to promote. Start the server on that directory yourself (pg_ctl, systemd...); it is
# ready for traffic once `SELECT pg_is_in_recovery()` answers f.
#
#   ops/restore-to-point.sh BASE_BACKUP_DIR WAL_ARCHIVE_DIR NEW_DATA_DIR --time '2026-12-06 21:14:03+00'
#   ops/restore-to-point.sh BASE_BACKUP_DIR WAL_ARCHIVE_DIR NEW_DATA_DIR --name before-release-42
#
# Run it as the OS user that will own the server (postgres). docs/operations.md "Point-in-time
# recovery" is the runbook; tests/faults/test_restore_drill.py runs this script for real.
set -eu

usage() {
    echo "usage: $0 BASE_BACKUP_DIR WAL_ARCHIVE_DIR NEW_DATA_DIR (--time TIMESTAMP | --name RESTORE_POINT)" >&2
    exit 2
}

[ $# -eq 5 ] || usage
base=$1 archive=$2 data=$3
case $4 in
    --time) target="recovery_target_time = '$5'" ;;
    --name) target="recovery_target_name = '$5'" ;;
    *) usage ;;
esac
case $5 in *"'"*) echo "$0: the target must not contain a quote" >&2; exit 2 ;; esac

[ -f "$base/base.tar.gz" ] || { echo "$0: no base.tar.gz in $base (pg_basebackup -Ft -z)" >&2; exit 1; }
[ -d "$archive" ] || { echo "$0: no WAL archive at $archive" >&2; exit 1; }
if [ -e "$data" ] && [ -n "$(ls -A "$data")" ]; then
    echo "$0: $data is not empty; restore into a new directory" >&2
    exit 1
fi

mkdir -p "$data"
chmod 700 "$data"
tar -xzf "$base/base.tar.gz" -C "$data"
if [ -f "$base/pg_wal.tar.gz" ]; then  # the WAL the backup streamed (-X stream / fetch)
    tar -xzf "$base/pg_wal.tar.gz" -C "$data/pg_wal"
fi
archive=$(cd "$archive" && pwd)
cat >>"$data/postgresql.auto.conf" <<EOF
# restore-to-point.sh, $(date -u '+%Y-%m-%dT%H:%M:%SZ'): replay the archive up to the target, then promote
restore_command = 'cp "$archive/%f" "%p"'
$target
recovery_target_action = 'promote'
# a restored copy does not archive into the source's archive; remove this line (and set
# archive_command) when this server becomes the primary
archive_mode = off
EOF
touch "$data/recovery.signal"
echo "restored $base into $data, replaying $archive up to: $target"
echo "start it (pg_ctl -D $data start), then wait for SELECT pg_is_in_recovery() = f"
