//! `tp-peer`: a misbehaving peer of the control socket, run by the
//! end-to-end tests as another Unix user (the test process can only be one).
//!
//! ```text
//! tp-peer hold SOCKET N           N connections that never say hello; prints
//!                                 "connected N", then per connection what
//!                                 came back within 10 s: rejected / welcome /
//!                                 closed / silent
//! tp-peer flood SOCKET N BYTES    N connections one after another, each with
//!                                 a hello whose client name is BYTES long;
//!                                 prints "rejected K of N"
//! tp-peer welcome SOCKET N        N connections that say hello and then stay
//!                                 open and quiet; prints "welcome K of N",
//!                                 then holds them until its stdin closes
//! ```

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use touchpoint_common::codec::{decode_frame, encode_frame};
use touchpoint_common::protocol::{Hello, HelloReply};

fn read_frame(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 1 << 20 {
        return Err(std::io::Error::other("frame too long"));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn answer(s: &mut UnixStream) -> &'static str {
    match read_frame(s) {
        Ok(bytes) => match decode_frame::<HelloReply>(&bytes) {
            Ok(HelloReply::Rejected { .. }) => "rejected",
            Ok(HelloReply::Welcome { .. }) => "welcome",
            Err(_) => "garbage",
        },
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "silent"
        }
        Err(_) => "closed",
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let n = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    match (args.get(1).map(String::as_str), args.get(2), n(3)) {
        (Some("hold"), Some(socket), Some(count)) => {
            let mut held = Vec::new();
            for _ in 0..count {
                match UnixStream::connect(socket) {
                    Ok(s) => held.push(s),
                    Err(e) => {
                        eprintln!("connect: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            println!("connected {}", held.len());
            for s in &mut held {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                println!("{}", answer(s));
            }
            println!("done");
            ExitCode::SUCCESS
        }
        (Some("flood"), Some(socket), Some(count)) => {
            let client = "x".repeat(n(4).unwrap_or(10));
            let hello = match encode_frame(&Hello::current(client)) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("encode: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut rejected = 0;
            for _ in 0..count {
                let Ok(mut s) = UnixStream::connect(socket) else {
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.write_all(&(hello.len() as u32).to_be_bytes());
                let _ = s.write_all(&hello);
                if answer(&mut s) == "rejected" {
                    rejected += 1;
                }
            }
            println!("rejected {rejected} of {count}");
            ExitCode::SUCCESS
        }
        (Some("welcome"), Some(socket), Some(count)) => {
            let hello = match encode_frame(&Hello::current("tp-peer")) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("encode: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut held = Vec::new();
            for _ in 0..count {
                let Ok(mut s) = UnixStream::connect(socket) else {
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.write_all(&(hello.len() as u32).to_be_bytes());
                let _ = s.write_all(&hello);
                if answer(&mut s) == "welcome" {
                    held.push(s);
                }
            }
            println!("welcome {} of {count}", held.len());
            let _ = std::io::stdout().flush();
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            drop(held);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: tp-peer hold SOCKET N | flood SOCKET N BYTES | welcome SOCKET N");
            ExitCode::from(2)
        }
    }
}
