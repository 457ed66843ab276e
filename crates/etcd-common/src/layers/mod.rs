//! The layers a snapshot travels in: zstd compression and age encryption, written by save and (later)
//! detected by content and peeled by status and restore, interoperable with the `zstd` and `age` CLIs.

pub mod declared;
pub mod decode;
pub mod encode;
pub mod input;
pub mod recipients;
pub mod spool;
pub mod trailer;
