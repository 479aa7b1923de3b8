//! TSIG (RFC 8945): keys, BIND key files, signing requests and verifying answers.
//!
//! The secret lives only in [`Key`], whose `Debug` hides it, and no error of this
//! module quotes the text of a key file: a secret must never reach a log line or an
//! error message.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::wire::{Message, Name, CLASS_ANY, TYPE_TSIG};

/// The time window (seconds) a signature is valid in, each way.
pub(crate) const FUDGE: u16 = 300;

/// A TSIG algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256 (`hmac-sha256`).
    HmacSha256,
    /// HMAC-SHA384 (`hmac-sha384`).
    HmacSha384,
    /// HMAC-SHA512 (`hmac-sha512`).
    HmacSha512,
}

impl Algorithm {
    /// Parses `hmac-sha256`, `hmac-sha384` or `hmac-sha512` (any case, with or without
    /// a trailing dot).
    pub fn parse(text: &str) -> Option<Self> {
        match text
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .as_str()
        {
            "hmac-sha256" => Some(Algorithm::HmacSha256),
            "hmac-sha384" => Some(Algorithm::HmacSha384),
            "hmac-sha512" => Some(Algorithm::HmacSha512),
            _ => None,
        }
    }

    /// The algorithm's name, e.g. `hmac-sha256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    fn wire_name(self) -> Name {
        let labels: [&[u8]; 1] = [self.name().as_bytes()];
        Name::from_labels(labels).unwrap_or_else(|_| unreachable!("a valid label"))
    }
}

/// A TSIG key: name, algorithm and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    name: Name,
    algorithm: Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn mac_with<M: Mac + hmac::digest::KeyInit>(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return Vec::new();
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

impl Key {
    /// A key from its name, algorithm and base64 secret.
    ///
    /// # Errors
    /// A message naming the key (never the secret) when the name is invalid or the
    /// secret is not base64.
    pub fn new(name: &str, algorithm: Algorithm, secret_base64: &str) -> Result<Key, String> {
        let dotted = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        let name =
            Name::parse(&dotted).map_err(|e| format!("invalid TSIG key name {name:?}: {e}"))?;
        let compact: String = secret_base64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let secret = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| format!("the secret of TSIG key {name} is not valid base64"))?;
        if secret.is_empty() {
            return Err(format!("the secret of TSIG key {name} is empty"));
        }
        Ok(Key {
            name,
            algorithm,
            secret,
        })
    }

    /// The key's name (absolute).
    pub fn name(&self) -> String {
        self.name.to_string()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        match self.algorithm {
            Algorithm::HmacSha256 => mac_with::<Hmac<Sha256>>(&self.secret, parts),
            Algorithm::HmacSha384 => mac_with::<Hmac<Sha384>>(&self.secret, parts),
            Algorithm::HmacSha512 => mac_with::<Hmac<Sha512>>(&self.secret, parts),
        }
    }

    /// The TSIG variables after the message in the signed data (RFC 8945 4.3.3).
    fn variables(&self, time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
        let mut v = self.name.wire().to_vec();
        v.extend_from_slice(&CLASS_ANY.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(self.algorithm.wire_name().wire());
        v.extend_from_slice(&time.to_be_bytes()[2..]);
        v.extend_from_slice(&fudge.to_be_bytes());
        v.extend_from_slice(&error.to_be_bytes());
        v.extend_from_slice(&(other.len() as u16).to_be_bytes());
        v.extend_from_slice(other);
        v
    }

    /// Signs `msg` (a complete message without TSIG) at `now` (seconds since the
    /// epoch): appends the TSIG record and counts it. Returns the MAC, which the
    /// answer's signature covers.
    pub(crate) fn sign(&self, msg: &mut Vec<u8>, now: u64) -> Vec<u8> {
        self.sign_chained(msg, now, None)
    }

    /// [`Key::sign`], chained to a prior MAC as a server signs its answer.
    fn sign_chained(&self, msg: &mut Vec<u8>, now: u64, prior: Option<&[u8]>) -> Vec<u8> {
        let vars = self.variables(now, FUDGE, 0, &[]);
        let mac = match prior {
            Some(p) => self.mac(&[&(p.len() as u16).to_be_bytes(), p, msg, &vars]),
            None => self.mac(&[msg, &vars]),
        };
        let mut rdata = self.algorithm.wire_name().wire().to_vec();
        rdata.extend_from_slice(&now.to_be_bytes()[2..]);
        rdata.extend_from_slice(&FUDGE.to_be_bytes());
        rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
        rdata.extend_from_slice(&mac);
        rdata.extend_from_slice(&msg[..2]); // original id
        rdata.extend_from_slice(&[0, 0, 0, 0]); // error, other len
        msg.extend_from_slice(self.name.wire());
        msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
        msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
        msg.extend_from_slice(&0u32.to_be_bytes());
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(&rdata);
        let arcount = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
        msg[10..12].copy_from_slice(&arcount.to_be_bytes());
        mac
    }

    /// Verifies the TSIG record `tsig` of the answer `buf`. `prior` is the MAC the
    /// signature chains to (the request's, or the previous signed message's in a
    /// transfer), `unsigned` the messages since then that carried no TSIG (RFC 8945
    /// 5.3.1), and `timers_only` tells a later message of a transfer, whose signature
    /// covers only the time and fudge of the variables.
    pub(crate) fn verify(
        &self,
        buf: &[u8],
        tsig: &Tsig,
        prior: &[u8],
        unsigned: &[u8],
        timers_only: bool,
        now: u64,
    ) -> Result<(), String> {
        if tsig.name != self.name || tsig.algorithm != self.algorithm.wire_name() {
            return Err(format!(
                "signed with key {} ({}), not ours",
                tsig.name, tsig.algorithm
            ));
        }
        let mut stripped = buf[..tsig.start].to_vec();
        stripped[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
        let arcount = u16::from_be_bytes([stripped[10], stripped[11]]).wrapping_sub(1);
        stripped[10..12].copy_from_slice(&arcount.to_be_bytes());
        let vars = if timers_only {
            let mut t = tsig.time.to_be_bytes()[2..].to_vec();
            t.extend_from_slice(&tsig.fudge.to_be_bytes());
            t
        } else {
            self.variables(tsig.time, tsig.fudge, tsig.error, &tsig.other)
        };
        let len = (prior.len() as u16).to_be_bytes();
        let expected = self.mac(&[&len, prior, unsigned, &stripped, &vars]);
        let same = expected.len() == tsig.mac.len()
            && expected
                .iter()
                .zip(&tsig.mac)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err("the signature does not verify".to_owned());
        }
        if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
            return Err(format!(
                "the signature is {} s off the local clock",
                now.abs_diff(tsig.time)
            ));
        }
        Ok(())
    }
}

