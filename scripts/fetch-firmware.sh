#!/usr/bin/env bash
# Fetches the Raspberry Pi boot firmware for the SD card that `jos-cli image` writes: Debian's
# `raspi-firmware` package (component non-free-firmware, which the system's apt sources usually
# do not list) is downloaded with a one-off source list and private apt lists and cache, so the
# system's apt set-up is not touched. Unpacks into build/firmware/ what a Pi 1 / Zero boots from:
# bootcode.bin, start.elf, fixup.dat, the cut-down start_cd.elf / fixup_cd.dat (used with
# gpu_mem=16) and the licence (Debian's copyright file, whose `Files: boot/*` section is
# Broadcom's redistribution licence) as LICENCE.broadcom. Idempotent: does nothing when unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/firmware
files=(bootcode.bin start.elf fixup.dat start_cd.elf fixup_cd.dat LICENCE.broadcom)
if [ -e "$out/.fetched" ]; then exit 0; fi

# The Debian archive this machine already uses (its URI for the release's main component).
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
archive=$(apt-cache policy | awk -v s="$suite/main" '$3 == s { print $2; exit }')
if [ -z "$archive" ]; then
    echo "fetch-firmware: no apt source for $suite/main (run apt-get update, or scripts/setup.sh)" >&2
    exit 1
fi
work=$out/apt
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$out/deb"
echo "deb $archive $suite non-free-firmware" > "$work/sources.list"
apt_options=(-o "Dir::Etc::SourceList=$PWD/$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$PWD/$work/lists" -o "Dir::Cache=$PWD/$work/cache" -qq)
echo "fetch-firmware: downloading raspi-firmware ($suite non-free-firmware)"
apt-get "${apt_options[@]}" update
(cd "$out/deb" && apt-get "${apt_options[@]}" download raspi-firmware 2>&1 >/dev/null | grep -v unsandboxed >&2 || true)
deb=$(ls "$out"/deb/raspi-firmware_*.deb 2>/dev/null | sort -V | tail -1)
if [ -z "$deb" ]; then
    echo "fetch-firmware: raspi-firmware was not downloaded" >&2
    exit 1
fi
rm -rf "$out/root"
dpkg -x "$deb" "$out/root"
for name in bootcode.bin start.elf fixup.dat start_cd.elf fixup_cd.dat; do
    cp "$out/root/usr/lib/raspi-firmware/$name" "$out/$name"
done
cp "$out/root/usr/share/doc/raspi-firmware/copyright" "$out/LICENCE.broadcom"
for name in "${files[@]}"; do
    [ -s "$out/$name" ] || { echo "fetch-firmware: $name missing from $deb" >&2; exit 1; }
done
rm -rf "$out/root" "$work"
basename "$deb" > "$out/.fetched"
