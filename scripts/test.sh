#!/usr/bin/env bash
# Sets up what the tests need and runs them all: formatting, lints, unit and
# integration tests (which build real plugin libraries and drive the real binary).
set -euo pipefail
cd "$(dirname "$0")/.."
# Real servers the tests start on 127.0.0.1: BIND (named, named-checkzone, dig,
# nsupdate), Knot (knotd) and NATS (nats-server), and Prometheus' promtool, which
# checks the metrics exposition, systemd-analyze, which verifies the unit file,
# and tmux, a terminal for `gordon ctl top`. Tests skip what is missing, except under CI=true, where a missing one
# fails them.
missing=""
command -v named-checkzone >/dev/null 2>&1 || missing="$missing bind9 bind9-dnsutils"
[ -x /usr/sbin/named ] || missing="$missing bind9"
[ -x /usr/sbin/knotd ] || missing="$missing knot"
[ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1 || missing="$missing nats-server"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "note: missing test servers ($missing); their tests will be skipped" >&2
  fi
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The SDK's docs, as a vendor reads them (with and without the test kit's feature).
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p gordon-plugin-api
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps -p gordon-plugin-api --all-features
# The release build the package test installs, made before the tests run: built
# during them it would take both cores from the timing-sensitive ones.
./packaging/build-deb.sh >/dev/null
cargo test --workspace --all-features --no-fail-fast
# The FFI channel's loom models (plugin-api/tests/loom_channel.rs), in their own
# target dir: the cfg changes every crate's flags, which would rebuild the rest.
RUSTFLAGS="--cfg gordon_loom" cargo test -p gordon-plugin-api --release --test loom_channel --target-dir target/loom
