//! The command builder: `send()` writes the `*N` count from the arguments
//! actually given, so no call site writes a count by hand beside them.
//!
//! A command is a RESP array whose count comes before its elements, yet the
//! count is known only at the end. Instead of holding the arguments until
//! then (a stack array large enough for a `RESTORE` is hundreds of bytes,
//! copied at each chained call), each argument is encoded into the queue at
//! once, after a one-digit count slot that `send()` fills in. Only a count of
//! ten or more moves the command's bytes, and only shared payloads wait, in a
//! list the queue keeps between commands: nothing is allocated per command,
//! whatever its number of arguments.

use std::mem::ManuallyDrop;

use bytes::Bytes;

use crate::Requests;

impl Requests {
    /// Starts a command; add its arguments in order, then
    /// [`send`](Command::send) it. The count is written for you: this is the
    /// preferred way to queue a command.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use resp::Requests;
    ///
    /// let mut out = Requests::new();
    /// let cursor = b"0".to_vec();
    /// let pat: Option<&[u8]> = Some(b"user:*");
    /// let mut c = out.cmd().arg(b"SCAN").arg(&cursor);
    /// if let Some(p) = pat {
    ///     c = c.arg(b"MATCH").arg(p);
    /// }
    /// c.send();
    /// assert_eq!(
    ///     &out.to_bytes()[..],
    ///     b"*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$6\r\nuser:*\r\n"
    /// );
    ///
    /// // A RESTORE whose payload is queued as its own chunk, not copied.
    /// let payload = Bytes::from(vec![0u8; 4096]);
    /// out.cmd().arg(b"RESTORE").arg(b"key").int(0).shared(payload).arg(b"REPLACE").send();
    /// ```
    pub fn cmd(&mut self) -> Command<'_> {
        let len = self.len();
        let start = self.begin_command();
        Command {
            out: self,
            start,
            len,
            argc: 0,
        }
    }
}

/// A command being built by [`Requests::cmd`]: each method adds one argument,
/// and [`Command::send`] completes it with `*N`, `N` the arguments added.
/// Dropped unsent, it leaves the queue as it was.
///
/// Small: chaining moves four words, not the arguments. Borrowed arguments
/// are copied into the queue when added, so they need not outlive the call.
#[must_use = "a command is queued only by send()"]
#[derive(Debug)]
pub struct Command<'q> {
    out: &'q mut Requests,
    /// Where the command begins in the queue's tail.
    start: usize,
    /// [`Requests::len`] before the command, to undo it.
    len: usize,
    argc: usize,
}

impl Command<'_> {
    /// Adds the one argument `write` queues.
    #[inline]
    fn with(mut self, write: impl FnOnce(&mut Requests)) -> Self {
        write(self.out);
        self.argc += 1;
        self
    }

    /// Adds an argument, copied into the queue.
    #[inline]
    pub fn arg(self, arg: &[u8]) -> Self {
        self.with(|out| out.arg(arg))
    }

    /// Adds an integer argument (a TTL), formatted without allocation.
    #[inline]
    pub fn int(self, n: i64) -> Self {
        self.with(|out| out.arg_int(n))
    }

    /// Adds an unsigned integer argument (a `SCAN` cursor, which is a `u64`
    /// on the wire), formatted without allocation.
    #[inline]
    pub fn uint(self, n: u64) -> Self {
        self.with(|out| out.arg_uint(n))
    }

    /// Adds an argument that is queued as its own chunk, sharing `arg`'s
    /// memory, when longer than the queue's inline threshold, and copied
    /// otherwise (as [`Requests::arg_shared`]).
    #[inline]
    pub fn shared(self, arg: Bytes) -> Self {
        self.with(|out| out.defer_shared(arg))
    }

    /// Queues the command: `*N` with `N` the arguments added, then each.
    #[inline]
    pub fn send(self) {
        // Sent, so not to be undone by Drop.
        let mut this = ManuallyDrop::new(self);
        let (start, argc) = (this.start, this.argc);
        this.out.finish_command(start, argc);
    }
}

