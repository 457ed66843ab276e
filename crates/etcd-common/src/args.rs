//! Command-line parsing on top of lexopt, shared by the tools: owned options (so that a shared flag
//! group can take its own flags while the tool handles the rest), values, booleans and `ETCDCTL_*`.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::ffi::OsString;

/// One parsed command-line item, owned so it can be handed from one flag group to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    /// `--name` or `--name=value` (the value is read with [`Args::value`]).
    Long(String),
    /// `-c`.
    Short(char),
    /// A positional argument (`-` included).
    Positional(OsString),
}

impl Opt {
    /// The flag as the user typed it, for error messages.
    pub fn display(&self) -> String {
        match self {
            Opt::Long(name) => format!("--{name}"),
            Opt::Short(c) => format!("-{c}"),
            Opt::Positional(value) => value.to_string_lossy().into_owned(),
        }
    }

    /// The error for an option no flag group claimed.
    pub fn unexpected(&self) -> Error {
        match self {
            Opt::Positional(value) => Error::usage(format!(
                "unexpected argument {:?} (see --help)",
                value.to_string_lossy()
            )),
            _ => Error::usage(format!("unknown flag {} (see --help)", self.display())),
        }
    }
}

/// What a command line asks for: run with these options, or print this text (help, version) and
/// exit 0.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Run the tool.
    Run(Box<T>),
    /// Print this and exit 0.
    Exit(String),
}

/// A tool's `main`: parses the process's command line and `ETCDCTL_*` variables with `parse`,
/// prints help or version text, or hands the options to `run`.
pub fn dispatch<T>(
    parse: fn(Args, &Env) -> Result<Parsed<T>>,
    run: impl FnOnce(&T) -> Result<crate::ExitCode>,
) -> Result<crate::ExitCode> {
    match parse(Args::from_env(), &Env::from_process())? {
        Parsed::Run(options) => run(&options),
        Parsed::Exit(text) => {
            crate::output::print_stdout(&text)?;
            Ok(crate::ExitCode::Success)
        }
    }
}

/// The command line being parsed.
pub struct Args {
    parser: lexopt::Parser,
}

impl Args {
    /// The process's own arguments.
    pub fn from_env() -> Self {
        Args {
            parser: lexopt::Parser::from_env(),
        }
    }

    /// Arguments given explicitly (the first item is the program name), for tests.
    pub fn from_vec<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Args {
            parser: lexopt::Parser::from_iter(args),
        }
    }

    /// The next option or positional argument.
    pub fn next_opt(&mut self) -> Result<Option<Opt>> {
        use lexopt::Arg;
        Ok(match self.parser.next()? {
            None => None,
            Some(Arg::Long(name)) => Some(Opt::Long(name.to_string())),
            Some(Arg::Short(c)) => Some(Opt::Short(c)),
            Some(Arg::Value(value)) => Some(Opt::Positional(value)),
        })
    }

    /// The required value of `flag` (`--flag value` or `--flag=value`), as UTF-8.
    pub fn value(&mut self, flag: &Opt) -> Result<String> {
        let value = self
            .parser
            .value()
            .map_err(|_| Error::usage(format!("{} needs a value (see --help)", flag.display())))?;
        utf8(flag, value)
    }

    /// A boolean flag: `--flag` is true, `--flag=true|false|1|0` sets it explicitly.
    pub fn bool_value(&mut self, flag: &Opt) -> Result<bool> {
        match self.parser.optional_value() {
            None => Ok(true),
            Some(value) => parse_bool(&flag.display(), &utf8(flag, value)?),
        }
    }

    /// The value attached with `=` if there is one (`--compress=19`), without consuming the next word.
    pub fn optional_value(&mut self, flag: &Opt) -> Result<Option<String>> {
        match self.parser.optional_value() {
            None => Ok(None),
            Some(value) => utf8(flag, value).map(Some),
        }
    }
}

fn utf8(flag: &Opt, value: OsString) -> Result<String> {
    value
        .into_string()
        .map_err(|_| Error::usage(format!("{}: value is not valid UTF-8", flag.display())))
}

