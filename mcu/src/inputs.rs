//! Reads what `cargo run -p door-protocol --example mcu_inputs` wrote (its module doc has the
//! format), where scripts/bench-mcu placed it: a u32 length at [`BASE`], the bytes after it.
//! Inputs the harness's own tool made: a malformed file is a bug, so it panics.

pub const BASE: usize = 0x6000_0000;

pub struct Reader {
    rest: &'static [u8],
}

impl Reader {
    pub fn new() -> Reader {
        // SAFETY: the emulator maps BASE read-only before starting, with a u32 length there
        // and that many bytes after it; nothing writes it while the image runs.
        let rest = unsafe {
            let len = core::ptr::read_volatile(BASE as *const u32) as usize;
            core::slice::from_raw_parts((BASE + 4) as *const u8, len)
        };
        Reader { rest }
    }

    fn take(&mut self, n: usize) -> &'static [u8] {
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        head
    }

    pub fn magic(&mut self) {
        assert_eq!(self.take(4), b"DMCU", "not mcu_inputs output");
    }

    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().expect("took N bytes")
    }

    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    /// A u32 length, then that many bytes.
    pub fn bytes(&mut self) -> &'static [u8] {
        let len = self.u32() as usize;
        self.take(len)
    }
}
