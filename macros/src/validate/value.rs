//! Reading an option's value, `name = <literal>`, with an error that says
//! what the option takes and how to write it.

use syn::spanned::Spanned as _;
use syn::{Expr, Lit, LitBool, LitInt, LitStr, Meta};

use crate::parse::path_text;

/// What an option takes, for its error: "`flavor` takes a string: write
/// `flavor = "multi_thread"`".
pub struct Takes {
    /// "a string", "an integer", ...
    pub what: &'static str,
    /// A correct use of the option.
    pub example: &'static str,
}

pub fn string<'a>(option: &'a Meta, takes: &Takes) -> syn::Result<&'a LitStr> {
    literal(option, takes, |lit| match lit {
        Lit::Str(s) => Some(s),
        _ => None,
    })
}

pub fn integer<'a>(option: &'a Meta, takes: &Takes) -> syn::Result<&'a LitInt> {
    literal(option, takes, |lit| match lit {
        Lit::Int(i) => Some(i),
        _ => None,
    })
}

pub fn boolean<'a>(option: &'a Meta, takes: &Takes) -> syn::Result<&'a LitBool> {
    literal(option, takes, |lit| match lit {
        Lit::Bool(b) => Some(b),
        _ => None,
    })
}

/// The literal after `=`, if `pick` accepts it. The error points at the
/// value when there is one, else at the option's name.
fn literal<'a, T>(
    option: &'a Meta,
    takes: &Takes,
    pick: impl FnOnce(&'a Lit) -> Option<&'a T>,
) -> syn::Result<&'a T> {
    let help = format!(
        "`{}` takes {}: write `{}`",
        path_text(option.path()),
        takes.what,
        takes.example
    );
    let Meta::NameValue(assigned) = option else {
        return Err(syn::Error::new(option.path().span(), help));
    };
    let value = ungrouped(&assigned.value);
    match value {
        Expr::Lit(lit) => pick(&lit.lit).ok_or_else(|| syn::Error::new_spanned(lit, help)),
        _ => Err(syn::Error::new_spanned(value, help)),
    }
}

/// A value that a `macro_rules!` macro passed in arrives wrapped in an
/// invisible group.
fn ungrouped(mut value: &Expr) -> &Expr {
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    value
}
