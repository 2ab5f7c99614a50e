#!/usr/bin/env bash
# Builds the Linux baseline's initramfs (build/linux/initrd.gz): static busybox, the usb-net
# modules (mii, usbnet, cdc_ether), the SMSC LAN95xx driver and what it needs (crc16, libphy,
# selftests, smsc, smsc95xx: the LAN9512 model's Linux validation boots with rdinit=/smsc-init),
# the benchmark programs md5 and echo (static armel C), bench/linux/init, bench/linux/smsc-init
# and udhcpc's hook. Also copies the kernel and device tree to build/linux/{vmlinuz,rpi-zero.dtb}.
# Rebuilds only when an input (bench/linux, guest-examples/c/md5.c) is newer than the initrd.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench/linux/fetch.sh
out=build/linux
src=bench/linux
root=$out/root
initrd=$out/initrd.gz
if [ -e "$initrd" ] && [ -z "$(find $src guest-examples/c/md5.c -newer "$initrd")" ]; then exit 0; fi
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
cp $src/init "$staging/init"
cp $src/smsc-init "$staging/smsc-init"
cp $src/udhcpc-script "$staging/bin/udhcpc-script"
chmod +x "$staging/init" "$staging/smsc-init" "$staging/bin/udhcpc-script"
(cd "$staging" && find . | cpio -o -H newc --quiet | gzip -9) > "$initrd.tmp"
mv "$initrd.tmp" "$initrd"
echo "mkinitrd: $initrd (kernel $version)"
