#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test jos: QEMU for the board, the
# C toolchains for guests (clang/lld for wasm32, arm-none-eabi-gcc for native blobs; the host's
# gcc and libc headers also link Rust and build the SDK run-time check in cli/tests), and the
# rustup components and targets of rust-toolchain.toml, and the Linux baseline of the benchmarks
# (armel architecture, gcc-arm-linux-gnueabi, cpio, a font for the plots; Debian's rpi kernel and
# busybox-static unpacked in build/linux by bench/linux/fetch.sh), the Raspberry Pi firmware for
# the SD card (Debian's raspi-firmware unpacked in build/firmware by scripts/fetch-firmware.sh)
# and the tools the card test reads it back with (mtools, fdisk's sfdisk, dosfstools'
# fsck.fat), and dnsmasq (the DHCP server in the network namespaces of the USB Ethernet model
# tests), wabt (wasm2c, for ahead-of-time compiled wasm: `jos-cli build --format aot`), and g++
# (libFuzzer's C++ runtime, built when `cargo xtask lint` runs clippy over the fuzz targets),
# and mosquitto with mosquitto-clients (the MQTT 5 broker of the fleet tests, which start their
# own broker on a free loopback port; the package's system service is not needed).
# Idempotent; silent when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc libc6-dev qemu-system-arm clang lld gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi
          iproute2 iputils-ping python3 gcc-arm-linux-gnueabi libc6-dev-armel-cross cpio fonts-dejavu-core
          mtools fdisk dosfstools dnsmasq-base wabt g++ mosquitto mosquitto-clients)
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
# The Linux baseline's kernel and busybox are armel packages.
armel_added=0
if ! dpkg --print-foreign-architectures | grep -qx armel; then
    echo "setup: adding the armel architecture (Linux baseline of the benchmarks)"
    $sudo dpkg --add-architecture armel
    armel_added=1
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ] || [ $armel_added -eq 1 ]; then
    $sudo apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# rust-toolchain.toml names the toolchain, components and targets; make sure they are present.
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "setup: adding rust-src to $toolchain"
    rustup component add --toolchain "$toolchain" rust-src >/dev/null
fi
if ! rustup target list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    echo "setup: adding wasm32-unknown-unknown to $toolchain"
    rustup target add --toolchain "$toolchain" wasm32-unknown-unknown >/dev/null
fi

# The benchmarks' Linux guest: Debian's rpi kernel and busybox-static, unpacked in build/linux.
bench/linux/fetch.sh
# The crates, among them wasm3-sys, whose C sources bench/linux/mkinitrd.sh builds into the Linux
# guest as the benchmark's interpreter peer (tests/Cargo.toml; never built by cargo).
cargo fetch --locked >/dev/null
# The Raspberry Pi firmware for `jos-cli image`, unpacked in build/firmware.
scripts/fetch-firmware.sh
