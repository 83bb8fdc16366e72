#!/usr/bin/env bash
# Make a headless browser available for tests/test_api_docs_browser.py (run by `make install`;
# idempotent).
#
# The test drives Debian's `chromium` through `chromium-driver` (/usr/bin/chromedriver)
# with selenium. When either binary is missing we install both packages with apt-get, as
# scripts/install-postgres.sh does for PostgreSQL; when they are present nothing runs. No
# apt-get (another distribution): we say so and go on, and the browser test skips with
# the same reason, since the services themselves do not need a browser.
set -euo pipefail

say() { echo "install-chromium: $*"; }

browser_path() { command -v chromium || command -v chromium-browser || true; }
driver_path() { command -v chromedriver || true; }

as_root() {
    if (( EUID == 0 )); then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else
        say "chromium is missing and installing it needs root (no sudo): run $0 as root" >&2
        exit 1
    fi
}

run_logged() {
    local log
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        say "$* failed (output above)" >&2
        exit 1
    fi
    rm -f "$log"
}

browser=$(browser_path)
driver=$(driver_path)
if [[ -n "$browser" && -n "$driver" ]]; then
    say "chromium already present: $browser, $driver; nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    say "chromium or chromedriver missing and no apt-get here: install them with your" \
        "package manager; until then the browser test is skipped" >&2
    exit 0
fi

run_logged as_root apt-get update -q
run_logged as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends chromium chromium-driver

browser=$(browser_path)
driver=$(driver_path)
if [[ -z "$browser" || -z "$driver" ]]; then
    say "installed chromium chromium-driver but chromium or chromedriver is still not on PATH" >&2
    exit 1
fi
say "installed $("$browser" --version 2>/dev/null || echo chromium) ($browser) and $driver"
