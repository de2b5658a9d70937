//! Just enough ELF reading to tell whether a release binary is stripped (B5 reports stripped sizes).

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not a 64-bit little-endian ELF file")]
    NotElf64LittleEndian,
    #[error("the section header table lies outside the file")]
    Truncated,
}

const SHT_SYMTAB: u32 = 2;

/// A binary is stripped when it has no static symbol table (`.symtab`); `strip = true` in the release
/// profile removes it together with the debug sections. Only ELF64 little-endian (x86_64, aarch64).
pub fn is_stripped(file: &[u8]) -> Result<bool, ElfError> {
    if file.len() < 64 || file[..4] != [0x7f, b'E', b'L', b'F'] || file[4] != 2 || file[5] != 1 {
        return Err(ElfError::NotElf64LittleEndian);
    }
    let section_table = read_u64(file, 0x28)? as usize;
    let entry_size = read_u16(file, 0x3a)? as usize;
    let entries = read_u16(file, 0x3c)? as usize;
    for index in 0..entries {
        let entry = section_table
            .checked_add(index.checked_mul(entry_size).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)?;
        if read_u32(file, entry + 4)? == SHT_SYMTAB {
            return Ok(false);
        }
    }
    Ok(true)
}

fn field<const N: usize>(file: &[u8], at: usize) -> Result<[u8; N], ElfError> {
    file.get(at..at.checked_add(N).ok_or(ElfError::Truncated)?)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(ElfError::Truncated)
}

fn read_u16(file: &[u8], at: usize) -> Result<u16, ElfError> {
    field(file, at).map(u16::from_le_bytes)
}

fn read_u32(file: &[u8], at: usize) -> Result<u32, ElfError> {
    field(file, at).map(u32::from_le_bytes)
}

fn read_u64(file: &[u8], at: usize) -> Result<u64, ElfError> {
    field(file, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE image: header + a section table of `types` at offset 64.
    fn elf_with_sections(types: &[u32]) -> Vec<u8> {
        let mut file = vec![0u8; 64];
        file[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        file[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for section_type in types {
            let mut entry = vec![0u8; 64];
            entry[4..8].copy_from_slice(&section_type.to_le_bytes());
            file.extend(entry);
        }
        file
    }

    #[test]
    fn a_binary_with_a_symbol_table_is_not_stripped() {
        assert_eq!(
            is_stripped(&elf_with_sections(&[0, 1, SHT_SYMTAB, 3])),
            Ok(false)
        );
    }

    #[test]
    fn a_binary_without_a_symbol_table_is_stripped() {
        // PROGBITS, STRTAB, DYNSYM: what `strip` leaves behind.
        assert_eq!(is_stripped(&elf_with_sections(&[0, 1, 3, 11])), Ok(true));
    }

    #[test]
    fn a_section_table_past_the_end_of_the_file_is_reported_not_misread() {
        let mut file = elf_with_sections(&[1, SHT_SYMTAB]);
        file.truncate(64 + 64 + 4);
        assert_eq!(is_stripped(&file), Err(ElfError::Truncated));
    }

    #[test]
    fn a_script_is_not_an_elf_binary() {
        assert_eq!(
            is_stripped(b"#!/bin/sh\nexec true\n"),
            Err(ElfError::NotElf64LittleEndian)
        );
    }

    // The dev profile keeps symbols; under `--release` (strip = true) the premise would not hold.
    #[cfg(debug_assertions)]
    #[test]
    fn this_test_binary_built_with_symbols_is_not_stripped() {
        let path = std::env::current_exe().expect("test binary path");
        let file = std::fs::read(path).expect("test binary readable");
        assert_eq!(is_stripped(&file), Ok(false));
    }
}
