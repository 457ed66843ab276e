//! Just enough DER and PEM to turn rcgen's PKCS#8 P-256 key into a SEC1 `EC PRIVATE KEY`.

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
/// The OID 1.2.840.10045.3.1.7 (prime256v1 / P-256), DER content bytes.
const P256_OID: [u8; 8] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Splits one TLV off the front of `buf`: (tag, content, rest).
fn read_tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, r) = rest.split_at(n);
        rest = r;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// Encodes one TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Converts a PKCS#8 DER P-256 private key (as rcgen/ring write it) and its 65-byte uncompressed
/// public point into a SEC1 (RFC 5915) DER `ECPrivateKey` that names its curve, as
/// `openssl ec` writes it. `None` if the input does not have the expected shape.
pub(crate) fn pkcs8_p256_to_sec1(pkcs8: &[u8], public_point: &[u8]) -> Option<Vec<u8>> {
    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm AlgorithmIdentifier,
    //                               privateKey OCTET STRING (an ECPrivateKey) }
    let (tag, info, _) = read_tlv(pkcs8)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _version, rest) = read_tlv(info)?;
    if tag != INTEGER {
        return None;
    }
    let (tag, _alg, rest) = read_tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, inner, _) = read_tlv(rest)?;
    if tag != OCTET_STRING {
        return None;
    }
    // ECPrivateKey ::= SEQUENCE { version INTEGER 1, privateKey OCTET STRING, [0] params, [1] pub }
    let (tag, ec, _) = read_tlv(inner)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, _v, rest) = read_tlv(ec)?;
    if tag != INTEGER {
        return None;
    }
    let (tag, scalar, _) = read_tlv(rest)?;
    if tag != OCTET_STRING || scalar.len() != 32 || public_point.len() != 65 {
        return None;
    }
    let mut body = tlv(INTEGER, &[1]);
    body.extend(tlv(OCTET_STRING, scalar));
    body.extend(tlv(0xa0, &tlv(OID, &P256_OID)));
    let mut bits = vec![0u8];
    bits.extend_from_slice(public_point);
    body.extend(tlv(0xa1, &tlv(BIT_STRING, &bits)));
    Some(tlv(SEQUENCE, &body))
}

/// PEM-encodes `der` with the given label (`"EC PRIVATE KEY"`), 64 columns.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_base64_matches_known_vectors() {
        assert_eq!(
            pem("X", b"foobar"),
            "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"fooba"),
            "-----BEGIN X-----\nZm9vYmE=\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"foob"),
            "-----BEGIN X-----\nZm9vYg==\n-----END X-----\n"
        );
    }

    #[test]
    fn tlv_round_trips_long_lengths() {
        let content = vec![7u8; 300];
        let enc = tlv(OCTET_STRING, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, c, rest) = read_tlv(&enc).unwrap_or_else(|| panic!("cannot parse own TLV"));
        assert_eq!((tag, c, rest.len()), (OCTET_STRING, &content[..], 0));
    }
}