/// The input flags of the offline tools that read a snapshot (status, get, diff, restore):
/// `-i/--identity FILE` (repeatable) and `--skip-hash-check`.
#[derive(Debug, Default, Clone)]
pub struct InputFlags {
    /// The age identity files, in the order given.
    pub identities: Vec<String>,
    /// Accept a database without the SHA-256 trailer.
    pub skip_hash_check: bool,
}

impl InputFlags {
    /// Takes `-i`/`--identity` or `--skip-hash-check` if `opt` is one of them.
    pub fn take(&mut self, opt: &Opt, args: &mut Args) -> Result<bool> {
        match opt {
            Opt::Short('i') => self.identities.push(args.value(opt)?),
            Opt::Long(name) if name == "identity" => self.identities.push(args.value(opt)?),
            Opt::Long(name) if name == "skip-hash-check" => {
                self.skip_hash_check = args.bool_value(opt)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Records the one positional `FILE|-` argument of status and restore: `-` means stdin (`None`).
pub fn set_input(slot: &mut Option<Option<std::path::PathBuf>>, value: &OsString) -> Result<()> {
    if slot.is_some() {
        return Err(Error::usage(format!(
            "unexpected argument {:?}: give one FILE or '-'",
            value.to_string_lossy()
        )));
    }
    *slot = Some((value != "-").then(|| std::path::PathBuf::from(value)));
    Ok(())
}

/// Parses a boolean the way Go's `strconv.ParseBool` does (what etcdctl accepts).
pub fn parse_bool(what: &str, text: &str) -> Result<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Error::usage(format!(
            "{what}: invalid boolean {text:?} (use true or false)"
        ))),
    }
}

/// The `ETCDCTL_*` variables of the environment, read once so the tools and tests see one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment's `ETCDCTL_*` variables (non-UTF-8 values are ignored).
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("ETCDCTL_"))
            .collect();
        Env { vars }
    }

    /// An environment made of the given pairs, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The value of the variable for `flag`: `ETCDCTL_` + upper case, `-` to `_`. Empty counts as unset.
    pub fn for_flag(&self, flag: &str) -> Option<&str> {
        self.vars
            .get(&env_name(flag))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The variable name that feeds `flag`, e.g. `dial-timeout` → `ETCDCTL_DIAL_TIMEOUT`.
pub fn env_name(flag: &str) -> String {
    format!("ETCDCTL_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_go_spellings() {
        assert_eq!(parse_bool("x", "true"), Ok(true));
        assert_eq!(parse_bool("x", "0"), Ok(false));
        assert!(parse_bool("x", "yes").is_err());
    }

    #[test]
    fn env_names_follow_etcdctl() {
        assert_eq!(env_name("dial-timeout"), "ETCDCTL_DIAL_TIMEOUT");
        let env = Env::from_pairs([("ETCDCTL_CACERT", "/ca.pem"), ("ETCDCTL_USER", "")]);
        assert_eq!(env.for_flag("cacert"), Some("/ca.pem"));
        assert_eq!(env.for_flag("user"), None);
    }

    #[test]
    fn options_are_owned_and_values_attach() {
        let mut args = Args::from_vec(["prog", "--endpoints=a:1", "-w", "json", "--flag", "pos"]);
        let opt = args.next_opt().ok().flatten();
        assert_eq!(opt, Some(Opt::Long("endpoints".into())));
        assert_eq!(
            args.value(&Opt::Long("endpoints".into())).ok(),
            Some("a:1".into())
        );
        let w = args.next_opt().ok().flatten();
        assert_eq!(w, Some(Opt::Short('w')));
        assert_eq!(args.value(&Opt::Short('w')).ok(), Some("json".into()));
        let flag = Opt::Long("flag".into());
        assert_eq!(args.next_opt().ok().flatten(), Some(flag.clone()));
        assert_eq!(args.bool_value(&flag).ok(), Some(true));
        assert_eq!(
            args.next_opt().ok().flatten(),
            Some(Opt::Positional("pos".into()))
        );
    }
}
