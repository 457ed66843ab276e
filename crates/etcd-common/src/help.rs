//! One source per tool for its `--help` text and its man page.
//!
//! Why: each tool used to hold its help as one `format!` string, so a man page would have been a
//! second copy that drifts, and the shared exit-code table made every tool claim the meaning of
//! exit 1 that only etcd-health has. A tool now describes itself once as a [`Page`] (name,
//! synopsis, description, option sections, exit codes, examples); [`Page::help`] renders the
//! exact `--help` text and [`Page::man`] a roff page for `man -l`. The pieces every tool shares
//! ([`CONNECTION`], the lines of [`code`]) live here, tested against the strings `conn.rs` and
//! `exit.rs` still export for the tools not yet converted. So do the option lines several tools
//! print alike ([`HELP`], [`VERSION`], [`GENERATE`], ...) and [`Page::shared_flag`], which
//! parses the first three.
//!
//! Layout rules of the text form, which the tools' golden `--help` files pin down byte for byte:
//! an option's flags are padded to its section's `width` minus one, then one space, then its
//! description; continuation lines of a description start at column `width`. An exit code is
//! right-aligned in three columns, two spaces, its meaning; continuation lines start at column 5.

use crate::args::{Args, Opt};

/// A tool's manual: everything `--help` prints and the man page shows, in order.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// The command name (`etcd-health`); the first word of the help text and the man page title.
    pub name: &'static str,
    /// The tool's version, printed after its name on the first line of `--help`.
    pub version: &'static str,
    /// One lower-case line for the man page's NAME section (`whatis`, `apropos`).
    pub summary: &'static str,
    /// The paragraphs under the first line, wrapped as `--help` prints them (no trailing newline;
    /// a blank line separates paragraphs).
    pub description: &'static str,
    /// The usage lines, without the command's indentation (`etcd-health [OPTIONS]`).
    pub usage: &'static [&'static str],
    /// Option tables, notes and exit codes, in the order `--help` prints them.
    pub sections: &'static [Section],
    /// Example command lines, printed indented under `EXAMPLES:`.
    pub examples: &'static [&'static str],
}

/// One block of the help text: an optional `TITLE:` line, then its items.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The heading without its colon (`OPTIONS`, `EXIT CODES`), or `None` for a note.
    pub title: Option<&'static str>,
    /// Whether this block follows the previous one with no blank line between.
    pub joined: bool,
    /// The column where option descriptions start (ignored by other items).
    pub width: usize,
    /// The lines of the block.
    pub items: &'static [Item],
}

/// One entry of a [`Section`].
#[derive(Debug, Clone, Copy)]
pub enum Item {
    /// An option: its flags as printed (`  -w, --write-out FORMAT`) and its description, whose
    /// lines are separated by `\n` and indented by the renderer.
    Opt(&'static str, &'static str),
    /// An exit code (`"0"`, `"130"`) and its meaning (continuation lines after `\n`).
    Code(&'static str, &'static str),
    /// Free text, printed as it is (lines separated by `\n`).
    Text(&'static str),
}

impl Section {
    /// A titled section after a blank line.
    pub const fn titled(title: &'static str, width: usize, items: &'static [Item]) -> Section {
        Section {
            title: Some(title),
            joined: false,
            width,
            items,
        }
    }

    /// An untitled note: free text after a blank line, or right under the previous block when
    /// `joined`.
    pub const fn note(joined: bool, text: &'static [Item]) -> Section {
        Section {
            title: None,
            joined,
            width: 0,
            items: text,
        }
    }
}

/// The exit-code lines the tools share. A tool lists only the codes it can exit with, and gives
/// exit 1 its own meaning (docs/design.md, "Exit codes").
pub mod code {
    use super::Item;

