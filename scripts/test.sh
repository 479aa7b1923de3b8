#!/usr/bin/env bash
# Sets up what the tests need and runs them all: formatting, lints, unit and
# integration tests (which build real plugin libraries and drive the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v named-checkzone >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bind9 bind9-dnsutils >/dev/null
  else
    echo "note: named-checkzone (Debian package bind9) is missing; zone files will not be checked by BIND" >&2
  fi
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo test --workspace --all-features
