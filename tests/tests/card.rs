//! The raw `kernel.img` booted the way the Raspberry Pi firmware boots it: placed at 0x8000 by
//! QEMU's generic loader (no ELF loader involved), entered from a stub at address 0 with r0 = 0,
//! r1 = 0xC42 (BCM2708) and r2 = 0x100, where an ATAG list like the firmware's waits (core,
//! memory, initrd, a command line with its `smsc95xx.macaddr=`, `bcm2708_fb.*`, `vc_mem.*` ...),
//! and the boot configuration at 0x01F00000 as the firmware's `initramfs` line puts it. It must
//! read the tags, and serve an offload job, on raspi0 (DHCP) and raspi1ap (the configuration's
//! static address, as `jos-cli provision --static` writes it). A device tree in r2 is
//! recognised and said so. And `kernel.img` is byte for byte what objcopy makes of the ELF.
//! Booted that way in front of the LAN9512 model (`jos-lan9512`, as on a Pi 1 B), the MAC the
//! firmware put on the command line is the one the SMSC driver programs and the network sees.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use jos_abi::config::Network;
use jos_abi::signature::{public_key, sha256, sign_wasm, SignerRights};
use jos_abi::wire::{Format, JobStatus, Limits, Message};
use jos_offload::{host, noise};
use jos_tests::config::TestConfig;
use jos_tests::netns::{last_write, Model, Namespace};
use jos_tests::{free_port, kernel_elf, kernel_img, BootOptions, KernelLoad, Qemu, ECHO, MACHINES};

const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
const DEVELOPER: [u8; 32] = [0x64; 32];

/// ATAG values (Linux `arch/arm/include/uapi/asm/setup.h`), written out here rather than taken
/// from `jos_abi::atags`, so the kernel's parser meets an independent encoding.
const ATAG_CORE: u32 = 0x5441_0001;
const ATAG_MEM: u32 = 0x5441_0002;
const ATAG_CMDLINE: u32 = 0x5441_0009;
const ATAG_INITRD2: u32 = 0x5442_0005;
/// `MACH_TYPE_BCM2708`, what the Pi 1 / Zero firmware passes in r1.
const MACHINE_BCM2708: u32 = 3138;

/// A command line shaped like the firmware's with ATAGs (as /proc/cmdline shows on a Pi 1 B with
/// a 2015-era firmware and kernel), then what a cmdline.txt would add.
fn firmware_cmdline(revision: u32) -> String {
    format!(
        "dma.dmachans=0x7f35 bcm2708_fb.fbwidth=656 bcm2708_fb.fbheight=416 bcm2708.boardrev={revision:#x} \
         bcm2708.serial=0x1234abcd smsc95xx.macaddr=B8:27:EB:34:AB:CD bcm2708_fb.fbswap=1 \
         bcm2708.uart_clock=48000000 vc_mem.mem_base=0x1ec00000 vc_mem.mem_size=0x20000000  \
         console=ttyAMA0,115200 kgdboc=ttyAMA0,115200 console=tty1"
    )
}

/// The tag list: ATAG_CORE (flags, page size, root device), ATAG_MEM, ATAG_INITRD2, ATAG_CMDLINE
/// (NUL-terminated, padded to a word), ATAG_NONE.
fn atags(memory: u32, initrd_len: u32, cmdline: &str) -> Vec<u8> {
    let mut words = vec![5, ATAG_CORE, 0, 4096, 0, 4, ATAG_MEM, memory, 0, 4, ATAG_INITRD2, 0x01F0_0000, initrd_len];
    let mut text = cmdline.as_bytes().to_vec();
    text.push(0);
    while !text.len().is_multiple_of(4) {
        text.push(0);
    }
    words.push(2 + text.len() as u32 / 4);
    words.push(ATAG_CMDLINE);
    words.extend(text.chunks(4).map(|chunk| u32::from_le_bytes(chunk.try_into().unwrap())));
    words.extend_from_slice(&[0, 0]);
    words.iter().flat_map(|word| word.to_le_bytes()).collect()
}

fn config_file(tag: &str, network: Network) -> PathBuf {
    TestConfig::new("card", DEVICE_SECRET, ADVERT_SEED)
        .network(network)
        .client(noise::public_key(&CLIENT_SECRET))
        .signer(public_key(&DEVELOPER), SignerRights::ALL)
        .max_module_len(1 << 20)
        .limits(Limits { fuel: 100_000_000, memory: 16 << 20, deadline_ms: 30_000, output: 32 * 1024 })
        .queue_len(4)
        .write(&format!("card-{tag}"))
}

/// The next decoded reply, skipping Progress.
fn reply(client: &mut host::Client) -> Vec<u8> {
    loop {
        let plain = client.next_plain().expect("the device answers");
        if !matches!(Message::parse(&plain), Ok(Message::Progress { .. })) {
            return plain;
        }
    }
}

