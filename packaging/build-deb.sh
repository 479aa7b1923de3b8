#!/usr/bin/env bash
# Builds the operator's Debian package, target/debian/gordon_VERSION_ARCH.deb:
# the gordon binary, the sample plugins in /usr/lib/gordon/plugins.d (mode 0644,
# directory 0755, as discovery's checks want), /etc/gordon/gordon.toml (a
# conffile), the systemd unit, the man page and shell completions — both
# generated from the binary itself. Uses dpkg-deb, Debian's own tool, on a staged
# tree; prints the package's path.
set -euo pipefail
cd "$(dirname "$0")/.."
plugins="http dns nats rfc2136 inventory audit"
packages="-p gordon"
for p in $plugins; do packages="$packages -p gordon-plugin-$p"; done
# shellcheck disable=SC2086
cargo build --release --quiet $packages
bin=target/release/gordon
version=$("$bin" -V | awk '{print $2}')
arch=$(dpkg --print-architecture)
glibc=$(ldd --version | awk 'NR == 1 {print $NF}')
root="target/debian/gordon_${version}_${arch}"
rm -rf "$root"
# Installed with their debug line tables stripped (symbols kept, so a backtrace
# still names functions), as Debian's own packages are.
install -D -m 0755 "$bin" "$root/usr/bin/gordon"
strip --strip-debug "$root/usr/bin/gordon"
install -d -m 0755 "$root/usr/lib/gordon/plugins.d"
for p in $plugins; do
  install -m 0644 "target/release/libgordon_plugin_$p.so" "$root/usr/lib/gordon/plugins.d/"
  strip --strip-debug "$root/usr/lib/gordon/plugins.d/libgordon_plugin_$p.so"
done
install -D -m 0644 packaging/gordon.toml "$root/etc/gordon/gordon.toml"
install -D -m 0644 packaging/gordon.service "$root/lib/systemd/system/gordon.service"
install -d -m 0755 "$root/usr/share/man/man1"
"$bin" manpage | gzip -9n > "$root/usr/share/man/man1/gordon.1.gz"
chmod 0644 "$root/usr/share/man/man1/gordon.1.gz"
install -d -m 0755 "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$bin" completions bash > "$root/usr/share/bash-completion/completions/gordon"
"$bin" completions zsh > "$root/usr/share/zsh/vendor-completions/_gordon"
"$bin" completions fish > "$root/usr/share/fish/vendor_completions.d/gordon.fish"
# The vendor kit: the SDK as `cargo package` makes it, with its checksum, where
# `gordon plugins new` looks for it.
cargo package --quiet --no-verify --allow-dirty -p gordon-plugin-api
sdk="gordon-plugin-api-$(sed -n 's/^version = "\(.*\)"$/\1/p' plugin-api/Cargo.toml | head -1).crate"
install -D -m 0644 "target/package/$sdk" "$root/usr/share/gordon/sdk/$sdk"
(cd "$root/usr/share/gordon/sdk" && sha256sum "$sdk" > "$sdk.sha256" && chmod 0644 "$sdk.sha256")
install -D -m 0644 LICENSE "$root/usr/share/doc/gordon/copyright"
install -D -m 0644 README.md "$root/usr/share/doc/gordon/README.md"
install -d -m 0755 "$root/DEBIAN"
size=$(du -sk "$root" | awk '{print $1}')
cat > "$root/DEBIAN/control" <<CONTROL
Package: gordon
Version: $version
Architecture: $arch
Maintainer: gordon-rs maintainers <gordon-rs@localhost>
Installed-Size: $size
Depends: libc6 (>= $glibc)
Section: net
Priority: optional
Homepage: https://github.com/spotify/gordon
Description: event-driven DNS registration driven by dynamic-library plugins
 gordon turns events (HTTP, NATS JetStream) into DNS records (RFC 2136
 updates, zone files) through plugins loaded from /usr/lib/gordon/plugins.d,
 with a janitor that reconciles DNS against an authority and a reporter for
 discovery. Plugins are checked before any of their code runs.
CONTROL
echo "/etc/gordon/gordon.toml" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  install -d -m 0755 /var/lib/gordon /var/lib/gordon/zones
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
POSTINST
cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then rm -rf /var/lib/gordon; fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zgzip --build "$root" "target/debian/" >/dev/null
echo "target/debian/gordon_${version}_${arch}.deb"