/// The TSIG record of a received message.
#[derive(Clone, Debug)]
pub(crate) struct Tsig {
    pub(crate) name: Name,
    pub(crate) algorithm: Name,
    pub(crate) time: u64,
    pub(crate) fudge: u16,
    pub(crate) mac: Vec<u8>,
    pub(crate) original_id: u16,
    /// The TSIG error (BADSIG = 16, BADKEY = 17, BADTIME = 18, BADTRUNC = 22).
    pub(crate) error: u16,
    pub(crate) other: Vec<u8>,
    /// Where the TSIG record starts in the message.
    pub(crate) start: usize,
}

/// The TSIG record of `msg` (parsed from `buf`), if it has one; it must be the last
/// additional record.
pub(crate) fn find(buf: &[u8], msg: &Message) -> Result<Option<Tsig>, String> {
    let Some(rec) = msg.additional.last().filter(|r| r.rtype == TYPE_TSIG) else {
        return Ok(None);
    };
    let mut at = rec.rdata.start;
    let algorithm = crate::wire::read_name(buf, &mut at)?;
    let rd = &buf[at..rec.rdata.end];
    let get = |i: usize| {
        rd.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or("short TSIG record")
    };
    let time = (u64::from(get(0)?) << 32) | (u64::from(get(2)?) << 16) | u64::from(get(4)?);
    let fudge = get(6)?;
    let mac_len = usize::from(get(8)?);
    let mac = rd.get(10..10 + mac_len).ok_or("short TSIG MAC")?.to_vec();
    let rest = 10 + mac_len;
    let (original_id, error, other_len) = (get(rest)?, get(rest + 2)?, usize::from(get(rest + 4)?));
    let other = rd
        .get(rest + 6..rest + 6 + other_len)
        .ok_or("short TSIG other data")?
        .to_vec();
    let name = rec.name.clone();
    Ok(Some(Tsig {
        name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
        start: rec.start,
    }))
}

