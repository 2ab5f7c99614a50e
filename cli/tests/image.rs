//! `jos-cli image` as a user meets it: the card image read back by independent tools (util-linux
//! `sfdisk` for the partition table, mtools' `mdir`/`mcopy`/`minfo` for the FAT32 volume,
//! dosfstools' `fsck.fat` for its consistency) equals its sources byte for byte; provisioning on
//! the way (its `jos-config.bin` parses and matches the pinned device) or from `--config`; the
//! errors that name the fix when the kernel or firmware is missing; and `--device` refusing a
//! regular file, `/dev/null`, a folder, a missing path, a non-removable loop device, a partition and a mounted
//! disk (the confirmation prompt needs a removable disk, which a test machine has none of).

#[path = "support/output.rs"]
mod output;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use output::{assert_exit, assert_success, json, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");
/// The partition's byte offset in the image (sector 8192).
const OFFSET: u64 = 8192 * 512;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new().prefix("jos-image-test").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
        }
    }

    /// A sandbox outside the repository (no `build/` folder above it).
    fn elsewhere() -> Self {
        Sandbox { dir: tempfile::Builder::new().prefix("jos-image-test").tempdir_in(std::env::temp_dir()).unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run_program(&self, program: &Path, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run jos-cli");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_program(Path::new(JOS_CLI), args, b"")
    }

    /// Firmware files of pseudo-random bytes and varied sizes (one spans many clusters, one is
    /// empty-ish), so a byte-exact read-back means something.
    fn fake_firmware(&self) -> PathBuf {
        let folder = self.path("firmware");
        std::fs::create_dir_all(&folder).unwrap();
        let sizes = [
            ("bootcode.bin", 52_460),
            ("start.elf", 2_973_536),
            ("fixup.dat", 7_262),
            ("start_cd.elf", 803_964),
            ("fixup_cd.dat", 1),
        ];
        let mut state = 0x1234_5678_9abc_def0_u64;
        for (name, size) in sizes {
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            std::fs::write(folder.join(name), bytes).unwrap();
        }
        std::fs::write(folder.join("copyright"), b"Files: boot/*\nLicense: Proprietary_1 (test copy)\n").unwrap();
        folder
    }

    fn fake_kernel(&self) -> PathBuf {
        let path = self.path("kernel.img");
        let mut bytes = 0xf10c_00c0u32.to_le_bytes().to_vec();
        bytes.extend((0..300_000u32).map(|i| (i * 7 + i / 251) as u8));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} (scripts/setup.sh installs it): {error}"))
}

/// `mcopy` of `name` from the image's FAT volume to stdout.
fn mcopy(image: &Path, name: &str) -> Vec<u8> {
    let spec = format!("{}@@{OFFSET}", image.display());
    let output = tool("mcopy", &["-n", "-i", &spec, &format!("::{name}"), "-"]);
    assert!(output.status.success(), "mcopy {name}: {}", text(&output));
    output.stdout
}

#[test]
fn the_image_reads_back_through_independent_tools() {
    let sandbox = Sandbox::new();
    assert_success(&sandbox.run(&["keygen"]));
    let firmware = sandbox.fake_firmware();
    let kernel = sandbox.fake_kernel();
    let image = sandbox.path("jos-sd.img");
    let output = sandbox.run(&[
        "image",
        "--name",
        "lab-pi",
        "--static",
        "192.168.7.2/24",
        "--gateway",
        "192.168.7.1",
        "--signer",
        "self:wasm,native,net",
        "--kernel",
        kernel.to_str().unwrap(),
        "--firmware",
        firmware.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
        "--json",
    ]);
    assert_success(&output);
    let report = json(&output);
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 256 << 20);
    assert_eq!(report["bytes"], 256 << 20);
    assert!(!sandbox.path("jos-sd.partial").exists());

    // The partition table, as util-linux reads it: one partition of type 0x0c at sector 8192 to
    // the end, nothing else.
    let dump = tool("sfdisk", &["--dump", image.to_str().unwrap()]);
    assert!(dump.status.success(), "{}", text(&dump));
    let dump = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(dump.contains("label: dos"), "{dump}");
    let partitions: Vec<&str> = dump.lines().filter(|line| line.contains(" : start=")).collect();
    assert_eq!(partitions.len(), 1, "{dump}");
    let expected_size = (256 << 20) / 512 - 8192;
    let fields: String = partitions[0].split(':').nth(1).unwrap().split_whitespace().collect();
    assert_eq!(fields, format!("start=8192,size={expected_size},type=c"), "{dump}");

    // The file system: FAT32 as mtools reads it, consistent as fsck.fat sees it.
    let spec = format!("{}@@{OFFSET}", image.display());
    let info = tool("minfo", &["-i", &spec, "::"]);
    assert!(info.status.success(), "{}", text(&info));
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    assert!(info.contains("cluster size: 4 sectors"), "{info}");
    assert!(info.contains("hidden sectors: 8192"), "{info}");
    assert!(info.contains("sectors per fat: 0"), "FAT32 keeps its FAT size in the big field: {info}");
    let partition = sandbox.path("partition.img");
    let all = std::fs::read(&image).unwrap();
    std::fs::write(&partition, &all[OFFSET as usize..]).unwrap();
    let fsck = tool("fsck.fat", &["-n", "-v", partition.to_str().unwrap()]);
    assert!(fsck.status.success(), "fsck.fat: {}", text(&fsck));
    assert!(String::from_utf8_lossy(&fsck.stdout).contains("2 FATs, 32 bit entries"), "{}", text(&fsck));
    let listing = tool("mdir", &["-b", "-i", &spec, "::"]);
    assert!(listing.status.success(), "{}", text(&listing));
    let mut names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|line| line.trim_start_matches("::/").to_string())
        .collect();
    names.sort();
    let mut expected: Vec<String> = [
        "bootcode.bin",
        "start.elf",
        "fixup.dat",
        "start_cd.elf",
        "fixup_cd.dat",
        "LICENCE.broadcom",
        "kernel.img",
        "config.txt",
        "jos-config.bin",
    ]
    .iter()
    .map(|name| name.to_string())
    .collect();
    expected.sort();
    assert_eq!(names, expected, "{}", text(&listing));

    // Every file equals its source.
    for name in ["bootcode.bin", "start.elf", "fixup.dat", "start_cd.elf", "fixup_cd.dat"] {
        assert!(mcopy(&image, name) == std::fs::read(firmware.join(name)).unwrap(), "{name} differs from its source");
    }
    assert_eq!(mcopy(&image, "LICENCE.broadcom"), std::fs::read(firmware.join("copyright")).unwrap());
    assert!(mcopy(&image, "kernel.img") == std::fs::read(&kernel).unwrap(), "kernel.img differs");
    let config_txt = String::from_utf8(mcopy(&image, "config.txt")).unwrap();
    for line in
        ["kernel=kernel.img", "enable_uart=1", "gpu_mem=16", "initramfs jos-config.bin 0x01F00000", "device_tree="]
    {
        assert!(config_txt.lines().any(|l| l == line), "config.txt lacks `{line}`:\n{config_txt}");
    }

    // The boot configuration: parses, says what was asked, and is the device that was pinned.
    let config = mcopy(&image, "jos-config.bin");
    let checked = jos_abi::config::Config::new_checked(&config[..]).expect("jos-config.bin parses");
    let repr = jos_abi::config::ConfigRepr::parse(&checked).unwrap();
    assert_eq!(repr.name, "lab-pi");
    assert_eq!(
        repr.network,
        jos_abi::config::Network::Static { address: [192, 168, 7, 2], prefix_len: 24, gateway: [192, 168, 7, 1] }
    );
    assert_eq!(repr.signers.len(), 1);
    assert!(repr.signers.get(0).unwrap().rights.contains(jos_abi::signature::SignerRights::NETWORK));
    let trust = std::fs::read_to_string(sandbox.path("home/trust.json")).unwrap();
    let advert_key = hex::encode(jos_abi::signature::public_key(&repr.advert_seed));
    assert!(trust.contains(&advert_key), "the card's device is not the pinned one:\n{trust}");
    assert_eq!(report["provisioned"]["name"], "lab-pi");

    // The same inputs with --config give the same image, byte for byte (FAT epoch times, ids from
    // the contents); the existing file needs --force.
    let config_file = sandbox.path("config.bin");
    std::fs::write(&config_file, &config).unwrap();
    let again = sandbox.path("again.img");
    let base = [
        "image",
        "--config",
        config_file.to_str().unwrap(),
        "--kernel",
        kernel.to_str().unwrap(),
        "--firmware",
        firmware.to_str().unwrap(),
    ];
    assert_success(&sandbox.run(&[&base[..], &["-o", again.to_str().unwrap()]].concat()));
    assert!(std::fs::read(&again).unwrap() == all, "the same inputs made a different image");
    assert_exit(&sandbox.run(&[&base[..], &["-o", again.to_str().unwrap()]].concat()), 22);
    assert_success(&sandbox.run(&[&base[..], &["-o", again.to_str().unwrap(), "--force", "--size", "136"]].concat()));
    assert_eq!(std::fs::metadata(&again).unwrap().len(), 136 << 20);
    assert_exit(&sandbox.run(&[&base[..], &["-o", again.to_str().unwrap(), "--force", "--size", "100"]].concat()), 2);
}