    /// 0 in every tool.
    pub const SUCCESS: Item = Item::Code("0", "success");
    /// etcd-health's meaning of 1.
    pub const UNHEALTHY: Item = Item::Code("1", "check failed: an endpoint is unhealthy");
    /// 2: a bad command line (or credentials), before anything happens.
    pub const USAGE: Item = Item::Code(
        "2",
        "usage error: unknown flag, bad value, missing argument, wrong credentials",
    );
    /// 3: worth retrying.
    pub const TRANSIENT: Item = Item::Code(
        "3",
        "transient: cannot connect, timeout, stream broken (retry)",
    );
    /// 4: the input is not a usable snapshot.
    pub const INTEGRITY: Item = Item::Code(
        "4",
        "integrity: not a snapshot, truncated, hash mismatch, bad decryption",
    );
    /// 5: the tool refuses to overwrite or to write binary to a terminal.
    pub const REFUSED: Item = Item::Code(
        "5",
        "refused: destination exists or is not empty, binary output to a terminal",
    );
    /// 6: the local machine failed (disk, permissions).
    pub const LOCAL_IO: Item =
        Item::Code("6", "local I/O: disk full, permission denied, cannot write");
    /// 130 and 143: the tools that clean up after a signal (save, restore).
    pub const SIGNALS: Item = Item::Code(
        "130",
        "interrupted (SIGINT), 143 terminated (SIGTERM), after cleaning up",
    );
}

/// The help line of `-h, --help`, which every tool lists before [`VERSION`] and [`GENERATE`].
pub const HELP: Item = Item::Opt("  -h, --help", "print this help");

/// The help line of `-V, --version`, which every tool lists after [`HELP`].
pub const VERSION: Item = Item::Opt("  -V, --version", "print the version");

/// The help line of `-i, --identity FILE` in etcd-snap-get and etcd-snap-diff (for a
/// 29- or 32-column section; [`crate::args::InputFlags`] parses it).
pub const IDENTITY: Item = Item::Opt(
    "  -i, --identity FILE",
    "age identity (AGE-SECRET-KEY-...) or ssh private key to decrypt age\n\
     input; repeatable",
);

/// The help line of `--skip-hash-check` in etcd-snap-status and etcd-snap-get
/// ([`crate::args::InputFlags`] parses it).
pub const SKIP_HASH_CHECK: Item = Item::Opt(
    "      --skip-hash-check",
    "accept a database without the SHA-256 trailer (a db file copied\n\
     from a data dir)",
);

/// The help line of `--generate man`, which every tool lists after `-V, --version`.
pub const GENERATE: Item = Item::Opt(
    "      --generate man",
    "print this help as a man page (roff)",
);

/// What `--generate KIND` prints (ripgrep's convention): `man` is [`Page::man`], so the man pages
/// that `scripts/dist` ships come from the same [`Page`] as `--help` and cannot drift from it.
pub fn generate(page: &Page, kind: &str) -> crate::Result<String> {
    match kind {
        "man" => Ok(page.man()),
        other => Err(crate::Error::usage(format!(
            "--generate: unknown kind {other:?} (known: man)"
        ))),
    }
}

/// The connection flags every networked tool takes (the text of `conn::CONNECTION_HELP`).
pub const CONNECTION: Section = Section::titled(
    "CONNECTION (every flag also reads ETCDCTL_<FLAG>, e.g. ETCDCTL_ENDPOINTS; a flag wins)",
    33,
    &[
        Item::Opt(
            "      --endpoints LIST",
            "comma-separated gRPC endpoints [default: 127.0.0.1:2379]",
        ),
        Item::Opt("      --cacert FILE", "verify servers with this CA bundle (PEM)"),
        Item::Opt("      --cert FILE", "client certificate (PEM)"),
        Item::Opt("      --key FILE", "client key (PEM: PKCS#8, SEC1 or RSA)"),
        Item::Opt(
            "      --insecure-skip-tls-verify",
            "accept any server certificate (prints a warning)",
        ),
        Item::Opt(
            "      --insecure-transport BOOL",
            "plain text for endpoints without a scheme when no\n--cacert/--cert/--key is given [default: true]",
        ),
        Item::Opt("      --user NAME[:PASSWORD]", "authenticate as NAME"),
        Item::Opt(
            "      --password PASSWORD",
            "password for --user (prefer ETCDCTL_PASSWORD or\n--password-file: a command line is visible in ps)",
        ),
        Item::Opt(
            "      --password-file FILE",
            "read the password for --user from FILE",
        ),
        Item::Opt(
            "      --dial-timeout DURATION",
            "time to connect to an endpoint [default: 2s]",
        ),
        Item::Opt(
            "      --command-timeout DURATION",
            "time for one request [default: 5s]",
        ),
        Item::Opt(
            "      --keepalive-time DURATION",
            "HTTP/2 keepalive interval [default: 2s]",
        ),
        Item::Opt(
            "      --keepalive-timeout DURATION",
            "keepalive answer deadline [default: 6s]",
        ),
        Item::Text("An endpoint without a scheme uses TLS when --cacert, --cert or --key is given."),
    ],
);

impl Page {
    /// The flags every tool takes that print a text instead of running: `-h`/`--help` (this
    /// page's [`help`](Self::help)), `-V`/`--version` ([`crate::version::text`]) and
    /// `--generate KIND` ([`generate`]). A tool hands over every option it does not know; any
    /// other `opt` is [`Opt::unexpected`].
    pub fn shared_flag(&self, opt: &Opt, args: &mut Args) -> crate::Result<String> {
        let long = match opt {
            Opt::Long(name) => name.as_str(),
            Opt::Short('h') => "help",
            Opt::Short('V') => "version",
            _ => return Err(opt.unexpected()),
        };
        match long {
            "help" => Ok(self.help()),
            "version" => Ok(crate::version::text(self.name, self.version)),
            "generate" => generate(self, &args.value(opt)?),
            _ => Err(opt.unexpected()),
        }
    }

