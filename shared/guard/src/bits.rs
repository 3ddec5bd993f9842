//! Bitmaps of a text's bytes, 64 bytes a block, and the runs of ones in them: how the classifier finds its
//! words and the PII pass its digit runs. A block is read as eight pieces of eight bytes, each piece marked
//! by a test on all its bytes at once (the high bit of each marked byte), and the eight marks packed into
//! one bit a byte; a run of marked bytes is then two bit counts away however long it is, and a block
//! without a marked byte costs no branch per byte.

use std::ops::Range;

/// 1 in every byte of a `u64` read as eight bytes.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a `u64` read as eight bytes.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// The block of `bytes` from `base` (64 bytes, or the rest of `bytes` padded with zero bytes) given to `f`.
/// A whole block is borrowed, not copied.
pub(crate) fn with_block<R>(bytes: &[u8], base: usize, f: impl FnOnce(&[u8; 64]) -> R) -> R {
    if let Some(block) = bytes
        .get(base..base.saturating_add(64))
        .and_then(|b| <&[u8; 64]>::try_from(b).ok())
    {
        return f(block);
    }
    let mut padded = [0u8; 64];
    let rest = bytes.get(base..).unwrap_or_default();
    padded[..rest.len()].copy_from_slice(rest);
    f(&padded)
}

/// The bytes of `block` that `mark` marks, bit `i` for byte `i` (`mark` sets the high bit of each marked
/// byte of the eight it is given, and no other bit), and the eight pieces of the block OR-ed together as
/// read (whose high bits say whether any byte is beyond ASCII).
#[inline]
pub(crate) fn block_bitmap(block: &[u8; 64], mark: impl Fn(u64) -> u64) -> (u64, u64) {
    let mut bits = 0;
    let mut read = 0;
    for (k, eight) in block.chunks_exact(8).enumerate() {
        let mut piece = [0u8; 8];
        piece.copy_from_slice(eight);
        let piece = u64::from_le_bytes(piece);
        bits |= high_bits_packed(mark(piece)) << (8 * k);
        read |= piece;
    }
    (bits, read)
}

/// The high bits of the eight bytes of `mask` (every other bit zero) as eight bits, byte `k`'s at bit `k`:
/// the multiplication moves byte `k`'s bit to bit `56 + k`, and no two of its terms meet.
pub(crate) fn high_bits_packed(mask: u64) -> u64 {
    (mask >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The high bit of each byte of `piece` that is an ASCII digit. On the low seven bits of each byte, plus
/// `0x50` reaches `0x80` from `0` up and plus `0x46` from `:` up, with no carry into the next byte; a byte
/// with its high bit set is no digit.
pub(crate) fn ascii_digits(piece: u64) -> u64 {
    let low = piece & !HIGH;
    (low + ONES * u64::from(0x80 - b'0')) & !(low + ONES * u64::from(0x80 - b':')) & !piece & HIGH
}

/// The maximal runs of ones in the bitmap of a text of `len` bytes whose block at `base` has the bits
/// `block(base)` (bit `i` for byte `base + i`; none at or beyond `len`), in order. A run may go on across
/// blocks.
pub(crate) struct BitRuns<F> {
    len: usize,
    block: F,
    /// Where the current block starts.
    base: usize,
    /// The current block's bits not yet read.
    bits: u64,
}

impl<F: FnMut(usize) -> u64> BitRuns<F> {
    pub(crate) fn new(len: usize, mut block: F) -> Self {
        let bits = if len == 0 { 0 } else { block(0) };
        BitRuns {
            len,
            block,
            base: 0,
            bits,
        }
    }
}

impl<F: FnMut(usize) -> u64> Iterator for BitRuns<F> {
    type Item = Range<usize>;

    #[inline(always)]
    fn next(&mut self) -> Option<Range<usize>> {
        while self.bits == 0 {
            self.base += 64;
            if self.base >= self.len {
                return None;
            }
            self.bits = (self.block)(self.base);
        }
        let first = self.bits.trailing_zeros();
        let start = self.base + first as usize;
        // The run ends at the first zero bit from `first` (64: it goes on into the next block).
        let mut end = first + (!(self.bits >> first)).trailing_zeros();
        while end == 64 {
            self.base += 64;
            if self.base >= self.len {
                // The run ends the text, which ends with the block.
                self.bits = 0;
                return Some(start..self.len);
            }
            self.bits = (self.block)(self.base);
            end = (!self.bits).trailing_zeros();
        }
        self.bits &= u64::MAX << end;
        Some(start..self.base + end as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_high_bits_pack_into_a_byte() {
        for mask in 0..=255u64 {
            let spread = (0..8).fold(0u64, |m, k| m | ((mask >> k) & 1) << (8 * k + 7));
            assert_eq!(high_bits_packed(spread), mask);
        }
    }

    /// The digit bits of 64 bytes, for every byte in every place.
    #[test]
    fn sixty_four_bytes_at_a_time_find_every_digit() {
        let digits = |block: &[u8; 64]| block_bitmap(block, ascii_digits).0;
        for b in 0..=255u8 {
            for place in 0..64 {
                let mut block = [b'a'; 64];
                block[place] = b;
                let expected = if b.is_ascii_digit() { 1 << place } else { 0 };
                assert_eq!(digits(&block), expected, "{b} at {place}");
                let mut others = [b; 64];
                others[place] = b'5';
                let expected = if b.is_ascii_digit() {
                    u64::MAX
                } else {
                    1 << place
                };
                assert_eq!(digits(&others), expected, "{b} around {place}");
            }
        }
    }

    /// Runs found block by block are the runs of the whole bitmap, for runs that start, end and go on
    /// across blocks, and texts that end inside a block and on its edge.
    #[test]
    fn runs_are_the_runs_of_the_whole_bitmap() {
        let mut next = crate::tests::xorshift(0x51ED_270B);
        for _ in 0..400 {
            let len = (next() % 300) as usize;
            // Runs of random lengths, some longer than a block.
            let mut marked = vec![false; len];
            let mut at = 0;
            while at < len {
                let gap = (next() % 9) as usize;
                let run = (next() % if next().is_multiple_of(4) { 140 } else { 7 }) as usize;
                for m in marked.iter_mut().skip(at + gap).take(run) {
                    *m = true;
                }
                at += gap + run.max(1);
            }
            let block = |base: usize| {
                (0..64)
                    .filter(|&i| marked.get(base + i).copied().unwrap_or(false))
                    .fold(0u64, |bits, i| bits | 1 << i)
            };
            let mut expected: Vec<Range<usize>> = Vec::new();
            for (i, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
                match expected.last_mut() {
                    Some(run) if run.end == i => run.end = i + 1,
                    _ => expected.push(i..i + 1),
                }
            }
            let found: Vec<Range<usize>> = BitRuns::new(len, block).collect();
            assert_eq!(found, expected, "{marked:?}");
        }
    }
}
