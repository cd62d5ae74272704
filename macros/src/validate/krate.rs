//! `crate = "path"`: where generated code finds the runtime crate when it
//! is renamed (or re-exported by another crate).

use syn::{Meta, Path};

use super::value::{self, Takes};

pub fn build(option: &Meta) -> syn::Result<Path> {
    let takes = Takes {
        what: "a string",
        example: "crate = \"my_dynamo_test\"",
    };
    let lit = value::string(option, &takes)?;
    lit.parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            "`crate` takes a path to the dynamo-test crate, e.g. `crate = \"my_dynamo_test\"`",
        )
    })
}
