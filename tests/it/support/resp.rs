//! A raw RESP client: sends commands and returns each reply's exact bytes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Conn {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        }
    }

    pub fn encode(args: &[impl AsRef<[u8]>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, args: &[impl AsRef<[u8]>]) {
        let b = Self::encode(args);
        self.send_raw(&b);
    }

    /// Sends a command and returns its reply's bytes.
    pub fn raw(&mut self, args: &[impl AsRef<[u8]>]) -> Vec<u8> {
        self.send(args);
        self.read()
    }

    /// Like `raw` with string arguments, returning the reply as text.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.raw(args)).into_owned()
    }

    pub fn read(&mut self) -> Vec<u8> {
        read_reply(&mut self.reader).expect("read reply")
    }
}

/// Reads one complete reply (any RESP2/RESP3 type, nested) and returns its bytes.
pub fn read_reply(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    read_into(r, &mut out)?;
    Ok(out)
}

fn read_into(r: &mut impl BufRead, out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    let n = r.read_until(b'\n', out)?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    let line = String::from_utf8_lossy(&out[start + 1..out.len().saturating_sub(2)]).into_owned();
    let num = || line.parse::<i64>().unwrap_or(-1);
    match out[start] {
        b'$' | b'=' | b'!' => {
            let len = num();
            if len >= 0 {
                let mut buf = vec![0u8; len as usize + 2];
                r.read_exact(&mut buf)?;
                out.extend_from_slice(&buf);
            }
        }
        b'*' | b'~' | b'>' => {
            for _ in 0..num().max(0) {
                read_into(r, out)?;
            }
        }
        b'%' | b'|' => {
            for _ in 0..num().max(0) * 2 {
                read_into(r, out)?;
            }
            if out[start] == b'|' {
                read_into(r, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}
