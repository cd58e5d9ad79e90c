// SPDX-License-Identifier: GPL-2.0

//! `rkmemctl ptyshot`: runs a command in a pseudo-terminal of a given size, reads all it writes
//! until it exits, feeds that to a VT100 screen emulator (the `vt100` crate) and prints the
//! final screen, one line per row (trailing blanks dropped). The test of `rkmemctl top` in a
//! guest that has no tmux: what a user would see when the command ends.
//!
//! On stderr a last line reports what the screen alone cannot show:
//! `ptyshot: exit 0, 12345 bytes, longest line 118 of 120 columns, wrapped rows: none`, where
//! the longest line is measured on the raw output (escape sequences skipped, a carriage return
//! or a cursor-home back to column 0), so a line the terminal wrapped or cut shows its full
//! width. The exit code is the command's (128 + N if signal N ended it, 124 on timeout).

use nix::libc;
use nix::pty::{forkpty, ForkptyResult, Winsize};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use std::ffi::CString;
use std::num::NonZeroU16;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// What a run gave.
pub struct Shot {
    /// Everything the command wrote to the terminal.
    pub bytes: Vec<u8>,
    /// Its exit code (128 + signal; 124 if it was killed at the timeout).
    pub code: i32,
}

/// Runs `cmd` in a new pseudo-terminal of `rows` x `cols` and collects its output until it has
/// exited and closed the terminal, or until `timeout` (then it is killed).
pub fn capture(rows: u16, cols: u16, cmd: &[String], timeout: Duration) -> Result<Shot, String> {
    let args: Vec<CString> = cmd
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("NUL in argument {a:?}")))
        .collect::<Result<_, _>>()?;
    let Some(prog) = args.first() else {
        return Err("no command".into());
    };
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the child only calls execvp (async-signal-safe) and _exit; the arguments were
    // made before the fork.
    let (master, child) = match unsafe { forkpty(&ws, None) } {
        Err(e) => return Err(format!("forkpty: {e}")),
        Ok(ForkptyResult::Child) => {
            let _ = nix::unistd::execvp(prog, &args);
            // SAFETY: _exit is async-signal-safe; 127 as a shell reports a missing command.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkptyResult::Parent { master, child }) => (master, child),
    };
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut timed_out = false;
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(master.as_fd(), &mut buf) {
            // EIO: every slave descriptor is closed (the command and its children are gone).
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(format!("read of the pty: {e}")),
        }
    }
    if timed_out {
        let _ = kill(child, Signal::SIGKILL);
    }
    let code = match waitpid(child, None).map_err(|e| format!("waitpid: {e}"))? {
        _ if timed_out => 124,
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        other => return Err(format!("waitpid: {other:?}")),
    };
    Ok(Shot { bytes, code })
}

/// The screen `bytes` leave on a `rows` x `cols` VT100: each row's text (trailing blanks
/// dropped) and whether the terminal wrapped it into the next row.
pub fn screen(bytes: &[u8], rows: u16, cols: u16) -> (Vec<String>, Vec<bool>) {
    let nz = |n: u16| NonZeroU16::new(n.max(1)).unwrap_or(NonZeroU16::MIN);
    let mut vt = vt100::Parser::new(nz(rows), nz(cols), 0);
    vt.process(bytes);
    let s = vt.screen();
    let text = s
        .rows(0, cols.max(1))
        .map(|r| r.trim_end().to_string())
        .collect();
    let wrapped = (0..rows.max(1)).map(|r| s.row_wrapped(r)).collect();
    (text, wrapped)
}

