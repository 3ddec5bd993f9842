// The gazetteer lists and the kind each gives its entries, shared by the build script (which compiles the
// lists into one finite-state transducer) and the engine (which reads the kinds back). Kept free of
// anything but constants so the build script can `include!` it.

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
