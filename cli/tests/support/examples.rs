//! The guest examples' test cases (an input and the output the host computes for it), shared
//! by the CLI tests that run the examples (included with `#[path]`).

use jos_guest_examples::Example;

/// fib(n), as `fib` prints it.
pub fn fib(n: u32) -> u64 {
    let (mut current, mut next) = (0u64, 1u64);
    for _ in 0..n {
        (current, next) = (next, current.wrapping_add(next));
    }
    current
}

/// A 24 x 20 picture with varied colours, and its grayscale as the filter computes it.
pub fn picture() -> (Vec<u8>, Vec<u8>) {
    let header = b"P6\n# a test picture\n24 20\n255\n";
    let mut picture = header.to_vec();
    let mut gray = b"P6\n24 20\n255\n".to_vec();
    for index in 0..24u32 * 20 {
        let pixel = [(index * 7 % 256) as u8, (index * 13 % 251) as u8, (255 - index % 256) as u8];
        picture.extend_from_slice(&pixel);
        let luma = ((77 * u32::from(pixel[0]) + 150 * u32::from(pixel[1]) + 29 * u32::from(pixel[2])) >> 8) as u8;
        gray.extend_from_slice(&[luma; 3]);
    }
    (picture, gray)
}

/// The input file of each example and the output the host computes for it.
pub fn case(example: &Example) -> (Vec<u8>, Vec<u8>) {
    use md5::Digest as _;
    match example.name {
        "md5" => (
            b"25 hello from the tests".to_vec(),
            format!("{}\n", hex::encode(md5::Md5::digest(b"hello from the tests"))).into_bytes(),
        ),
        "sha256" => {
            let input: Vec<u8> = (0..3000u32).map(|index| (index * 31 % 256) as u8).collect();
            let digest = format!("{}\n", hex::encode(sha2::Sha256::digest(&input))).into_bytes();
            (input, digest)
        }
        "fib" => (b"90\n".to_vec(), format!("{}\n", fib(90)).into_bytes()),
        "imagefilter" => picture(),
        other => panic!("no test case for the example {other}"),
    }
}