    /// The `--help` text, ending with a newline.
    pub fn help(&self) -> String {
        let mut out = format!(
            "{} {}\n{}\n\nUSAGE:\n",
            self.name, self.version, self.description
        );
        for line in self.usage {
            out.push_str(&format!("    {line}\n"));
        }
        for section in self.sections {
            if !section.joined {
                out.push('\n');
            }
            if let Some(title) = section.title {
                out.push_str(&format!("{title}:\n"));
            }
            for item in section.items {
                item.render_text(section.width, &mut out);
            }
        }
        out.push_str("\nEXAMPLES:\n");
        for line in self.examples {
            out.push_str(&format!("    {line}\n"));
        }
        out
    }

    /// The man page in roff (`man -l FILE` shows it), from the same parts as [`help`](Self::help).
    pub fn man(&self) -> String {
        let mut out = format!(
            ".TH {} 1 \"\" \"{} {}\" \"etcd-snap\"\n.SH NAME\n{} \\- {}\n.SH SYNOPSIS\n.nf\n",
            roff(&self.name.to_ascii_uppercase()),
            roff(self.name),
            roff(self.version),
            roff(self.name),
            roff(self.summary)
        );
        for line in self.usage {
            out.push_str(&format!("{}\n", roff_line(line)));
        }
        out.push_str(".fi\n.SH DESCRIPTION\n");
        paragraphs(self.description, &mut out);
        for section in self.sections {
            match section.title {
                Some(title) => {
                    let (head, aside) = match title.split_once(" (") {
                        Some((head, rest)) => (head, Some(rest.trim_end_matches(')'))),
                        None => (title, None),
                    };
                    let macro_ = if section.joined { ".SS" } else { ".SH" };
                    out.push_str(&format!("{macro_} {}\n", roff(head)));
                    if let Some(aside) = aside {
                        out.push_str(&format!(".PP\n{}\n", roff_line(aside)));
                    }
                }
                None if section.joined => {}
                None => out.push_str(".SH NOTES\n"),
            }
            for item in section.items {
                item.render_man(&mut out);
            }
        }
        out.push_str(".SH EXAMPLES\n.nf\n.RS 4\n");
        for line in self.examples {
            out.push_str(&format!("{}\n", roff_line(line)));
        }
        out.push_str(".RE\n.fi\n");
        out
    }
}

impl Item {
    /// Appends this item's `--help` lines to `out`.
    fn render_text(&self, width: usize, out: &mut String) {
        let (head, body, indent) = match *self {
            Item::Opt(flags, desc) => (format!("{flags:<w$} ", w = width - 1), desc, width),
            Item::Code(code, meaning) => (format!("{code:>3}  "), meaning, 5),
            Item::Text(text) => (String::new(), text, 0),
        };
        for (i, line) in body.split('\n').enumerate() {
            if i == 0 {
                out.push_str(&head);
            } else {
                out.push_str(&" ".repeat(indent));
            }
            out.push_str(line);
            out.push('\n');
        }
    }

