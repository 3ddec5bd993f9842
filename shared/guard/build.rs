//! Compiles the gazetteers (`data/gazetteers/*.txt`) into one finite-state transducer the engine embeds
//! (`gazetteer.fst` in the build's output directory): every entry, ASCII letters lowercased, mapped to the
//! kinds of every list that holds it (and whether it is written in capitals everywhere); and the smaller
//! towns into a set of lower-case names (`towns.fst`). The engine reads both in place, so a process pays
//! nothing to load the lists.

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
