//! Bank accounts: libeufin-bank's Corebank account rules (registration, authentication,
//! reconfiguration, deletion, listings) over the `AccountStore` port.

pub mod api;
mod auth;
mod listing;
mod manage;
mod model;
mod payto;
mod registration;
mod service;

pub use auth::{
    Access, Caller, Credentials, Scope, TOKEN_PREFIX, TokenRecord, TokenSecret, parse_authorization,
};
pub use listing::page_from_query;
pub use model::{
    ADMIN, Account, AccountAddress, Balance, ContactData, PaytoContext, RESERVED_USERNAMES,
    TanChannel, Username, is_valid_email, is_valid_phone,
};
pub use payto::{BankPayto, generate_iban};
pub use service::{AccountService, BankSettings, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, WireType};

#[cfg(test)]
mod tests;
