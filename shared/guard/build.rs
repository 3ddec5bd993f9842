//! Compiles the gazetteers (`data/gazetteers/*.txt`) into one finite-state transducer the engine embeds
//! (`gazetteer.fst` in the build's output directory): every entry, ASCII letters lowercased, mapped to the
//! kinds of every list that holds it (and whether it is written in capitals everywhere); and the smaller
//! towns into a set of lower-case names (`towns.fst`); and a bit table of the entries' leading words
//! (`first_words.bin`), which spares the engine the transducer for a word no entry starts with. The engine
//! reads them in place, so a process pays nothing to load the lists.

use std::collections::BTreeMap;
use std::path::PathBuf;

mod lists {
    include!("src/pii/gazetteer_lists.rs");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo::rerun-if-changed=src/pii/gazetteer_lists.rs");
    // Entry (folded) -> (kinds, written in capitals in every list so far).
    let mut entries: BTreeMap<String, (u8, bool)> = BTreeMap::new();
    for (file, kind) in lists::LISTS {
        let path = manifest.join("data/gazetteers").join(file);
        println!("cargo::rerun-if-changed={}", path.display());
        let list = std::fs::read_to_string(&path)
            .map_err(|e| format!("gazetteer `{}`: {e}", path.display()))?;
        for entry in list.lines().map(str::trim).filter(|e| !e.is_empty()) {
            let capitals = entry.bytes().all(|b| b.is_ascii_uppercase());
            entries
                .entry(entry.to_ascii_lowercase())
                .and_modify(|(kinds, exact)| {
                    *kinds |= kind;
                    *exact &= capitals;
                })
                .or_insert((kind, capitals));
        }
    }
    let mut builder = fst::MapBuilder::memory();
    for (entry, (kinds, exact)) in &entries {
        let value = u64::from(*kinds) | if *exact { lists::EXACT } else { 0 };
        builder.insert(entry, value)?;
    }
    std::fs::write(out.join("gazetteer.fst"), builder.into_inner()?)?;

    // Every entry's leading word (its leading alphanumeric characters), hashed into a bit table: a word of
    // a text whose bit is clear starts no entry, and the engine skips the transducer for it.
    let mut first_words = vec![0u8; 1 << (lists::FIRST_WORD_BITS - 3)];
    for entry in entries.keys() {
        // The leading alphanumeric characters, as the engine's `pii::next_word` reads a word.
        let end = entry
            .char_indices()
            .find(|(_, c)| !c.is_alphanumeric())
            .map_or(entry.len(), |(at, _)| at);
        let bit = lists::first_word_bit(entry.as_bytes().get(..end).unwrap_or_default());
        if let Some(byte) = first_words.get_mut(bit / 8) {
            *byte |= 1 << (bit % 8);
        }
    }
    std::fs::write(out.join("first_words.bin"), first_words)?;

    // The smaller towns: a set of lower-case names (Unicode lower case, as the engine folds a name).
    let path = manifest.join("data/gazetteers").join(lists::TOWNS);
    println!("cargo::rerun-if-changed={}", path.display());
    let list = std::fs::read_to_string(&path)
        .map_err(|e| format!("gazetteer `{}`: {e}", path.display()))?;
    let towns: std::collections::BTreeSet<String> = list
        .lines()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut builder = fst::SetBuilder::memory();
    builder.extend_iter(&towns)?;
    std::fs::write(out.join("towns.fst"), builder.into_inner()?)?;
    Ok(())
}