/// One `key` statement of a BIND key file. The secret stays base64 text here.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyDef {
    pub(crate) name: String,
    pub(crate) algorithm: Option<String>,
    pub(crate) secret: Option<String>,
}

impl fmt::Debug for KeyDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDef")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
}

/// Splits a BIND configuration text into tokens with their line numbers; `#`, `//`
/// and `/* */` comments are skipped.
fn tokens(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => while chars.next_if(|c| *c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|c| *c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = ' ';
                loop {
                    let c = chars
                        .next()
                        .ok_or(format!("line {start}: unterminated comment"))?;
                    line += usize::from(c == '\n');
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' => out.push((Token::Open, line)),
            '}' => out.push((Token::Close, line)),
            ';' => out.push((Token::Semi, line)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars
                        .next()
                        .ok_or(format!("line {start}: unterminated string"))?
                    {
                        '"' => break,
                        '\\' => s.extend(chars.next()),
                        c => {
                            line += usize::from(c == '\n');
                            s.push(c);
                        }
                    }
                }
                out.push((Token::Quoted(s), start));
            }
            c => {
                let mut s = String::from(c);
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && !"{};\"#".contains(*c))
                {
                    s.push(c);
                }
                out.push((Token::Word(s), line));
            }
        }
    }
    Ok(out)
}

