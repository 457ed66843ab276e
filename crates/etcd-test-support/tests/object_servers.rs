//! The object storage test servers start, hold the test bucket, and show what is stored behind
//! the tools' backs.

use etcd_test_support::{AzuriteServer, GcsServer, S3Server};

#[test]
fn rclone_starts_with_an_empty_bucket_and_sees_rewrites() {
    let s3 = S3Server::rclone();
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());
    s3.rewrite_object("a/b.db", b"hello");
    assert_eq!(s3.keys(), vec!["a/b.db".to_string()]);
    assert_eq!(s3.read_object("a/b.db"), b"hello");
    assert!(s3
        .env()
        .iter()
        .any(|(k, v)| k == "AWS_ENDPOINT_URL" && v == &s3.endpoint()));
}

#[test]
fn moto_starts_with_an_empty_bucket_and_sees_rewrites() {
    let s3 = S3Server::moto();
    assert!(s3.keys().is_empty(), "{:?}", s3.keys());
    s3.rewrite_object("a/b.db", b"hello");
    assert_eq!(s3.keys(), vec!["a/b.db".to_string()]);
    assert_eq!(s3.read_object("a/b.db"), b"hello");
    assert_eq!(s3.open_uploads(), Some(0));
}

#[test]
fn azurite_starts_with_an_empty_container_and_sees_rewrites() {
    let az = AzuriteServer::start();
    assert!(az.keys().is_empty(), "{:?}", az.keys());
    az.rewrite_object("a/b.db", b"hello");
    assert_eq!(az.keys(), vec!["a/b.db".to_string()]);
    assert_eq!(az.read_object("a/b.db"), b"hello");
    assert!(az.uncommitted().is_empty());
}

#[test]
fn fake_gcs_server_starts_with_an_empty_bucket_and_sees_rewrites() {
    let gcs = GcsServer::start();
    assert!(gcs.keys().is_empty(), "{:?}", gcs.keys());
    gcs.rewrite_object("a/b c.db", b"hello");
    gcs.rewrite_object("a/b c.db", b"world");
    assert_eq!(gcs.keys(), vec!["a/b c.db".to_string()]);
    assert_eq!(gcs.read_object("a/b c.db"), b"world");
    assert!(gcs.key_file().is_file());
    assert!(gcs
        .env()
        .contains(&("GOOGLE_STORAGE_ENDPOINT".to_string(), gcs.endpoint())));
}
