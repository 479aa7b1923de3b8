#!/usr/bin/env bash
# Builds the host and the sample plugins, installs the plugins into plugins.d/ and
# runs gordon on the default gordon.toml (Ctrl-C stops it cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gordon -p gordon-plugin-http -p gordon-plugin-dns
install -m 0755 target/release/libgordon_plugin_http.so target/release/libgordon_plugin_dns.so plugins.d/
chmod 0755 plugins.d
exec target/release/gordon -c . "$@"
