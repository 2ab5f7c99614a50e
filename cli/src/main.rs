//! jos-cli: the user's tool. Not written yet beyond its version (see issue "jos-cli and the guest
//! SDK"); the commands land with the offload and CLI work.

fn main() {
    println!("jos-cli {}", env!("CARGO_PKG_VERSION"));
}