#[test]
fn missing_inputs_get_errors_that_name_the_fix() {
    let sandbox = Sandbox::new();
    assert_success(&sandbox.run(&["keygen"]));
    let firmware = sandbox.fake_firmware();
    let kernel = sandbox.fake_kernel();
    let image = sandbox.path("x.img");
    let out = image.to_str().unwrap();
    let (k, f) = (kernel.to_str().unwrap(), firmware.to_str().unwrap());
    // No configuration source.
    let output = sandbox.run(&["image", "--kernel", k, "--firmware", f, "-o", out]);
    assert_exit(&output, 2);
    assert!(text(&output).contains("--name NAME"), "{}", text(&output));
    // An ELF given as the kernel.
    let elf = sandbox.path("kernel.elf");
    std::fs::write(&elf, b"\x7fELF\x01\x01\x01").unwrap();
    let output = sandbox.run(&["image", "--name", "a", "--kernel", elf.to_str().unwrap(), "--firmware", f, "-o", out]);
    assert_exit(&output, 3);
    assert!(text(&output).contains("build/kernel.img"), "{}", text(&output));
    // Firmware without start.elf, and without a licence.
    let partial = sandbox.path("partial-firmware");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(firmware.join("bootcode.bin"), partial.join("bootcode.bin")).unwrap();
    let output =
        sandbox.run(&["image", "--name", "a", "--kernel", k, "--firmware", partial.to_str().unwrap(), "-o", out]);
    assert_exit(&output, 3);
    assert!(text(&output).contains("start.elf") && text(&output).contains("scripts/setup.sh"), "{}", text(&output));
    for name in ["start.elf", "fixup.dat", "start_cd.elf", "fixup_cd.dat"] {
        std::fs::copy(firmware.join(name), partial.join(name)).unwrap();
    }
    let output =
        sandbox.run(&["image", "--name", "a", "--kernel", k, "--firmware", partial.to_str().unwrap(), "-o", out]);
    assert_exit(&output, 3);
    assert!(text(&output).contains("licence"), "{}", text(&output));
    // A --config that is no configuration.
    let junk = sandbox.path("junk.bin");
    std::fs::write(&junk, b"JOSC but not really").unwrap();
    let output = sandbox.run(&["image", "--config", junk.to_str().unwrap(), "--kernel", k, "--firmware", f, "-o", out]);
    assert_exit(&output, 3);
    // The defaults (build/kernel.img, build/firmware) missing: a copy of jos-cli far from any
    // build folder says where they come from.
    let sandbox = Sandbox::elsewhere();
    let lonely = sandbox.path("bin/jos-cli");
    std::fs::create_dir_all(lonely.parent().unwrap()).unwrap();
    std::fs::copy(JOS_CLI, &lonely).unwrap();
    let output = sandbox.run_program(&lonely, &["image", "--name", "a", "-o", out], b"");
    assert_exit(&output, 3);
    assert!(text(&output).contains("cargo xtask kernel") && text(&output).contains("--kernel"), "{}", text(&output));
    let output = sandbox.run_program(&lonely, &["image", "--name", "a", "--kernel", k, "-o", out], b"");
    assert_exit(&output, 3);
    assert!(text(&output).contains("scripts/setup.sh") && text(&output).contains("--firmware"), "{}", text(&output));
    assert!(!image.exists(), "nothing written on failure");
    // No trust-store entry was made by the failed runs.
    assert!(
        !sandbox.path("home/trust.json").exists()
            || !std::fs::read_to_string(sandbox.path("home/trust.json")).unwrap().contains("\"a\"")
    );
}

