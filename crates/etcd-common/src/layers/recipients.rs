//! age recipients from `-r/--recipient` and `-R/--recipients-file`: native X25519 (`age1…`) and
//! ssh public keys (`ssh-ed25519`, `ssh-rsa`), as the `age` CLI accepts them.

use crate::error::{io_reason, Error, Result};
use std::str::FromStr;

/// One recipient a snapshot is encrypted to.
pub type Recipient = Box<dyn age::Recipient + Send + Sync>;

/// Parses one recipient; `source` names where it came from for the error line.
pub fn parse(text: &str, source: &str) -> Result<Recipient> {
    let text = text.trim();
    if text.starts_with("age1") {
        return age::x25519::Recipient::from_str(text)
            .map(|r| Box::new(r) as Recipient)
            .map_err(|e| Error::usage(format!("{source}: invalid age recipient {text:?}: {e}")));
    }
    if text.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(text)
            .map(|r| Box::new(r) as Recipient)
            .map_err(|e| {
                Error::usage(format!(
                    "{source}: unusable ssh public key ({e:?}): only ssh-ed25519 and ssh-rsa keys work with age"
                ))
            });
    }
    if text.starts_with("AGE-SECRET-KEY-") {
        return Err(Error::usage(format!(
            "{source}: this is an age identity (a secret key), not a recipient: give its public key (age-keygen -y FILE)"
        )));
    }
    Err(Error::usage(format!(
        "{source}: {text:?} is not a recipient (expected age1… or an ssh-ed25519/ssh-rsa public key)"
    )))
}

/// Reads a recipients file: one recipient a line, `#` comments and blank lines ignored.
pub fn parse_file(path: &str) -> Result<Vec<Recipient>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "-R/--recipients-file {path}: cannot read: {}",
            io_reason(&e)
        ))
    })?;
    let recipients = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(n, line)| parse(line, &format!("{path}:{}", n + 1)))
        .collect::<Result<Vec<_>>>()?;
    if recipients.is_empty() {
        return Err(Error::usage(format!(
            "-R/--recipients-file {path}: no recipients in the file"
        )));
    }
    Ok(recipients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_parse_and_errors_say_what_to_do() {
        let key = age::x25519::Identity::generate();
        let public = key.to_public().to_string();
        assert!(parse(&public, "-r").is_ok());
        let err = parse("AGE-SECRET-KEY-1XYZ", "-r").err().map(|e| e.message);
        assert!(err.is_some_and(|m| m.contains("age-keygen -y")));
        let err = parse("hello", "-r").err().map(|e| e.code);
        assert_eq!(err, Some(crate::ExitCode::Usage));
    }
}