/// Parses the `key` statements of a BIND key file (as written by `tsig-keygen`).
/// Errors give line numbers and never quote the file's text.
pub(crate) fn parse_key_file(text: &str) -> Result<Vec<KeyDef>, String> {
    let toks = tokens(text)?;
    let mut it = toks.into_iter().peekable();
    let mut keys = Vec::new();
    let last_line = text.lines().count().max(1);
    let end = |what: &str| format!("line {last_line}: the file ends where {what} was expected");
    while let Some((tok, line)) = it.next() {
        if !matches!(&tok, Token::Word(w) if w.eq_ignore_ascii_case("key")) {
            return Err(format!("line {line}: expected a `key` statement"));
        }
        let name = match it.next() {
            Some((Token::Word(n) | Token::Quoted(n), _)) if !n.is_empty() => n,
            Some((_, line)) => return Err(format!("line {line}: expected a key name after `key`")),
            None => return Err(end("a key name")),
        };
        match it.next() {
            Some((Token::Open, _)) => {}
            Some((_, line)) => {
                return Err(format!("line {line}: expected `{{` after key {name:?}"))
            }
            None => return Err(end("`{`")),
        }
        let mut def = KeyDef {
            name,
            algorithm: None,
            secret: None,
        };
        loop {
            let (tok, line) = it.next().ok_or_else(|| end("`}`"))?;
            let (slot, what) = match &tok {
                Token::Close => break,
                Token::Word(w) if w.eq_ignore_ascii_case("algorithm") => {
                    (&mut def.algorithm, "algorithm")
                }
                Token::Word(w) if w.eq_ignore_ascii_case("secret") => (&mut def.secret, "secret"),
                _ => {
                    let name = &def.name;
                    return Err(format!(
                        "line {line}: expected `algorithm`, `secret` or `}}` in key {name:?}"
                    ));
                }
            };
            let value = match it.next() {
                Some((Token::Word(v) | Token::Quoted(v), _)) => v,
                _ => {
                    return Err(format!(
                        "line {line}: `{what}` of key {:?} has no value",
                        def.name
                    ))
                }
            };
            if slot.replace(value).is_some() {
                return Err(format!(
                    "line {line}: key {:?} gives `{what}` twice",
                    def.name
                ));
            }
            if !matches!(it.next(), Some((Token::Semi, _))) {
                return Err(format!(
                    "line {line}: expected `;` after `{what}` in key {:?}",
                    def.name
                ));
            }
        }
        if matches!(it.peek(), Some((Token::Semi, _))) {
            it.next();
        }
        keys.push(def);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";

    #[test]
    fn key_files_parse_in_bind_syntax() {
        let text = format!(
            "# made by tsig-keygen\nkey \"gordon-key\" {{\n\talgorithm hmac-sha256;\n\
             \tsecret \"{SECRET}\";\n}};\n// another\nkey other /* inline */ {{ secret \"AAAA\"; algorithm \"HMAC-SHA512\"; }}\n"
        );
        let keys = parse_key_file(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, "gordon-key");
        assert_eq!(keys[0].algorithm.as_deref(), Some("hmac-sha256"));
        assert_eq!(keys[0].secret.as_deref(), Some(SECRET));
        assert_eq!(keys[1].name, "other");
        assert_eq!(
            Algorithm::parse(keys[1].algorithm.as_deref().unwrap()),
            Some(Algorithm::HmacSha512)
        );
        assert!(!format!("{keys:?}").contains(SECRET));
    }

    #[test]
    fn key_file_errors_give_lines_and_never_the_secret() {
        let cases = [
            (
                format!("key k {{ secret \"{SECRET}\" }};"),
                "line 1: expected `;` after `secret`",
            ),
            (
                format!("key k {{\n  secrett \"{SECRET}\";\n}};"),
                "line 2: expected `algorithm`, `secret` or `}`",
            ),
            (SECRET.to_owned(), "line 1: expected a `key` statement"),
            (
                format!("key k {{ secret \"{SECRET}\";"),
                "the file ends where `}` was expected",
            ),
            (
                format!("key k {{ secret \"{SECRET}"),
                "line 1: unterminated string",
            ),
            (
                "key k { secret \"a\"; secret \"b\"; };".to_owned(),
                "gives `secret` twice",
            ),
            ("key { };".to_owned(), "expected a key name"),
        ];
        for (text, want) in cases {
            let err = parse_key_file(&text).unwrap_err();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(
                !err.contains(SECRET) && !err.contains("c2Vj"),
                "{err:?} leaks the secret"
            );
        }
    }

    #[test]
    fn keys_check_names_and_secrets() {
        let key = Key::new("Gordon-Key", Algorithm::HmacSha256, SECRET).unwrap();
        assert_eq!(key.name(), "gordon-key.");
        assert!(!format!("{key:?}").contains("c2Vj"));
        let err = Key::new("k", Algorithm::HmacSha256, "not base64!").unwrap_err();
        assert_eq!(err, "the secret of TSIG key k. is not valid base64");
        assert!(Key::new("k", Algorithm::HmacSha256, "").is_err());
        assert_eq!(
            Algorithm::parse("HMAC-SHA384."),
            Some(Algorithm::HmacSha384)
        );
        assert_eq!(Algorithm::parse("hmac-md5"), None);
    }

    #[test]
    fn answers_verify_and_tampering_is_detected() {
        let key = Key::new("k", Algorithm::HmacSha384, SECRET).unwrap();
        let mut w = crate::wire::Writer::new(7, 0);
        w.question(&Name::parse("example.com.").unwrap(), 6, 1);
        let mut request = w.finish();
        let request_mac = key.sign(&mut request, 1_700_000_000);
        assert_eq!(request_mac.len(), 48);
        // The server answers with its own id rewritten and signs chained to our MAC.
        let mut answer = request[..request.len()].to_vec();
        let parsed = crate::wire::parse(&answer).unwrap();
        let ours = find(&answer, &parsed).unwrap().unwrap();
        assert_eq!(
            (ours.original_id, ours.error, ours.time),
            (7, 0, 1_700_000_000)
        );
        answer.truncate(ours.start);
        answer[2] |= 0x80;
        answer[10..12].copy_from_slice(&0u16.to_be_bytes());
        key.sign_chained(&mut answer, 1_700_000_010, Some(&request_mac));
        let parsed = crate::wire::parse(&answer).unwrap();
        let tsig = find(&answer, &parsed).unwrap().unwrap();
        let check = |k: &Key, buf: &[u8], now| k.verify(buf, &tsig, &request_mac, &[], false, now);
        assert_eq!(check(&key, &answer, 1_700_000_000), Ok(()));
        let late = check(&key, &answer, 1_700_001_000).unwrap_err();
        assert!(late.contains("990 s off"), "{late}");
        let mut tampered = answer.clone();
        tampered[3] ^= 1;
        assert!(check(&key, &tampered, 1_700_000_000).is_err());
        let other = Key::new("k", Algorithm::HmacSha384, "AAAA").unwrap();
        assert!(check(&other, &answer, 1_700_000_000).is_err());
        let renamed = Key::new("k2", Algorithm::HmacSha384, SECRET).unwrap();
        assert!(check(&renamed, &answer, 1_700_000_000)
            .unwrap_err()
            .contains("not ours"));
    }
}
