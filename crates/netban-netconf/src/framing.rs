//! NETCONF message framing over the SSH channel (RFC 6242).
//!
//! - End-of-message (base:1.0, and every `<hello>`): the message, then `]]>]]>`.
//! - Chunked (base:1.1, when both sides advertise it): `\n#LEN\n` + LEN bytes, repeated, then
//!   `\n##\n`.
//!
//! [`FrameReader::read`] is cancellation-safe: bytes already received stay in its buffer, so a
//! read abandoned by a timeout or a `select!` loses nothing. Every message is capped at
//! `max_message` bytes; a device that sends more (or sends garbage framing) is an error, and
//! the session is dropped.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const EOM: &[u8] = b"]]>]]>";
/// RFC 6242: a chunk is at most 4294967295 bytes; its length has at most 10 digits.
const MAX_CHUNK_DIGITS: usize = 10;

/// Which framing a session uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    EndOfMessage,
    Chunked,
}

impl Framing {
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::EndOfMessage => "base:1.0 end-of-message framing",
            Framing::Chunked => "base:1.1 chunked framing",
        }
    }
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the device closed the session")]
    Closed,
    #[error("reading from the device failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a message from the device is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("bad chunked framing from the device: {0}")]
    BadChunk(String),
}

/// Reads framed messages; keeps partial input between calls.
pub struct FrameReader<R> {
    inner: R,
    /// Received bytes not yet consumed.
    buf: Vec<u8>,
    /// End-of-message: how far `buf` has been searched for the end marker.
    scanned: usize,
    /// Chunked: the chunks of the current message received so far.
    partial: Vec<u8>,
    max_message: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_message: usize) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
            partial: Vec::new(),
            max_message,
        }
    }

    /// The next whole message (without framing).
    pub async fn read(&mut self, framing: Framing) -> Result<Vec<u8>, FrameError> {
        loop {
            let parsed = match framing {
                Framing::EndOfMessage => self.take_eom()?,
                Framing::Chunked => self.take_chunked()?,
            };
            if let Some(msg) = parsed {
                return Ok(msg);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                return Err(FrameError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn take_eom(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let from = self.scanned.saturating_sub(EOM.len() - 1);
        match find(&self.buf[from..], EOM).map(|i| i + from) {
            Some(at) => {
                if at > self.max_message {
                    return Err(self.too_large());
                }
                let msg = self.buf[..at].to_vec();
                self.buf.drain(..at + EOM.len());
                self.scanned = 0;
                Ok(Some(msg))
            }
            None if self.buf.len() > self.max_message + EOM.len() => Err(self.too_large()),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }

    /// Moves every whole chunk from the buffer into the message; returns the message at its
    /// end marker.
    fn take_chunked(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            // Each chunk header is "\n#" then digits then "\n"; the end is "\n##\n".
            if self.buf.len() < 4 {
                return Ok(None);
            }
            if &self.buf[..2] != b"\n#" {
                return Err(FrameError::BadChunk(format!(
                    "expected \"\\n#\", got {:?}",
                    String::from_utf8_lossy(&self.buf[..self.buf.len().min(8)])
                )));
            }
            if self.buf[2] == b'#' {
                if self.buf[3] != b'\n' {
                    return Err(FrameError::BadChunk(
                        "end marker is not \"\\n##\\n\"".into(),
                    ));
                }
                if self.partial.is_empty() {
                    return Err(FrameError::BadChunk("message with no chunk".into()));
                }
                self.buf.drain(..4);
                return Ok(Some(std::mem::take(&mut self.partial)));
            }
            let Some(nl) = self.buf[2..]
                .iter()
                .take(MAX_CHUNK_DIGITS + 1)
                .position(|&b| b == b'\n')
            else {
                if self.buf.len() - 2 > MAX_CHUNK_DIGITS {
                    return Err(FrameError::BadChunk("chunk length too long".into()));
                }
                return Ok(None);
            };
            let digits = &self.buf[2..2 + nl];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
                return Err(FrameError::BadChunk(format!(
                    "bad chunk length {:?}",
                    String::from_utf8_lossy(digits)
                )));
            }
            let len: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| FrameError::BadChunk("chunk length out of range".into()))?;
            if self.partial.len().saturating_add(len) > self.max_message {
                return Err(self.too_large());
            }
            let data_start = 2 + nl + 1;
            if self.buf.len() < data_start + len {
                return Ok(None);
            }
            self.partial
                .extend_from_slice(&self.buf[data_start..data_start + len]);
            self.buf.drain(..data_start + len);
        }
    }

    fn too_large(&self) -> FrameError {
        FrameError::TooLarge {
            limit: self.max_message,
        }
    }
}

/// Frames `body` for sending.
pub fn frame(body: &str, framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 24);
    match framing {
        Framing::EndOfMessage => {
            out.extend_from_slice(body.as_bytes());
            out.extend_from_slice(EOM);
        }
        Framing::Chunked => {
            out.extend_from_slice(format!("\n#{}\n", body.len()).as_bytes());
            out.extend_from_slice(body.as_bytes());
            out.extend_from_slice(b"\n##\n");
        }
    }
    out
}

/// Writes one framed message and flushes it.
pub async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &str,
    framing: Framing,
) -> std::io::Result<()> {
    w.write_all(&frame(body, framing)).await?;
    w.flush().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], framing: Framing, max: usize) -> Vec<Result<String, String>> {
        let mut r = FrameReader::new(input, max);
        let mut out = Vec::new();
        loop {
            match r.read(framing).await {
                Ok(m) => out.push(Ok(String::from_utf8(m).unwrap())),
                Err(FrameError::Closed) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn end_of_message() {
        let got = read_all(b"<a/>]]>]]><b/>]]>]]>", Framing::EndOfMessage, 100).await;
        assert_eq!(got, vec![Ok("<a/>".into()), Ok("<b/>".into())]);
        let got = read_all(b"0123456789]]>]]>", Framing::EndOfMessage, 5).await;
        assert!(got[0].as_ref().unwrap_err().contains("larger than 5"));
    }

    #[tokio::test]
    async fn chunked_with_several_chunks() {
        let input = b"\n#4\n<rpc\n#9\n-reply/>\n\n##\n\n#3\n<b/\n#1\n>\n##\n";
        let got = read_all(input, Framing::Chunked, 100).await;
        assert_eq!(got, vec![Ok("<rpc-reply/>\n".into()), Ok("<b/>".into())]);
    }

    #[tokio::test]
    async fn chunked_errors() {
        for (input, want) in [
            (&b"\n#0\n\n##\n"[..], "bad chunk length"),
            (b"\n#x\nab\n##\n", "bad chunk length"),
            (b"<a/>]]>]]>", "expected"),
            (b"\n##\n", "no chunk"),
            (b"\n#12345678901\n", "too long"),
            (b"\n#50\n0123456789", "larger than 20"),
        ] {
            let got = read_all(input, Framing::Chunked, 20).await;
            let e = got.last().unwrap().as_ref().unwrap_err();
            assert!(e.contains(want), "{input:?}: {e}");
        }
    }

    #[test]
    fn frames_both_ways() {
        assert_eq!(frame("<a/>", Framing::EndOfMessage), b"<a/>]]>]]>");
        assert_eq!(frame("<a/>", Framing::Chunked), b"\n#4\n<a/>\n##\n");
    }
}
