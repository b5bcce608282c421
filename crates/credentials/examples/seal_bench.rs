//! Seal and open throughput of the vault's envelope encryption (`cargo xtask bench
//! credentials`). Prints figures; asserts nothing.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fluxolab_credentials::envelope::{DataKey, MasterKeys};
use fluxolab_kernel::{CredentialId, WorkspaceId};

fn per_second(operations: u64, elapsed: Duration) -> f64 {
    operations as f64 / elapsed.as_secs_f64()
}

fn main() {
    let master = MasterKeys::new(b"bench-master-secret-0123456789abcdef", None).unwrap();
    let workspace = WorkspaceId::new();
    let credential = CredentialId::new();
    let wrapped = DataKey::generate()
        .unwrap()
        .wrap(&master, workspace)
        .unwrap();
    let key = DataKey::unwrap(&master, workspace, &wrapped).unwrap();
    let secret = br#"{"password":"a-typical-secret-of-moderate-length-0123456789","token":"another-secret-value-abcdefghijklmnopqrstuvwxyz"}"#;
    let window = Duration::from_secs(2);

    let (mut sealed_ops, started) = (0u64, Instant::now());
    let mut last = key.seal(workspace, credential, secret).unwrap();
    while started.elapsed() < window {
        last = key.seal(workspace, credential, secret).unwrap();
        sealed_ops += 1;
    }
    let seal_rate = per_second(sealed_ops, started.elapsed());

    let (mut opened_ops, started) = (0u64, Instant::now());
    while started.elapsed() < window {
        assert_eq!(
            key.open(workspace, credential, &last).unwrap().len(),
            secret.len()
        );
        opened_ops += 1;
    }
    let open_rate = per_second(opened_ops, started.elapsed());

    let (mut unwrap_ops, started) = (0u64, Instant::now());
    while started.elapsed() < window {
        DataKey::unwrap(&master, workspace, &wrapped).unwrap();
        unwrap_ops += 1;
    }
    let unwrap_rate = per_second(unwrap_ops, started.elapsed());

    println!(
        "credentials envelope encryption ({}-byte secret, AES-256-GCM, one core)",
        secret.len()
    );
    println!("  encrypt (seal)       {seal_rate:>12.0} ops/s");
    println!("  decrypt (open)       {open_rate:>12.0} ops/s");
    println!("  unwrap data key      {unwrap_rate:>12.0} ops/s");
}
