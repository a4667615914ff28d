//! The emulated lock's randomness: SHA-256 of a seed and a counter, exactly as
//! protocol/examples/mcu_inputs.rs draws it, so the nonces of its sealed answers are the
//! host's and the answers can be compared byte for byte. An emulator has no TRNG; a real lock
//! passes its hardware generator here.

use sha2::{Digest, Sha256};

pub struct CounterRng {
    seed: [u8; 32],
    counter: u64,
}

impl CounterRng {
    pub fn new(seed: [u8; 32]) -> CounterRng {
        CounterRng { seed, counter: 0 }
    }
}

impl rand_core::RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// The emulator's stand-in for a hardware generator (see the module doc).
impl rand_core::CryptoRng for CounterRng {}
