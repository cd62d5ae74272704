//! Step 1, reading the attribute: `#[dynamo_test(timeout = "30s", ...)]`
//! becomes [`RawOptions`], which records which options were written, each
//! exactly as written (a `syn::Meta`: its name, its value and their spans).
//!
//! Reading judges only the syntax (a comma-separated list of options).
//! What a value means, unknown or repeated names, and whether the options
//! fit together are all decided in one place, `validate`, so that every
//! mistake of one attribute can be reported at once.

use proc_macro2::TokenStream;
use syn::parse::Parser as _;
use syn::punctuated::Punctuated;
use syn::{Meta, Path, Token};

/// Every option's name, as the error messages list them.
pub const KNOWN: &str =
    "`flavor`, `worker_threads`, `start_paused`, `timeout`, `services`, `crate`";

/// The attribute's options as written. `None`: not written.
#[derive(Default)]
pub struct RawOptions {
    pub flavor: Option<Meta>,
    pub worker_threads: Option<Meta>,
    pub start_paused: Option<Meta>,
    pub timeout: Option<Meta>,
    pub services: Option<Meta>,
    /// `crate = "..."`.
    pub krate: Option<Meta>,
    /// Names `#[dynamo_test]` does not know, in the order written.
    pub unknown: Vec<Path>,
    /// The second (third, ...) time an option is written; the first one
    /// is the one kept above.
    pub repeated: Vec<Path>,
}

impl RawOptions {
    /// Reads the attribute's arguments. Fails only when they are not a
    /// comma-separated list of options.
    pub fn parse(args: TokenStream) -> syn::Result<RawOptions> {
        let options = Punctuated::<Meta, Token![,]>::parse_terminated
            .parse2(args)
            .map_err(|e| {
                // syn's own wording ("expected identifier") names no option.
                syn::Error::new(
                    e.span(),
                    format!("expected options like `timeout = \"30s\"`, separated by commas; #[dynamo_test] accepts {KNOWN}"),
                )
            })?;
        let mut raw = RawOptions::default();
        for option in options {
            raw.insert(option);
        }
        Ok(raw)
    }

    fn insert(&mut self, option: Meta) {
        let path = option.path().clone();
        match self.slot(&path) {
            None => self.unknown.push(path),
            Some(slot @ None) => *slot = Some(option),
            Some(Some(_)) => self.repeated.push(path),
        }
    }

    /// Where an option of this name is kept; `None` for an unknown name.
    fn slot(&mut self, path: &Path) -> Option<&mut Option<Meta>> {
        let slot = match path.get_ident()?.to_string().as_str() {
            "flavor" => &mut self.flavor,
            "worker_threads" => &mut self.worker_threads,
            "start_paused" => &mut self.start_paused,
            "timeout" => &mut self.timeout,
            "services" => &mut self.services,
            "crate" => &mut self.krate,
            _ => return None,
        };
        Some(slot)
    }
}

/// A path as the user wrote it, for messages: `tokio::flavor`.
pub fn path_text(path: &Path) -> String {
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let leading = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{leading}{}", segments.join("::"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{quote, ToTokens as _};

    fn text(meta: &Option<Meta>) -> String {
        meta.as_ref()
            .map(|m| m.to_token_stream().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn each_option_is_kept_as_written() {
        let raw = RawOptions::parse(quote!(
            flavor = "multi_thread",
            worker_threads = 2,
            start_paused = false,
            timeout = 30,
            services(etcd, nats(isolated)),
            crate = "dt",
        ))
        .unwrap();
        assert_eq!(text(&raw.flavor), "flavor = \"multi_thread\"");
        assert_eq!(text(&raw.worker_threads), "worker_threads = 2");
        assert_eq!(text(&raw.start_paused), "start_paused = false");
        // Reading does not judge values: a number is kept for `validate`.
        assert_eq!(text(&raw.timeout), "timeout = 30");
        assert_eq!(text(&raw.services), "services (etcd , nats (isolated))");
        assert_eq!(text(&raw.krate), "crate = \"dt\"");
        assert!(raw.unknown.is_empty() && raw.repeated.is_empty());
    }

    #[test]
    fn nothing_written_is_nothing_kept() {
        let raw = RawOptions::parse(quote!()).unwrap();
        assert!(raw.flavor.is_none() && raw.timeout.is_none() && raw.krate.is_none());
    }

    #[test]
    fn unknown_and_repeated_names_are_recorded_not_rejected() {
        let raw = RawOptions::parse(quote!(
            timeout = "1s",
            retries = 3,
            timeout = "2s",
            tokio::flavor = "x"
        ))
        .unwrap();
        assert_eq!(text(&raw.timeout), "timeout = \"1s\"");
        let unknown: Vec<String> = raw.unknown.iter().map(path_text).collect();
        assert_eq!(unknown, ["retries", "tokio::flavor"]);
        let repeated: Vec<String> = raw.repeated.iter().map(path_text).collect();
        assert_eq!(repeated, ["timeout"]);
    }

    #[test]
    fn a_list_that_is_not_options_is_a_syntax_error() {
        for args in [
            quote!("30s"),
            quote!(timeout = "1s" flavor = "x"),
            quote!(= 1),
        ] {
            let e = RawOptions::parse(args).err().unwrap().to_string();
            assert!(
                e.starts_with("expected options like `timeout = \"30s\"`"),
                "{e}"
            );
        }
    }

    #[test]
    fn path_text_keeps_every_segment() {
        let path: Path = syn::parse_quote!(::a::b);
        assert_eq!(path_text(&path), "::a::b");
    }
}
