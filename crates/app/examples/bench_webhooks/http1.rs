//! The load generator's client (of `bench_webhooks` and `bench_reads`): one keep-alive
//! HTTP/1.1 connection that writes a request and reads just enough of the answer (its
//! status and its length), as `wrk` does. A full client (URL parsing, header maps, a
//! connection pool) spends more CPU per request than the server's own parsing, and on a
//! 2-core machine that CPU is taken from the server and PostgreSQL under test.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection, and what it has read of the next answer.
pub struct Connection {
    stream: TcpStream,
    host: String,
    request: Vec<u8>,
    received: Vec<u8>,
}

impl Connection {
    pub async fn open(address: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: address.to_string(),
            request: Vec::with_capacity(2048),
            received: Vec::with_capacity(1024),
        })
    }

    /// Sends `method path` with `headers` (`name: value` lines, each ending `\r\n`) and
    /// `body`; the answer's status.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> io::Result<u16> {
        self.request.clear();
        self.request.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nhost: {}\r\n{headers}content-length: {}\r\n\r\n",
                self.host,
                body.len()
            )
            .as_bytes(),
        );
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;
        self.answer().await
    }

    /// Reads one answer (headers, then a body of `content-length` bytes); its status.
    async fn answer(&mut self) -> io::Result<u16> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&self.received)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            if let httparse::Status::Complete(head) = parsed {
                let status = response.code.unwrap_or_default();
                let length = response
                    .headers
                    .iter()
                    .find(|header| header.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|header| {
                        std::str::from_utf8(header.value)
                            .ok()?
                            .parse::<usize>()
                            .ok()
                    })
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            "an answer without content-length",
                        )
                    })?;
                let whole = head + length;
                while self.received.len() < whole {
                    self.read_more().await?;
                }
                self.received.drain(..whole);
                return Ok(status);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> io::Result<()> {
        let mut chunk = [0_u8; 4096];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.received.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}