#[test]
fn firmware_boot_of_kernel_img_serves_an_offload_job_on_every_machine() {
    for machine in MACHINES {
        // The revision each machine's mailbox reports (the command line carries the same).
        let revision = if *machine == "raspi0" { 0x920092 } else { 0x900021 };
        // raspi0 asks DHCP; raspi1ap has the fixed address a card provisioned with
        // `--static 10.0.2.16/24 --gateway 10.0.2.2` carries (not slirp's DHCP 10.0.2.15).
        let (network, guest) = if *machine == "raspi0" {
            (Network::Dhcp, "10.0.2.15")
        } else {
            (Network::Static { address: [10, 0, 2, 16], prefix_len: 24, gateway: [10, 0, 2, 2] }, "10.0.2.16")
        };
        let config = config_file(machine, network);
        let config_len = std::fs::metadata(&config).unwrap().len() as u32;
        // ARM memory as QEMU's mailbox reports it (512 MiB less its 64 MiB for the VideoCore).
        let tags = atags(448 << 20, config_len, &firmware_cmdline(revision));
        let (tcp, discovery) = (free_port(false), free_port(true));
        let mut options = BootOptions::new(machine, kernel_img());
        options.load = KernelLoad::Firmware { tags, machine: MACHINE_BCM2708 };
        options.extra_args = vec![
            "-netdev".into(),
            format!(
                "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-{guest}:4748,hostfwd=udp:127.0.0.1:{discovery}-{guest}:4747"
            ),
            "-device".into(),
            "usb-net,netdev=n0,port=1".into(),
            "-device".into(),
            format!("loader,file={},addr=0x01F00000,force-raw=on", config.display()),
        ];
        let mut qemu = Qemu::boot(&options).expect("start QEMU");
        let fail = |e: String| -> ! { panic!("{machine}: {e}") };
        let registers = qemu.wait_for_line_containing("boot: r0 ", Duration::from_secs(60)).unwrap_or_else(|e| fail(e));
        assert!(registers.ends_with("boot: r0 0x0 r1 (machine) 0xc42 r2 (tags) 0x100"), "{machine}: {registers}");
        let tags_line =
            qemu.wait_for_line_containing("boot: atags ", Duration::from_secs(10)).unwrap_or_else(|e| fail(e));
        let expected =
            format!("mem 0x0+0x1c000000, initrd 0x1f00000+{config_len:#x}, revision {revision:#x}, serial 0x1234abcd");
        assert!(tags_line.contains(&expected), "{machine}: {tags_line}\nexpected {expected}");
        qemu.wait_for_line_containing(
            "boot: command line MAC b8:27:eb:34:ab:cd (smsc95xx.macaddr)",
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| fail(e));
        let cmdline =
            qemu.wait_for_line_containing("boot: cmdline ", Duration::from_secs(10)).unwrap_or_else(|e| fail(e));
        assert!(
            cmdline.contains("vc_mem.mem_base=0x1ec00000") && cmdline.contains("console=tty1\""),
            "{machine}: {cmdline}"
        );
        let verdict = qemu.wait_for_line("self-test:", Duration::from_secs(30)).unwrap_or_else(|e| fail(e));
        assert_eq!(verdict.trim(), "PASS", "{machine}:\n{}", qemu.output());
        qemu.wait_for_line_containing("offload: ready", Duration::from_secs(30)).unwrap_or_else(|e| fail(e));
        let address = qemu.wait_for_line("net: ip ", Duration::from_secs(60)).unwrap_or_else(|e| fail(e));
        let expected = if *machine == "raspi0" {
            "10.0.2.15/24 via dhcp"
        } else {
            "10.0.2.16/24 via static (boot configuration) gateway 10.0.2.2"
        };
        assert!(address.starts_with(expected), "{machine}: net: ip {address}");

        // An offload job: push the echo module, invoke it, read its output.
        let device_key = noise::public_key(&DEVICE_SECRET);
        let mut client =
            host::Client::connect(("127.0.0.1", tcp), &CLIENT_SECRET, &device_key, Duration::from_secs(60))
                .unwrap_or_else(|e| fail(format!("session: {e:?}")));
        let module = sign_wasm(&wat::parse_str(ECHO).unwrap(), &DEVELOPER, true).unwrap();
        let hash = sha256(&module);
        client
            .send(&Message::PushBegin {
                format: Format::Wasm,
                total_len: module.len() as u32,
                sha256: hash,
                limits: Limits::default(),
            })
            .unwrap();
        client.send(&Message::PushChunk { offset: 0, bytes: &module }).unwrap();
        client.send(&Message::PushEnd).unwrap();
        let pushed = reply(&mut client);
        assert!(
            matches!(Message::parse(&pushed), Ok(Message::PushOk { sha256 }) if sha256 == hash),
            "{machine}: {:?}",
            Message::parse(&pushed)
        );
        let input = format!("booted like a {machine} from its card");
        client.send(&Message::Invoke { hash, limits: Limits::default(), input: input.as_bytes(), call: None }).unwrap();
        let result = reply(&mut client);
        match Message::parse(&result) {
            Ok(Message::JobResult { status, exit_value, output, .. }) => {
                assert_eq!(status, JobStatus::Ok, "{machine}");
                assert_eq!(exit_value, input.len() as i32, "{machine}");
                assert_eq!(output, input.as_bytes(), "{machine}");
            }
            other => panic!("{machine}: {other:?}"),
        }

        // The console reports the board and the LED like a board would show them.
        qemu.send("led\r").unwrap();
        let led = qemu.wait_for_line("led: ", Duration::from_secs(10)).unwrap_or_else(|e| fail(e));
        let polarity = if *machine == "raspi0" { "gpio 47 active low" } else { "gpio 47 active high" };
        assert!(led.starts_with(polarity) && led.contains("code 1 ready"), "{machine}: led: {led}");
    }
}

