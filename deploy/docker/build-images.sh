#!/usr/bin/env bash
# Build ioc's images without any registry (`make images`): a Debian bookworm base made by debootstrap
# from the mirror apt already uses, imported once as ioc-base:bookworm, then the ioc image from the
# Dockerfile on top of it. Both steps are cached: the base is made only when missing (IOC_REBUILD_BASE=1
# makes it again), and docker build reuses its layers.
#   IOC_IMAGE   the image to build (default ioc:<version in pyproject.toml>)
#   IOC_BASE    the base image (default ioc-base:bookworm)
#   IOC_MIRROR  the Debian mirror (default: the first one in /etc/apt/sources.list*)
#   IOC_CA_BUNDLE  certificates the base trusts besides Debian's (default: the host's bundle,
#               /etc/ssl/certs/ca-certificates.crt), so a build behind a TLS-inspecting proxy reaches
#               PyPI and Maven Central as the host does
set -euo pipefail
cd "$(dirname "$0")/../.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
image=${IOC_IMAGE:-ioc:${version}}
base=${IOC_BASE:-ioc-base:bookworm}

# The first deb.debian.org-style mirror of the host's apt sources (one-line or deb822 format), and its
# security mirror, so the base image installs from where the host does.
mirror_of() {  # $1: suite to look for (bookworm or bookworm-security)
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk -v suite="$1" '
      /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { if ($(i + 1) == suite) { print $i; exit } break } }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "") { print uri; exit } }
      /^$/ { uri = "" }' || true  # no match, or cat cut short when awk found one
}

if [ "${IOC_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$base" >/dev/null 2>&1; then
  mirror=${IOC_MIRROR:-$(mirror_of bookworm)}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=$(mirror_of bookworm-security)
  rootfs=$(mktemp -d /var/tmp/ioc-base.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "making $base with debootstrap from $mirror…"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -20 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    [ -n "$security" ] && echo "deb $security bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  # The host's trust anchors, one file each, for update-ca-certificates when the image installs
  # ca-certificates (and ca-certificates-java, for Maven).
  bundle=${IOC_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
  if [ -s "$bundle" ]; then
    mkdir -p "$rootfs/usr/local/share/ca-certificates/host"
    awk -v dir="$rootfs/usr/local/share/ca-certificates/host" \
      '/-----BEGIN CERTIFICATE-----/ { n++; file = sprintf("%s/%03d.crt", dir, n) } file { print > file }
       /-----END CERTIFICATE-----/ { close(file); file = "" }' "$bundle"
  fi
  # No documentation or caches in the image; apt keeps no downloaded packages.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  echo "made $base"
fi

DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$base" -t "$image" .
echo "built $image"
