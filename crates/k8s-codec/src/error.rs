//! The crate's one error type: every failure is one line that says what is wrong and where.

use std::fmt;

/// Why a stored value or a JSON object could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The value does not start with the `k8s\0` protobuf magic (JSON or another format).
    NotProtobuf,
    /// The value is encrypted at rest by the API server (`k8s:enc:` prefix).
    Encrypted,
    /// The input ends inside a field; `at` is the field path.
    Truncated {
        /// Field path where the input ended, e.g. `raw.spec.containers[0]`.
        at: String,
    },
    /// The bytes are not valid protobuf for the schema; `at` is the field path.
    Malformed {
        /// Field path of the bad field.
        at: String,
        /// What is wrong with it.
        why: String,
    },
    /// No schema for this apiVersion/kind (a custom resource or a newer type).
    UnknownKind {
        /// The envelope's or object's apiVersion.
        api_version: String,
        /// The envelope's or object's kind.
        kind: String,
    },
    /// The envelope uses a feature this crate does not implement (a content encoding).
    Unsupported(String),
    /// A JSON object given to `encode_protobuf` does not fit the schema.
    InvalidObject {
        /// Field path of the bad field.
        at: String,
        /// What is wrong with it.
        why: String,
    },
}

impl Error {
    /// Prefixes the field path with one more outer segment as the error bubbles up.
    pub(crate) fn within(mut self, segment: &str) -> Self {
        if segment.is_empty() {
            return self;
        }
        let join = |at: &mut String| {
            if at.is_empty() {
                *at = segment.to_string();
            } else if at.starts_with('[') {
                *at = format!("{segment}{at}");
            } else {
                *at = format!("{segment}.{at}");
            }
        };
        match &mut self {
            Error::Truncated { at }
            | Error::Malformed { at, .. }
            | Error::InvalidObject { at, .. } => join(at),
            _ => {}
        }
        self
    }

    /// A malformed-protobuf error at the current (innermost) field.
    pub(crate) fn malformed(why: impl Into<String>) -> Self {
        Error::Malformed {
            at: String::new(),
            why: why.into(),
        }
    }

    /// An invalid-JSON-object error at the current (innermost) field.
    pub(crate) fn invalid(why: impl Into<String>) -> Self {
        Error::InvalidObject {
            at: String::new(),
            why: why.into(),
        }
    }
}

/// Renders the field path, or a marker for the top level.
fn path(at: &str) -> &str {
    if at.is_empty() {
        "top level"
    } else {
        at
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotProtobuf => write!(f, "not a Kubernetes protobuf value (no k8s\\0 magic)"),
            Error::Encrypted => write!(f, "value is encrypted at rest (k8s:enc: prefix)"),
            Error::Truncated { at } => write!(f, "truncated protobuf value at {}", path(at)),
            Error::Malformed { at, why } => {
                write!(
                    f,
                    "malformed protobuf value at {}: {}",
                    path(at),
                    why.replace('\n', " ")
                )
            }
            Error::UnknownKind { api_version, kind } => {
                write!(f, "no schema for apiVersion {api_version:?} kind {kind:?}")
            }
            Error::Unsupported(what) => write!(f, "unsupported: {}", what.replace('\n', " ")),
            Error::InvalidObject { at, why } => {
                write!(
                    f,
                    "invalid object at {}: {}",
                    path(at),
                    why.replace('\n', " ")
                )
            }
        }
    }
}

impl From<protowire::Error> for Error {
    /// A wire-format error at the innermost field: input that ends early is [`Error::Truncated`],
    /// anything else [`Error::Malformed`]; the field path is added as the error bubbles up.
    fn from(e: protowire::Error) -> Self {
        use protowire::ErrorKind as K;
        match e.kind {
            K::TruncatedVarint | K::TruncatedPayload { .. } => {
                Error::Truncated { at: String::new() }
            }
            K::VarintOverflow => Error::malformed("varint longer than 64 bits"),
            K::FieldNumber { tag } if tag >> 3 == 0 => Error::malformed("field number 0"),
            K::FieldNumber { .. } => Error::malformed("field number too large"),
            K::WireType { field, wire_type } => Error::malformed(format!(
                "unsupported wire type {wire_type} in field {field}"
            )),
        }
    }
}

impl std::error::Error for Error {}
