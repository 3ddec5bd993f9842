// The gazetteer lists and the kind each gives its entries, shared by the build script (which compiles the
// lists into one finite-state transducer) and the engine (which reads the kinds back), and the bit table
// of the entries' leading words both build and read. Kept free of anything but constants and a `const fn`
// so the build script can `include!` it.

/// A first name.
pub(crate) const FIRST: u8 = 1;
/// A surname.
pub(crate) const LAST: u8 = 1 << 1;
/// A city.
pub(crate) const CITY: u8 = 1 << 2;
/// A country.
pub(crate) const COUNTRY: u8 = 1 << 3;
/// A region (a US state).
pub(crate) const REGION: u8 = 1 << 4;
/// A legal-form suffix of an organisation.
pub(crate) const ORG_SUFFIX: u8 = 1 << 5;
/// Also an ordinary lower-case word (`Mode`, `Story`): a capital alone says little.
pub(crate) const COMMON: u8 = 1 << 6;

/// Set in an entry's value when it is written in capitals in every list that holds it (`AG`): it matches
/// only as written.
pub(crate) const EXACT: u64 = 1 << 8;

/// Each list's file under `shared/guard/data/gazetteers/` and the kind of its entries.
pub(crate) const LISTS: [(&str, u8); 7] = [
    ("first_names.txt", FIRST),
    ("surnames.txt", LAST),
    ("cities.txt", CITY),
    ("countries.txt", COUNTRY),
    ("regions.txt", REGION),
    ("org_suffixes.txt", ORG_SUFFIX),
    ("common_words.txt", COMMON),
];

/// The smaller towns' file: a set of its own, not a kind (see `Gazetteer::is_town`).
pub(crate) const TOWNS: &str = "towns.txt";

/// The bit table of the entries' leading words has `2^FIRST_WORD_BITS` bits (128 KiB).
pub(crate) const FIRST_WORD_BITS: u32 = 20;

/// The bit of a leading word (its bytes, ASCII letters in any case) in that table: the top
/// [`FIRST_WORD_BITS`] bits of its 64-bit FNV-1a hash, ASCII letters lowercased.
pub(crate) const fn first_word_bit(word: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < word.len() {
        hash ^= word[i].to_ascii_lowercase() as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    (hash >> (64 - FIRST_WORD_BITS)) as usize
}
