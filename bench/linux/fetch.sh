#!/usr/bin/env bash
# Fetches the Linux baseline's Debian armel packages (the Pi Zero/1 kernel and a static busybox)
# into build/linux/ and unpacks them there. Idempotent: does nothing when they are unpacked.
# Needs the armel architecture enabled (scripts/setup.sh does it).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/linux
mkdir -p "$out/deb" "$out/root"
if [ -e "$out/root/.fetched" ]; then exit 0; fi
# The newest linux-image-6.1.0-*-rpi package the archive offers.
image=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-rpi$' | cut -d' ' -f1 | sort -V | tail -1)
if [ -z "$image" ]; then
    echo "fetch: no linux-image-6.1.0-*-rpi package (is armel enabled? run scripts/setup.sh)" >&2
    exit 1
fi
echo "fetch: downloading $image busybox-static (armel)"
(cd "$out/deb" && apt-get download -qq "$image:armel" busybox-static:armel 2>&1 >/dev/null | grep -v unsandboxed >&2 || true)
for deb in "$out"/deb/*.deb; do dpkg -x "$deb" "$out/root"; done
echo "$image" > "$out/root/.fetched"
