#!/usr/bin/env bash
# Builds the Linux baseline's initramfs (build/linux/initrd.gz): static busybox, the usb-net
# modules (mii, usbnet, cdc_ether), the SMSC LAN95xx driver and what it needs (crc16, libphy,
# selftests, smsc, smsc95xx: the LAN9512 model's Linux validation boots with rdinit=/smsc-init),
# the benchmark programs md5 and echo (static armel C), the interpreter peer wasm3-md5 (wasm3
# from the wasm3-sys crate with bench/wasm3/wasm3-md5.c, static armel) and the wasm modules it
# runs (/wasm3/*.wasm, also left in build/linux/wasm3/ for jos-bench), bench/linux/init,
# bench/linux/smsc-init and udhcpc's hook. Also copies the kernel and device tree to
# build/linux/{vmlinuz,rpi-zero.dtb}. Rebuilds only when an input (bench/linux, bench/wasm3,
# guest-examples/c/md5.c, the SDK in abi/include) is newer than the initrd.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench/linux/fetch.sh
out=build/linux
src=bench/linux
root=$out/root
initrd=$out/initrd.gz
if [ -e "$initrd" ] && [ -e "$out/wasm3/md5-plain.wasm" ] &&
    [ -z "$(find $src bench/wasm3 guest-examples/c/md5.c abi/include -newer "$initrd")" ]; then exit 0; fi
cc=arm-linux-gnueabi-gcc
command -v $cc >/dev/null || { echo "mkinitrd: $cc missing (run scripts/setup.sh)" >&2; exit 1; }
version=$(ls "$root/lib/modules" | head -1)
cp "$root/boot/vmlinuz-$version" "$out/vmlinuz"
cp "$root/usr/lib/linux-image-$version/bcm2835-rpi-zero.dtb" "$out/rpi-zero.dtb"
staging=$out/initramfs
rm -rf "$staging"
mkdir -p "$staging"/{bin,sbin,proc,sys,dev,tmp,etc,lib/modules}
cp "$root/bin/busybox" "$staging/bin/busybox"
for applet in sh mount ifconfig insmod cat echo sleep route poweroff udhcpc ping dmesg grep; do
    ln -s busybox "$staging/bin/$applet"
done
for module in drivers/net/mii.ko drivers/net/usb/usbnet.ko drivers/net/usb/cdc_ether.ko lib/crc16.ko \
              drivers/net/phy/libphy.ko net/core/selftests.ko drivers/net/phy/smsc.ko drivers/net/usb/smsc95xx.ko; do
    found=$(find "$root/lib/modules/$version" -path "*/kernel/$module*" | head -1)
    [ -n "$found" ] || { echo "mkinitrd: $module not in the package" >&2; exit 1; }
    case "$found" in
        *.xz) xz -dc "$found" > "$staging/lib/modules/$(basename "$module")" ;;
        *) cp "$found" "$staging/lib/modules/$(basename "$module")" ;;
    esac
done
# The same core and optimisation level as jos-cli's native blobs (-mcpu=arm1176jzf-s -O2); armel's
# soft-float ABI (MD5 and the echo server use no floating point).
cflags="-static -O2 -mcpu=arm1176jzf-s -mfloat-abi=soft"
$cc $cflags -o "$staging/bin/md5" $src/md5.c
$cc $cflags -o "$staging/bin/echo-udp" $src/echo.c
# wasm3 (the wasm3-sys crate's C sources: tests/Cargo.toml makes cargo fetch it; cargo metadata
# names its folder) and our runner, at -O3 as wasm3's own builds use; the same core, static,
# soft-float like the programs above. wasm3's WASI and libc bindings are left out (the modules
# import only jos's calls, which the runner provides).
wasm3_manifest=$(cargo metadata --format-version 1 --manifest-path Cargo.toml 2>/dev/null |
    grep -o '"manifest_path":"[^"]*/wasm3-sys-[0-9.]*/Cargo.toml"' | head -1 | cut -d'"' -f4)
[ -n "$wasm3_manifest" ] || { echo "mkinitrd: the wasm3-sys crate is not in cargo metadata (cargo fetch)" >&2; exit 1; }
wasm3_src=$(dirname "$wasm3_manifest")/wasm3/source
$cc $cflags -O3 -Dd_m3LogOutput=0 -DNDEBUG -w -I"$wasm3_src" -o "$staging/bin/wasm3-md5" bench/wasm3/wasm3-md5.c \
    $(ls "$wasm3_src"/m3_*.c | grep -v '/m3_api_') -lm
# The modules: guest-examples/c/md5.c with the SDK's jos-rt.c, as clang builds jos's wasm guests
# (builder/src/lib.rs WASM_CFLAGS), "plain" at -O2 and "unrolled" at jos-cli's -O3 -mllvm
# -unroll-threshold=3000. wasm3 0.4.7 has no bulk-memory instructions, so the modules both
# engines run are built without -mbulk-memory; the -bulk ones (what jos-cli builds, the modules of
# docs/benchmarks.md "wasmi dispatch modes") are for jos only.
mkdir -p "$staging/wasm3" "$out/wasm3"
for build in "plain -O2" "unrolled -O3 -mllvm -unroll-threshold=3000"; do
    set -- $build
    name=$1
    shift
    for bulk in "" -bulk; do
        clang --target=wasm32 ${bulk:+-mbulk-memory} -nostdlib "$@" -Wl,--no-entry -Wl,--export=run -I abi/include \
            -o "$out/wasm3/md5-$name$bulk.wasm" guest-examples/c/md5.c abi/include/jos-rt.c
    done
    cp "$out/wasm3/md5-$name.wasm" "$staging/wasm3/"
done
cp $src/init "$staging/init"
cp $src/smsc-init "$staging/smsc-init"
cp $src/udhcpc-script "$staging/bin/udhcpc-script"
chmod +x "$staging/init" "$staging/smsc-init" "$staging/bin/udhcpc-script"
(cd "$staging" && find . | cpio -o -H newc --quiet | gzip -9) > "$initrd.tmp"
mv "$initrd.tmp" "$initrd"
echo "mkinitrd: $initrd (kernel $version)"