#[test]
fn a_device_tree_in_r2_is_recognised() {
    // A flattened device tree's header (magic 0xd00dfeed, big-endian) where the tags would be.
    let mut tree = vec![0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0x10, 0];
    tree.resize(64, 0);
    let mut options = BootOptions::new("raspi0", kernel_img());
    options.load = KernelLoad::Firmware { tags: tree, machine: 0xFFFF_FFFF };
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let warning = qemu
        .wait_for_line_containing("points at a device tree", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(warning.contains("r2 = 0x100"), "{warning}");
    let verdict = qemu.wait_for_line("self-test:", Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verdict.trim(), "PASS", "{}", qemu.output());
    // Without tags the mailbox alone gives the board and memory.
    assert!(qemu.output().contains("memory: ARM 0x0+448 MiB (Mailbox)"), "{}", qemu.output());
}

#[test]
fn kernel_img_is_what_objcopy_makes_of_the_elf() {
    let out = std::env::temp_dir().join(format!("jos-objcopy-{}.img", std::process::id()));
    let status = Command::new("arm-none-eabi-objcopy")
        .args(["-O", "binary"])
        .arg(kernel_elf(""))
        .arg(&out)
        .status()
        .expect("arm-none-eabi-objcopy (binutils-arm-none-eabi, scripts/setup.sh) runs");
    assert!(status.success());
    let objcopy = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let ours = std::fs::read(kernel_img()).unwrap();
    assert_eq!(ours.len(), objcopy.len(), "kernel.img and objcopy's image differ in length");
    assert!(ours == objcopy, "kernel.img differs from `objcopy -O binary`");
    // The first word is _start's first instruction (cpsid if), not an ELF header.
    assert_eq!(&ours[..4], &0xf10c_00c0u32.to_le_bytes(), "kernel.img does not start with _start");
}

/// The firmware's `smsc95xx.macaddr=` reaches the chip: `kernel.img` booted the firmware's way
/// (ATAG command line as on a Pi 1 B) with the LAN9512 model on the root port. The driver must
/// name the command line as the MAC's source, program ADDRL/ADDRH with it (the model's trace),
/// and the wire must see frames from it (dnsmasq's lease for that MAC). The other LAN9512 tests
/// boot the ELF, with no command line, and see the serial-derived address.
#[test]
fn the_firmware_command_line_mac_reaches_the_lan9512() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: making a network namespace needs root");
        return;
    }
    let namespace = Namespace::create("cardmac", true).unwrap_or_else(|e| panic!("namespace: {e}"));
    let mut model = Model::start(std::path::Path::new(env!("CARGO_BIN_EXE_jos-lan9512")), &namespace, "lan9512")
        .unwrap_or_else(|e| panic!("{e}"));
    let revision = 0x000e; // a Pi 1 B rev 2.0, 512 MiB: LAN9512 on board
    let mut options = BootOptions::new("raspi0", kernel_img());
    options.load =
        KernelLoad::Firmware { tags: atags(448 << 20, 0, &firmware_cmdline(revision)), machine: MACHINE_BCM2708 };
    options.extra_args = model.qemu_args();
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let address = qemu
        .wait_for_line("net: ip ", Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\nmodel trace:\n{}", model.trace_text()));
    assert!(address.starts_with("10.0.2.15/24 via dhcp"), "net: ip {address}");
    let output = qemu.output();
    let attach = output
        .lines()
        .find(|line| line.starts_with("usb: smsc95xx: chip 0xec00"))
        .unwrap_or_else(|| panic!("no attach line:\n{output}"));
    assert!(attach.contains("MAC b8:27:eb:34:ab:cd (firmware command line)"), "{attach}");
    // The wire learnt the guest's MAC from its frames (ARP, the ping's replies).
    let _ = namespace.exec("ping", &["-c", "3", "-W", "3", jos_tests::netns::GUEST_ADDRESS]);
    let neighbour = namespace.exec("ip", &["neigh", "show", jos_tests::netns::GUEST_ADDRESS]);
    let neighbour = String::from_utf8_lossy(&neighbour.stdout).to_lowercase();
    assert!(neighbour.contains("lladdr b8:27:eb:34:ab:cd"), "the wire saw another MAC: {neighbour:?}");
    qemu.kill();
    let trace = model.finish(Duration::from_secs(5));
    assert_eq!(last_write(&trace, "ADDRL"), Some(0x34eb_27b8), "ADDRL holds b8:27:eb:34 (little-endian)");
    assert_eq!(last_write(&trace, "ADDRH"), Some(0xcdab), "ADDRH holds ab:cd");
}
