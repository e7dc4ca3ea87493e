#!/usr/bin/env bash
# Builds the Debian package of touchpoint (daemon, console, unit, default
# configuration and brand policies) with dpkg-deb, Debian's own tool.
#
#   packaging/deb.sh                          # cargo build --release, then the .deb in target/debian/
#   packaging/deb.sh --bin-dir DIR --out DIR  # package binaries built elsewhere (the tests do)
#   packaging/deb.sh --compress none          # dpkg-deb's compressor (xz, gzip, zstd, none; default xz)
#
# What goes where (packaging/README.md says how to use it):
#   /usr/bin/touchpointd, /usr/bin/touchpoint
#   /lib/systemd/system/touchpointd.service
#   /lib/systemd/system/touchpoint-backup.{service,timer}   nightly backups, not enabled
#   /etc/touchpoint/touchpointd.toml            conffile
#   /etc/touchpoint/policies/brand.toml         conffile
#   /etc/touchpoint/policies/templates/*.toml   conffiles
#   /etc/touchpoint/policies/dealers/           created empty by postinst: one file per dealer, yours
#   /usr/share/doc/touchpoint/                  README, copyright, changelog, an example dealer file
#   /var/lib/touchpoint                         created by postinst (user touchpoint, 0750)
#   /var/backups/touchpoint                     created by postinst (user touchpoint, 0700)
# The maintainer scripts (packaging/debian/) create the `touchpoint` system
# user and group (the socket's group: operators join it), enable the unit,
# and leave the state in /var/lib/touchpoint on purge.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir=""
out_dir="$root/target/debian"
compress=xz
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) bin_dir="$2"; shift 2 ;;
        --out) out_dir="$2"; shift 2 ;;
        --compress) compress="$2"; shift 2 ;;
        *) echo "deb.sh: unknown argument $1 (see the head of this file)" >&2; exit 2 ;;
    esac
done
if [ -z "$bin_dir" ]; then
    (cd "$root" && cargo build --release -p touchpoint-daemon -p touchpoint-console)
    bin_dir="$root/target/release"
fi
for b in touchpointd touchpoint; do
    [ -x "$bin_dir/$b" ] || { echo "deb.sh: $bin_dir/$b is missing" >&2; exit 1; }
done

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/touchpoint"

install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
    "$pkg/etc/touchpoint/policies/templates" "$pkg/etc/touchpoint/policies/dealers" \
    "$pkg/usr/share/doc/touchpoint/examples"
install -m 0755 "$bin_dir/touchpointd" "$bin_dir/touchpoint" "$pkg/usr/bin/"
# Binaries without their debug sections, as Debian ships them.
strip --strip-unneeded "$pkg/usr/bin/touchpointd" "$pkg/usr/bin/touchpoint"
install -m 0644 "$root/packaging/touchpointd.service" "$root/packaging/touchpoint-backup.service" \
    "$root/packaging/touchpoint-backup.timer" "$pkg/lib/systemd/system/"
install -m 0640 "$root/policies/touchpointd.toml" "$pkg/etc/touchpoint/touchpointd.toml"
install -m 0644 "$root/policies/brand.toml" "$pkg/etc/touchpoint/policies/"
install -m 0644 "$root"/policies/templates/*.toml "$pkg/etc/touchpoint/policies/templates/"
install -m 0644 "$root/policies/dealers/d001.toml" "$pkg/usr/share/doc/touchpoint/examples/dealer.toml"
install -m 0644 "$root/packaging/README.md" "$pkg/usr/share/doc/touchpoint/README.md"
install -m 0644 "$root/packaging/debian/copyright" "$pkg/usr/share/doc/touchpoint/copyright"
gzip -9n -c "$root/packaging/debian/changelog" > "$pkg/usr/share/doc/touchpoint/changelog.gz"
chmod 0644 "$pkg/usr/share/doc/touchpoint/changelog.gz"

(cd "$pkg" && find etc -type f | sort | sed 's|^|/|') > "$pkg/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$root/packaging/debian/$s" "$pkg/DEBIAN/$s"
done
installed_kb="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: touchpoint
Version: $version
Architecture: $arch
Maintainer: Touchpoint maintainers <maintainers@touchpoint.example.com>
Installed-Size: $installed_kb
Depends: libc6 (>= 2.34), libgcc-s1, adduser, init-system-helpers (>= 1.52)
Section: admin
Priority: optional
Description: marketing automation for brands that sell through dealers
 touchpointd keeps one sealed store per dealer, imports the dealers'
 exports, plans reminders and offers, and sends emails, letter batches and
 call lists; touchpoint is its console and command line over a Unix socket.
CONTROL

mkdir -p "$out_dir"
deb="$out_dir/touchpoint_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compress" --build "$pkg" "$deb" >/dev/null
echo "$deb"