/// Runs `image --device DEVICE` with fake inputs; returns the process output.
fn write_device(sandbox: &Sandbox, device: &str, extra: &[&str], stdin: &[u8]) -> Output {
    let firmware = sandbox.fake_firmware();
    let kernel = sandbox.fake_kernel();
    let args = [
        &[
            "image",
            "--name",
            "card",
            "--kernel",
            kernel.to_str().unwrap(),
            "--firmware",
            firmware.to_str().unwrap(),
            "--device",
            device,
        ][..],
        extra,
    ]
    .concat();
    sandbox.run_program(Path::new(JOS_CLI), &args, stdin)
}

fn assert_refused(output: &Output, why: &str) {
    assert_exit(output, 3);
    let all = text(output);
    assert!(all.contains("refusing to write") && all.contains(why), "expected a refusal with `{why}`:\n{all}");
}

/// A loop device over `file` (with its partitions scanned when `partitions`), detached on drop.
struct Loop(String);

impl Loop {
    fn attach(file: &Path, partitions: bool) -> Option<Loop> {
        let mut args = vec!["--find", "--show"];
        if partitions {
            args.push("--partscan");
        }
        let output = Command::new("losetup").args(&args).arg(file).output().ok()?;
        output.status.success().then(|| Loop(String::from_utf8_lossy(&output.stdout).trim().to_string()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["--detach", &self.0]).status();
    }
}

#[test]
fn device_refuses_what_is_not_a_removable_unmounted_card() {
    let sandbox = Sandbox::new();
    assert_success(&sandbox.run(&["keygen"]));
    // A regular file, a character device, a folder, nothing at all.
    let file = sandbox.path("plain.img");
    std::fs::write(&file, vec![0u8; 1 << 20]).unwrap();
    assert_refused(&write_device(&sandbox, file.to_str().unwrap(), &["--yes"], b""), "regular file");
    assert_refused(&write_device(&sandbox, "/dev/null", &["--yes"], b""), "character device");
    assert_refused(&write_device(&sandbox, sandbox.path("firmware").to_str().unwrap(), &["--yes"], b""), "folder");
    assert_refused(&write_device(&sandbox, "/dev/jos-no-such-card", &["--yes"], b""), "No such file");
    assert_eq!(std::fs::read(&file).unwrap(), vec![0u8; 1 << 20], "the regular file was touched");
    assert!(
        !std::fs::read_to_string(sandbox.path("home/trust.json")).unwrap_or_default().contains("\"card\""),
        "a refused card pinned its device"
    );

    // Block devices need loop devices (root).
    let backing = sandbox.path("disk.img");
    let image = sandbox.path("card.img");
    let firmware = sandbox.fake_firmware();
    let kernel = sandbox.fake_kernel();
    assert_success(&sandbox.run(&[
        "image",
        "--name",
        "loop",
        "--kernel",
        kernel.to_str().unwrap(),
        "--firmware",
        firmware.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
    ]));
    std::fs::copy(&image, &backing).unwrap();
    let Some(disk) = Loop::attach(&backing, true) else {
        println!("skipped the block-device refusals: losetup failed (needs root)");
        return;
    };
    // A loop device is a whole disk that is not removable.
    assert_refused(&write_device(&sandbox, &disk.0, &["--yes"], b""), "not a removable disk");
    // Its partition (from --partscan) is refused as a partition.
    let partition = format!("{}p1", disk.0);
    for _ in 0..50 {
        if Path::new(&partition).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if Path::new(&partition).exists() {
        assert_refused(&write_device(&sandbox, &partition, &["--yes"], b""), "it is a partition");
        // Mounted: the partition mounted somewhere makes the whole disk refused for that.
        let mount_point = sandbox.path("mnt");
        std::fs::create_dir_all(&mount_point).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "vfat", "-o", "ro", &partition])
            .arg(&mount_point)
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            let output = write_device(&sandbox, &disk.0, &["--yes"], b"");
            let _ = Command::new("umount").arg(&mount_point).status();
            assert_refused(&output, "mounted at");
        } else {
            println!("skipped the mounted refusal: this kernel cannot mount vfat here");
        }
    } else {
        println!("skipped the partition refusal: no {partition} appeared");
    }
    drop(disk);
    // Mounted: a loop device holding a mounted file system (ext2: the FAT driver may be absent)
    // is refused for that, before anything else is looked at.
    let ext2 = sandbox.path("ext2.img");
    std::fs::write(&ext2, vec![0u8; 8 << 20]).unwrap();
    let made = Command::new("mkfs.ext2").args(["-q", "-F"]).arg(&ext2).status().is_ok_and(|s| s.success());
    let mounted_disk = if made { Loop::attach(&ext2, false) } else { None };
    match mounted_disk {
        Some(mounted_disk) => {
            let mount_point = sandbox.path("mnt");
            std::fs::create_dir_all(&mount_point).unwrap();
            if Command::new("mount")
                .args(["-o", "ro", &mounted_disk.0])
                .arg(&mount_point)
                .status()
                .is_ok_and(|s| s.success())
            {
                let output = write_device(&sandbox, &mounted_disk.0, &["--yes"], b"");
                let _ = Command::new("umount").arg(&mount_point).status();
                assert_refused(&output, "mounted at");
            } else {
                println!("skipped the mounted refusal: mount failed");
            }
        }
        None => println!("skipped the mounted refusal: no mkfs.ext2 or loop device"),
    }
    // The disk was never written: still the image it was made from.
    assert!(std::fs::read(&backing).unwrap() == std::fs::read(&image).unwrap(), "a refused device was written");
}
