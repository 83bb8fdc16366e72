#!/usr/bin/env bash
# Make a PostgreSQL server and pgbench available (run by `make install`; idempotent).
#
# The services run private clusters (actors/runtime/pg/server.py: initdb under data/, own
# port, own socket), so all we need are the binaries. When postgres, initdb, pg_ctl or
# pgbench is missing we install Debian's `postgresql postgresql-contrib` (pgbench ships in
# postgresql-NN on Debian 12, in postgresql-client-NN in newer PGDG builds; both are
# checked). The Debian package would create and start a system cluster "main" on port
# 5432; we tell postgresql-common not to create it for this install (a createcluster.d
# drop-in, removed afterwards), and an existing system cluster is left alone.
set -euo pipefail

NEEDED=(postgres initdb pg_ctl)
DROPIN=/etc/postgresql-common/createcluster.d/zz-no-main-cluster-during-install.conf

say() { echo "install-postgres: $*"; }

# The highest /usr/lib/postgresql/<N>/bin holding every NEEDED binary, else the
# directory of `postgres` on PATH; empty when none.
server_dir() {
    local dir name ok
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5nr); do
        ok=1
        for name in "${NEEDED[@]}"; do [[ -x "$dir/$name" ]] || ok=0; done
        if (( ok )); then echo "$dir"; return; fi
    done
    if command -v postgres >/dev/null && command -v initdb >/dev/null \
            && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v postgres)")"
    fi
}

pgbench_path() {
    local dir=$1
    if [[ -n "$dir" && -x "$dir/pgbench" ]]; then echo "$dir/pgbench"
    elif command -v pgbench >/dev/null; then command -v pgbench
    fi
}

as_root() {
    if (( EUID == 0 )); then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else
        say "PostgreSQL is missing and installing it needs root (no sudo): run $0 as root" >&2
        exit 1
    fi
}

apt_install() {
    local log
    log=$(mktemp)
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        say "apt-get install $* failed (output above)" >&2
        exit 1
    fi
    rm -f "$log"
}

dir=$(server_dir)
bench=$(pgbench_path "$dir")
if [[ -n "$dir" && -n "$bench" ]]; then
    say "PostgreSQL already present: $dir ($("$dir/postgres" --version)), pgbench $bench; nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    say "PostgreSQL server binaries (${NEEDED[*]}) or pgbench missing and no apt-get here:" \
        "install them with your package manager" >&2
    exit 1
fi

created_dropin=0
if [[ ! -e "$DROPIN" ]]; then
    as_root mkdir -p "$(dirname "$DROPIN")"
    echo "create_main_cluster = false" | as_root tee "$DROPIN" >/dev/null
    created_dropin=1
fi
cleanup() { if (( created_dropin )); then as_root rm -f "$DROPIN"; fi; }
trap cleanup EXIT

log=$(mktemp)
if ! as_root apt-get update -q >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    say "apt-get update failed (output above)" >&2
    exit 1
fi
rm -f "$log"
apt_install postgresql postgresql-contrib

dir=$(server_dir)
if [[ -z "$dir" ]]; then
    say "installed postgresql but ${NEEDED[*]} are still not found under" \
        "/usr/lib/postgresql/*/bin or on PATH" >&2
    exit 1
fi
if [[ -z "$(pgbench_path "$dir")" ]]; then
    # Newer PGDG builds moved pgbench into the client package of the same version.
    apt_install "postgresql-client-$(basename "$(dirname "$dir")")"
fi
bench=$(pgbench_path "$dir")
if [[ -z "$bench" ]]; then
    say "installed $dir but pgbench is still missing" >&2
    exit 1
fi
say "installed PostgreSQL ($("$dir/postgres" --version)) in $dir and pgbench $bench;" \
    "no system cluster created or started"
