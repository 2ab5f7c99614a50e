//! Builds guest sources with the jos build pipeline from a program, as `jos-cli build` does:
//!
//! ```text
//! cargo run -p jos-build --example build -- guest-examples/c/md5.c [wasm|native] [OUTPUT]
//! ```
//!
//! Prints the file written and its size report; on failure the error and exit status 1.

use std::path::PathBuf;
use std::process::ExitCode;

use jos_build::{build, BuildRequest, Format, DEFAULT_MAX_MEMORY_PAGES};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(source) = args.next().map(PathBuf::from) else {
        eprintln!("usage: build SOURCE.c|CRATE_FOLDER [wasm|native] [OUTPUT]");
        return ExitCode::from(2);
    };
    let format = match args.next().as_deref().and_then(|text| text.to_str()) {
        None | Some("wasm") => Format::Wasm,
        Some("native") => Format::Native,
        Some(other) => {
            eprintln!("unknown format `{other}`: wasm or native");
            return ExitCode::from(2);
        }
    };
    let request = BuildRequest {
        sources: vec![source],
        format,
        output: args.next().map(PathBuf::from),
        max_memory_pages: DEFAULT_MAX_MEMORY_PAGES,
        keep_names: false,
        verbose: false,
    };
    match build(&request) {
        Ok(built) => {
            println!("built {}", built.path.display());
            println!("{}", built.report);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
