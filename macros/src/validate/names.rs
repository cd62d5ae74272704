//! Option names: each one known, and written once.

use crate::errors::all;
use crate::parse::{path_text, RawOptions, KNOWN};

/// An error for each unknown name and each repeated option.
pub fn check(raw: &RawOptions) -> syn::Result<()> {
    let unknown = raw.unknown.iter().map(|path| {
        syn::Error::new_spanned(
            path,
            format!(
                "unknown option `{}`; #[dynamo_test] accepts {KNOWN}",
                path_text(path)
            ),
        )
    });
    let repeated = raw.repeated.iter().map(|path| {
        let name = path_text(path);
        let fix = match name.as_str() {
            "services" => "list every service in one `services(...)`",
            _ => "write it once",
        };
        syn::Error::new_spanned(path, format!("duplicate option `{name}`; {fix}"))
    });
    all(unknown.chain(repeated).map(Err::<(), _>)).map(drop)
}