/// Undoes an unsent command (dropped by mistake, or by `?` or a panic between
/// two arguments), so the queue never holds half a command.
impl Drop for Command<'_> {
    fn drop(&mut self) {
        self.out.abandon_command(self.start, self.len);
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use super::*;

    fn payload(len: usize) -> Bytes {
        (0..len).map(|i| (i * 13) as u8).collect::<Vec<u8>>().into()
    }

    /// Every queued byte, in order, as `io_slices` hands them out.
    fn iov_concat(out: &mut Requests) -> Vec<u8> {
        let mut slices = Vec::new();
        out.io_slices(&mut slices);
        slices.iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn the_count_is_the_arguments_given() {
        // 9 and 10 straddle the one-digit count slot; 99 and 100 the next.
        for argc in [0, 1, 2, 8, 9, 10, 11, 99, 100, 1000] {
            let args: Vec<Vec<u8>> = (0..argc).map(|i| format!("a{i}").into_bytes()).collect();
            let refs: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            let mut by_hand = Requests::new();
            by_hand.command(&refs);
            // After another command, so the count is patched mid-buffer.
            by_hand.command(&[b"PING"]);
            let mut out = Requests::new();
            let mut c = out.cmd();
            for arg in &args {
                c = c.arg(arg);
            }
            c.send();
            out.cmd().arg(b"PING").send();
            assert_eq!(out.to_bytes(), by_hand.to_bytes(), "{argc} arguments");
            assert_eq!(out.len(), by_hand.len());
            assert!(out
                .to_bytes()
                .starts_with(format!("*{argc}\r\n").as_bytes()));
        }
    }

    #[test]
    fn every_kind_of_argument_encodes_as_the_low_level_calls() {
        for (inline_max, len) in [(16, 3), (16, 16), (16, 17), (1024, 5000)] {
            for extra in [0, 4, 20] {
                let data = payload(len);
                let mut out = Requests::with_inline_max(inline_max);
                out.command(&[b"SELECT", b"1"]);
                let mut c = out
                    .cmd()
                    .arg(b"RESTORE")
                    .arg(b"key")
                    .int(-1)
                    .shared(data.clone())
                    .uint(u64::MAX);
                for _ in 0..extra {
                    c = c.arg(b"x").shared(data.clone());
                }
                c.arg(b"").send();
                let mut by_hand = Requests::with_inline_max(inline_max);
                by_hand.command(&[b"SELECT", b"1"]);
                by_hand.start(6 + 2 * extra);
                by_hand.arg(b"RESTORE");
                by_hand.arg(b"key");
                by_hand.arg_int(-1);
                by_hand.arg_shared(data.clone());
                by_hand.arg_uint(u64::MAX);
                for _ in 0..extra {
                    by_hand.arg(b"x");
                    by_hand.arg_shared(data.clone());
                }
                by_hand.arg(b"");
                let mut args: Vec<&[u8]> = vec![b"RESTORE", b"key", b"-1", &data];
                args.push(b"18446744073709551615");
                for _ in 0..extra {
                    args.extend([&b"x"[..], &data]);
                }
                args.push(b"");
                let mut copied = Requests::new();
                copied.command(&[b"SELECT", b"1"]);
                copied.command(&args);
                let case = format!("inline_max {inline_max} len {len} extra {extra}");
                // The same chunks as the low-level calls, so the same iovecs.
                let (mut a, mut b) = (Vec::new(), Vec::new());
                out.io_slices(&mut a);
                by_hand.io_slices(&mut b);
                let chunks = |v: &[IoSlice<'_>]| v.iter().map(|s| s.to_vec()).collect::<Vec<_>>();
                assert_eq!(chunks(&a), chunks(&b), "{case}");
                assert_eq!(iov_concat(&mut out), &copied.to_bytes()[..], "{case}");
                assert_eq!(out.len(), copied.len(), "{case}");
            }
        }
    }

    #[test]
    fn a_shared_payload_reaches_the_iovecs_uncopied() {
        let data = payload(4096);
        let mut out = Requests::new();
        out.cmd()
            .arg(b"RESTORE")
            .arg(b"key")
            .int(0)
            .shared(data.clone())
            .arg(b"REPLACE")
            .arg(b"ABSTTL")
            .send();
        let mut slices: Vec<IoSlice<'_>> = Vec::new();
        out.io_slices(&mut slices);
        // Header and small arguments, the payload itself, then the rest.
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[1].as_ptr(), data.as_ptr());
        assert_eq!(slices[1].len(), data.len());
        assert_eq!(&slices[2][..], b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n");
        // Also when the count takes two digits and the bytes before it move.
        let mut out = Requests::new();
        let mut c = out.cmd();
        for _ in 0..12 {
            c = c.arg(b"x");
        }
        c.shared(data.clone()).arg(b"y").send();
        let mut slices: Vec<IoSlice<'_>> = Vec::new();
        out.io_slices(&mut slices);
        assert_eq!(slices.len(), 3);
        assert!(slices[0].starts_with(b"*14\r\n$1\r\nx\r\n"));
        assert_eq!(slices[1].as_ptr(), data.as_ptr());
    }

    #[test]
    fn a_command_dropped_unsent_leaves_the_queue_as_it_was() {
        let mut out = Requests::with_inline_max(0);
        out.command(&[b"PING"]);
        let before = out.to_bytes();
        drop(out.cmd().arg(b"SET").shared(payload(100)).int(5));
        assert_eq!(out.to_bytes(), before);
        assert_eq!(out.len(), before.len());
        out.cmd()
            .arg(b"GET")
            .shared(Bytes::from_static(b"k"))
            .send();
        let mut slices = Vec::new();
        out.io_slices(&mut slices);
        // PING (sealed by to_bytes), then GET's header, its one shared
        // argument, its CRLF.
        assert_eq!(slices.len(), 4);
        assert_eq!(
            iov_concat(&mut out),
            b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }

    #[test]
    fn commands_reuse_the_deferred_list_and_stay_small() {
        let mut out = Requests::new();
        let data = payload(1000);
        out.cmd().arg(b"RESTORE").shared(data.clone()).send();
        let list = (out.deferred.as_ptr(), out.deferred.capacity());
        for ttl in 0..1000 {
            out.cmd()
                .arg(b"RESTORE")
                .arg(b"key")
                .int(ttl)
                .shared(data.clone())
                .arg(b"REPLACE")
                .arg(b"ABSTTL")
                .send();
        }
        assert_eq!((out.deferred.as_ptr(), out.deferred.capacity()), list);
        assert!(out.deferred.is_empty());
        assert!(size_of::<Command<'_>>() <= 4 * size_of::<usize>());
    }
}
