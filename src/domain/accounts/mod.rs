//! Bank accounts: libeufin-bank's Corebank account rules (registration, authentication,
//! reconfiguration, deletion, listings) over the `AccountStore` port.

mod auth;
mod model;

pub use auth::{
    Access, Caller, Credentials, Scope, TOKEN_PREFIX, TokenRecord, TokenSecret, parse_authorization,
};
pub use model::{
    ADMIN, Account, AccountAddress, Balance, ContactData, PaytoContext, RESERVED_USERNAMES,
    TanChannel, Username, is_valid_email, is_valid_phone, percent_encode,
};
