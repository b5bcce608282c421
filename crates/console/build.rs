//! Rebuilds the crate when the console's build changes: files embedded with
//! `include_bytes!` are tracked by the compiler, but a new file (every build names its
//! assets by their hash) or a first build is not, so Cargo watches the folder here.
//! Without a build yet, the console's project folder is watched, so that `vite build`
//! creating `dist/` is noticed too.

fn main() {
    let dist = std::path::Path::new("../../console/dist");
    if dist.is_dir() {
        println!("cargo::rerun-if-changed=../../console/dist");
    } else {
        println!("cargo::rerun-if-changed=../../console");
    }
}