    /// Appends this item as roff to `out`.
    fn render_man(&self, out: &mut String) {
        match *self {
            Item::Opt(term, body) | Item::Code(term, body) => {
                out.push_str(&format!(
                    ".TP\n.B {}\n{}\n",
                    roff(term.trim()),
                    roff_line(&joined(body))
                ));
            }
            Item::Text(text) => {
                out.push_str(".PP\n");
                out.push_str(&format!("{}\n", roff_line(&joined(text))));
            }
        }
    }
}

/// Wrapped lines as one line (roff fills them again).
fn joined(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Appends `text`'s blank-line-separated paragraphs as roff paragraphs.
fn paragraphs(text: &str, out: &mut String) {
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str(".PP\n");
        }
        out.push_str(&format!("{}\n", roff_line(&joined(para))));
    }
}

/// `text` escaped for roff: backslashes and hyphens (so options stay ASCII when copied).
fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// Like [`roff`], for a whole input line: a leading `.` or `'` would be read as a request.
fn roff_line(text: &str) -> String {
    let escaped = roff(text);
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small page with every kind of item.
    const PAGE: Page = Page {
        name: "tool",
        version: "1.0",
        summary: "do a thing",
        description: "First paragraph,\nwrapped.\n\n.Second starts with a dot.",
        usage: &["tool [OPTIONS] FILE"],
        sections: &[
            Section::titled(
                "OPTIONS",
                12,
                &[
                    Item::Opt("  -a", "one\ntwo"),
                    Item::Opt("  --longer-flag", "x"),
                ],
            ),
            Section::note(true, &[Item::Text("a note\\n")]),
            Section::titled(
                "EXIT CODES",
                0,
                &[code::SUCCESS, Item::Code("1", "no\nmore")],
            ),
        ],
        examples: &["tool -a FILE"],
    };

    #[test]
    fn help_follows_the_layout_rules() {
        assert_eq!(
            PAGE.help(),
            "tool 1.0\nFirst paragraph,\nwrapped.\n\n.Second starts with a dot.\n\nUSAGE:\n    tool [OPTIONS] FILE\n\n\
             OPTIONS:\n  -a        one\n            two\n  --longer-flag x\na note\\n\n\n\
             EXIT CODES:\n  0  success\n  1  no\n     more\n\nEXAMPLES:\n    tool -a FILE\n"
        );
    }

    #[test]
    fn man_escapes_what_roff_would_misread() {
        let man = PAGE.man();
        assert!(man.starts_with(".TH TOOL 1 "), "{man}");
        assert!(man.contains("\ntool \\- do a thing\n"), "{man}");
        assert!(man.contains("\n\\&.Second starts with a dot.\n"), "{man}");
        assert!(man.contains("\n.B \\-\\-longer\\-flag\nx\n"), "{man}");
        assert!(man.contains("\na note\\en\n"), "{man}");
        assert!(man.contains("\n.B 1\nno more\n"), "{man}");
        assert!(man.contains("\nFirst paragraph, wrapped.\n.PP\n"), "{man}");
    }

    /// The shared exit-code lines render as `exit.rs` still exports them to save and restore.
    #[test]
    fn shared_codes_match_exit_rs() {
        const ALL: &[Section] = &[Section::titled(
            "EXIT CODES",
            0,
            &[
                code::SUCCESS,
                code::UNHEALTHY,
                code::USAGE,
                code::TRANSIENT,
                code::INTEGRITY,
                code::REFUSED,
                code::LOCAL_IO,
                code::SIGNALS,
            ],
        )];
        let page = Page {
            sections: ALL,
            ..PAGE
        };
        let help = page.help();
        let want = format!(
            "{}\n{}\n",
            crate::exit::EXIT_CODES_HELP,
            crate::exit::SIGNAL_EXIT_HELP
        );
        assert!(help.contains(&want), "{help}");
    }

    /// [`CONNECTION`] renders as `conn::CONNECTION_HELP`, which save still uses directly.
    #[cfg(feature = "client")]
    #[test]
    fn connection_matches_conn_rs() {
        const ONLY: &[Section] = &[CONNECTION];
        let page = Page {
            sections: ONLY,
            ..PAGE
        };
        let help = page.help();
        let want = format!("\n{}\n\nEXAMPLES:", crate::conn::CONNECTION_HELP);
        assert!(help.contains(&want), "{help}");
    }
}