/// The widest line of `bytes` in columns: printable characters counted, escape sequences
/// (CSI `ESC [ ... final`, or `ESC` and one character) skipped, CR, LF and `ESC [ H` back to
/// column 0.
pub fn longest_line(bytes: &[u8]) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    let (mut col, mut max) = (0usize, 0usize);
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => col = 0,
            // A CSI sequence; another escape takes one character, skipped.
            '\x1b' => {
                if chars.next() == Some('[') {
                    let mut params = String::new();
                    for p in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&p) {
                            if p == 'H' || p == 'f' {
                                // Cursor position: the column is the second parameter.
                                let c = params.split(';').nth(1).and_then(|v| v.parse().ok());
                                col = c.unwrap_or(1usize).saturating_sub(1);
                            }
                            break;
                        }
                        params.push(p);
                    }
                }
            }
            '\x08' => col = col.saturating_sub(1),
            c if c.is_control() => {}
            _ => {
                col += 1;
                max = max.max(col);
            }
        }
    }
    max
}

/// `rkmemctl ptyshot`: prints the final screen on stdout and the summary on stderr; returns
/// the command's exit code.
pub fn run(rows: u16, cols: u16, timeout: f64, cmd: &[String]) -> Result<i32, String> {
    if rows == 0 || cols == 0 {
        return Err("--rows and --cols must be at least 1".into());
    }
    if !(timeout > 0.0 && timeout <= 86_400.0) {
        return Err(format!("--timeout {timeout}: want 0 < seconds <= 86400"));
    }
    let shot = capture(rows, cols, cmd, Duration::from_secs_f64(timeout))?;
    let (text, wrapped) = screen(&shot.bytes, rows, cols);
    for row in &text {
        println!("{row}");
    }
    let w: Vec<String> = wrapped
        .iter()
        .enumerate()
        .filter(|(_, &w)| w)
        .map(|(r, _)| (r + 1).to_string())
        .collect();
    eprintln!(
        "ptyshot: exit {}, {} bytes, longest line {} of {cols} columns, wrapped rows: {}",
        shot.code,
        shot.bytes.len(),
        longest_line(&shot.bytes),
        if w.is_empty() {
            "none".into()
        } else {
            w.join(" ")
        }
    );
    Ok(shot.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn widths_of_raw_output() {
        assert_eq!(longest_line(b"abc\r\nde\n"), 3);
        assert_eq!(longest_line(b"\x1b[H\x1b[2Jabcdef\x1b[Hxy"), 6);
        assert_eq!(longest_line(b"\x1b[1;31mred\x1b[0m"), 3);
        assert_eq!(longest_line(b"ab\x1b[3;10Hc"), 10);
        assert_eq!(longest_line(b""), 0);
    }

    #[test]
    fn a_wrapped_row_is_seen() {
        let (text, wrapped) = screen(&[b'x'; 15], 3, 10);
        assert_eq!(text, ["x".repeat(10), "x".repeat(5), String::new()]);
        assert_eq!(wrapped, [true, false, false]);
        // Exactly the width, then CR LF: no wrap.
        let (text, wrapped) = screen(b"0123456789\r\nab", 3, 10);
        assert_eq!(text[..2], ["0123456789", "ab"]);
        assert!(!wrapped.iter().any(|&w| w));
    }

    #[test]
    fn runs_a_command_in_a_terminal_of_that_size() {
        // stty reads the size the pty was given; the line discipline turns LF into CR LF.
        let shot = capture(
            7,
            33,
            &sh("stty size; [ -t 0 ] && [ -t 1 ] && echo tty; printf 'a\\033[2Jb'; exit 3"),
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(shot.code, 3);
        let (text, _) = screen(&shot.bytes, 7, 33);
        // The clear left "b" in row 3 after "a" (the cursor does not move on a clear).
        assert_eq!(text[2], " b", "{text:?}");
        assert!(text.iter().all(|r| !r.contains("7 33")), "{text:?}");
        let all = String::from_utf8_lossy(&shot.bytes);
        assert!(all.starts_with("7 33\r\ntty\r\n"), "{all:?}");
    }

    #[test]
    fn a_hung_command_is_killed() {
        let shot = capture(5, 20, &sh("exec sleep 30"), Duration::from_millis(300)).unwrap();
        assert_eq!(shot.code, 124);
        let missing = capture(5, 20, &["/nonexistent/cmd".into()], Duration::from_secs(20));
        assert_eq!(missing.unwrap().code, 127);
    }
}
