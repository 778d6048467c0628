// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause

//! ACPICA's `iasl` as an independent AML parser: it disassembles a table
//! (`iasl -d`) into ASL, from which [`device_block`] cuts one `Device`.
//!
//! The AML parser crates on crates.io (`aml`, `acpi` with its interpreter)
//! need a nightly compiler, so the tests use the reference implementation
//! of ACPI instead (Debian package `acpica-tools`).

use std::path::PathBuf;
use std::process::Command;

use super::Missing;

/// Environment variable naming the `iasl` binary.
pub const IASL_ENV: &str = "FW_CFG_IASL";

/// Finds `iasl` (`FW_CFG_IASL`, else `PATH`).
pub fn find() -> Result<PathBuf, Missing> {
    if let Some(p) = std::env::var_os(IASL_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Missing::new(
                p.display().to_string(),
                format!("{IASL_ENV} names no file"),
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("iasl"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Missing::new(
                "iasl",
                "install Debian's acpica-tools (ACPICA's disassembler), or set FW_CFG_IASL",
            )
        })
}

/// Disassembles one ACPI table (header included) into ASL text.
pub fn disassemble(iasl: &std::path::Path, table: &[u8]) -> Result<String, String> {
    let dir = super::linux::scratch_dir("iasl").map_err(|e| e.to_string())?;
    let input = dir.join("table.dat");
    std::fs::write(&input, table).map_err(|e| e.to_string())?;
    let out = Command::new(iasl)
        .current_dir(&dir)
        .args(["-d", "table.dat"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", iasl.display()))?;
    let dsl = std::fs::read_to_string(dir.join("table.dsl"));
    let _ = std::fs::remove_dir_all(&dir);
    dsl.map_err(|e| {
        format!(
            "iasl -d failed ({}, {e}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The `Device (NAME) { ... }` block of disassembled ASL, one statement
/// per line, without comments, indentation or empty lines, so blocks from
/// different tables compare equal when their AML is equivalent.
pub fn device_block(asl: &str, name: &str) -> Option<Vec<String>> {
    let header = format!("Device ({name})");
    let mut lines = asl.lines().map(|l| {
        let l = match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        };
        l.trim().to_string()
    });
    lines.by_ref().find(|l| *l == header)?;
    let mut out = vec![header];
    let mut depth = 0i32;
    for l in lines {
        if l.is_empty() {
            continue;
        }
        depth += l.matches('{').count() as i32;
        depth -= l.matches('}').count() as i32;
        out.push(l);
        if depth <= 0 && out.len() > 1 && out.last().is_some_and(|l| l.contains('}')) {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_one_device_without_comments() {
        let asl = r#"
    Scope (\_SB.PCI0)
    {
        Device (OTHR)
        {
        }

        Device (FWCF)
        {
            Name (_HID, "QEMU0002")  // _HID: Hardware ID
            Name (_STA, 0x0B)  // _STA: Status
            Name (_CRS, ResourceTemplate ()  // _CRS: Current Resource Settings
            {
                IO (Decode16,
                    0x0510,             // Range Minimum
                    0x0510,             // Range Maximum
                    0x01,               // Alignment
                    0x0C,               // Length
                    )
            })
        }
    }
"#;
        let b = device_block(asl, "FWCF").unwrap();
        assert_eq!(
            b,
            [
                "Device (FWCF)",
                "{",
                "Name (_HID, \"QEMU0002\")",
                "Name (_STA, 0x0B)",
                "Name (_CRS, ResourceTemplate ()",
                "{",
                "IO (Decode16,",
                "0x0510,",
                "0x0510,",
                "0x01,",
                "0x0C,",
                ")",
                "})",
                "}"
            ]
        );
        assert_eq!(
            device_block(asl, "OTHR").unwrap(),
            ["Device (OTHR)", "{", "}"]
        );
        assert_eq!(device_block(asl, "NONE"), None);
    }
}
