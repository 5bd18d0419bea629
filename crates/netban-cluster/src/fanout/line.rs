//! Line framing for the fanout protocol, with a length cap.
//!
//! fanout lines end with `\n`. A line longer than [`MAX_LINE`] is refused without being kept:
//! its bytes are dropped as they arrive until its newline, so a 1 MiB line costs one read
//! buffer, never a megabyte of memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// The longest line kept (a clusterd message is well under 200 bytes).
pub const MAX_LINE: usize = 4096;

/// One framed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line, without its `\n` (and a `\r` before it).
    Text(Vec<u8>),
    /// A line over [`MAX_LINE`], dropped; its length as far as read.
    TooLong(usize),
}

/// Reads lines from `inner`.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Dropping an over-long line: bytes dropped so far.
    dropping: Option<usize>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::new(),
            dropping: None,
        }
    }

    /// The next line; `None` at the end of the stream (a partial last line is dropped).
    /// Cancellation-safe: bytes read before a cancel stay in the reader.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                return Ok(None);
            }
            let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, Some(i)),
                None => (chunk.len(), None),
            };
            let body = &chunk[..done.unwrap_or(used)];
            match &mut self.dropping {
                Some(n) => *n += body.len(),
                None if self.buf.len() + body.len() > MAX_LINE => {
                    self.dropping = Some(self.buf.len() + body.len());
                    self.buf.clear();
                }
                None => self.buf.extend_from_slice(body),
            }
            self.inner.consume(used);
            if done.is_some() {
                if let Some(n) = self.dropping.take() {
                    return Ok(Some(Line::TooLong(n)));
                }
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(Line::Text(line)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_lines_and_drops_long_ones() {
        let mut input = b"a!b\r\nshort\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1 << 20));
        input.extend(b"\nafter\npartial");
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(512, &input[..]));
        assert_eq!(r.next().await.unwrap(), Some(Line::Text(b"a!b".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Line::Text(b"short".to_vec())));
        assert_eq!(r.next().await.unwrap(), Some(Line::TooLong(1 << 20)));
        assert!(
            r.buf.capacity() <= 4 * MAX_LINE,
            "never buffered the long line"
        );
        assert_eq!(r.next().await.unwrap(), Some(Line::Text(b"after".to_vec())));
        assert_eq!(r.next().await.unwrap(), None);
    }
}
