//! Importing a file into a real tenant store while someone is still
//! writing it: nothing of a file that changed under the import is
//! committed, and the complete file imports once it is complete.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use touchpoint_common::config::StoresConfig;
use touchpoint_common::domain::ImportStatus;
use touchpoint_common::TenantId;
use touchpointd::import::{import_file, import_reading, ImportOptions};
use touchpointd::store::Stores;

/// Reads the file like the importer does and, at its end, writes the rest
/// of the export, as a slow uploader does who pauses longer than the
/// inbox's settle time.
struct WriterGoesOn {
    file: File,
    rest: Option<(File, Vec<u8>)>,
}

impl Read for WriterGoesOn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n == 0 {
            if let Some((mut writer, rest)) = self.rest.take() {
                writer.write_all(&rest)?;
                writer.flush()?;
            }
        }
        Ok(n)
    }
}

#[test]
fn a_file_that_grows_while_it_is_imported_is_not_committed_and_imports_once_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = Stores::open(&dir.path().join("state"), &StoresConfig::default()).expect("stores");
    let tenant = TenantId::new("d001").expect("id");
    stores
        .central()
        .register_tenant(&tenant, "Autohaus Müller GmbH")
        .expect("register");
    let store = stores.tenant(&tenant).expect("tenant");

    let first_half = "Kundennr;Nachname;Ort\n1;Meier;Ulm\n2;Weiss;Ulm\n";
    let second_half = "3;Kurz;Ulm\n4;Lang;Ulm\n";
    let path = dir.path().join("kunden.csv");
    std::fs::write(&path, first_half).expect("write");
    let file = File::open(&path).expect("open");
    let input = WriterGoesOn {
        file: File::open(&path).expect("open"),
        rest: Some((
            OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open for append"),
            second_half.as_bytes().to_vec(),
        )),
    };

    let report = import_reading(
        &store,
        &file,
        input,
        "kunden.csv",
        &ImportOptions::default(),
    )
    .expect("import");
    assert_eq!(
        report.status,
        ImportStatus::Failed {
            reason: format!(
                "the file changed while it was being imported (it had {} bytes, then {}); nothing of it was imported",
                first_half.len(),
                first_half.len() + second_half.len()
            )
        }
    );
    assert_eq!(
        store.stats().expect("stats").customers,
        0,
        "nothing committed"
    );

    let again =
        import_file(&store, &path, "kunden.csv", &ImportOptions::default()).expect("import");
    assert_eq!(again.status, ImportStatus::Committed, "{again:#?}");
    assert_eq!((again.rows_total, again.rows_ok), (4, 4));
    assert_eq!(store.stats().expect("stats").customers, 4);
}
