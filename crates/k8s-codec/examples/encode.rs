//! Encodes one Kubernetes object (JSON on stdin) the way kube-apiserver stores it in etcd (the
//! `k8s\0` protobuf envelope on stdout), so that a demo or a test can fill a plain etcd with
//! realistic objects: `encode < deploy.json | base64 -w0` then a gRPC-gateway put.

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut json = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut json) {
        eprintln!("Error: reading stdin: {e}");
        return ExitCode::from(6);
    }
    let object: serde_json::Value = match serde_json::from_str(&json) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("Error: stdin is not one JSON object: {e}");
            return ExitCode::from(2);
        }
    };
    match k8s_codec::encode_protobuf(&object) {
        Ok(bytes) => match std::io::stdout().write_all(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("Error: writing stdout: {e}");
                ExitCode::from(6)
            }
        },
        Err(e) => {
            eprintln!("Error: cannot encode the object: {e}");
            ExitCode::from(2)
        }
    }
}
