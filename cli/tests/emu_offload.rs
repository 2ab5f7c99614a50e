//! The whole path on the emulated board, as a user types it: `jos-cli build` the md5 and image
//! filter examples, `emu start` (provision, boot the kernel in QEMU, wait for discovery), `push`
//! them over the Noise session, `invoke` the cached module, `emu stop`. Outputs are compared with
//! what the host computes.

#[path = "support/kernel.rs"]
mod kernel;
#[path = "support/output.rs"]
mod output;

use kernel::kernel;
use output::{assert_success, json, text};
use std::path::Path;
use std::process::{Command, Output};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

struct Emu {
    dir: tempfile::TempDir,
}

impl Emu {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(JOS_CLI)
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.dir.path().join("home"))
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("run jos-cli")
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.run(&["emu", "stop"]);
    }
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c").join(name).display().to_string()
}

#[test]
fn build_emu_start_push_invoke_stop() {
    use md5::Digest;
    let emu =
        Emu { dir: tempfile::Builder::new().prefix("jos-emu-e2e").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap() };
    assert_success(&emu.run(&["build", &example("md5.c"), "--format", "wasm", "-o", "md5.wasm"]));
    assert_success(&emu.run(&["build", &example("imagefilter.c"), "--format", "wasm", "-o", "filter.wasm"]));
    let kernel = kernel();
    let output = emu.run(&["emu", "start", "--kernel", kernel.to_str().unwrap(), "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["answered"], true);

    std::fs::write(emu.dir.path().join("md5-input.txt"), "1000 jon").unwrap();
    let output = emu.run(&["push", "md5.wasm", "--input", "md5-input.txt", "--json"]);
    assert_success(&output);
    let report = json(&output);
    let expected: String = hex::encode(md5::Md5::digest(b"jon")) + "\n";
    assert_eq!(report["output"], expected.as_str());
    assert_eq!(report["place"], "emu");
    let hash = report["hash"].as_str().unwrap().to_string();
    let module_len = std::fs::metadata(emu.dir.path().join("md5.wasm")).unwrap().len();
    assert!(report["bytes_sent"].as_u64().unwrap() > module_len);

    let output = emu.run(&["invoke", &hash, "--input", "md5-input.txt", "--json"]);
    assert_success(&output);
    let again = json(&output);
    assert_eq!(again["output"], expected.as_str());
    assert!(again["bytes_sent"].as_u64().unwrap() < module_len, "invoke resent the module: {again}");

    // The image filter: a 16x16 picture to grayscale.
    let mut picture = b"P6\n16 16\n255\n".to_vec();
    for index in 0..256u32 {
        picture.extend_from_slice(&[(index * 7) as u8, (index * 3) as u8, 200]);
    }
    std::fs::write(emu.dir.path().join("picture.ppm"), &picture).unwrap();
    let output = emu.run(&["push", "filter.wasm", "--input", "picture.ppm"]);
    assert_success(&output);
    assert!(output.stdout.starts_with(b"P6\n16 16\n255\n"), "{}", text(&output));
    let header = b"P6\n16 16\n255\n".len();
    let pixels = &output.stdout[header..];
    assert_eq!(pixels.len(), 256 * 3);
    assert!(pixels.chunks(3).all(|pixel| pixel[0] == pixel[1] && pixel[1] == pixel[2]), "not gray");

    let output = emu.run(&["emu", "stop", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["stopped"], true);
}
