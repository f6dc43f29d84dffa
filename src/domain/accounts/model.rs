//! The bank's account model: validated names and contacts, balances, payto forms.

use std::fmt;

use crate::domain::primitives::{Amount, AmountError, Iban, Timestamp, percent_encode};

/// Usernames reserved for the bank itself.
pub const ADMIN: &str = "admin";
pub const RESERVED_USERNAMES: [&str; 2] = [ADMIN, "bank"];

/// A login name: 1 to 126 of `[a-zA-Z0-9-._~]`, case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(pub(super) String);

impl Username {
    pub fn parse(text: &str) -> Option<Username> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        let valid = (1..=126).contains(&text.len()) && text.bytes().all(allowed);
        valid.then(|| Username(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_admin(&self) -> bool {
        self.0 == ADMIN
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `email` fully matches libeufin's `[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,4}`.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b));
    // The domain's last dot starts the 2-4 letter top-level part; the rest may hold dots.
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
    let tld_ok = (2..=4).contains(&tld.len()) && tld.bytes().all(|b| b.is_ascii_alphabetic());
    local_ok && host_ok && tld_ok
}

/// Whether `phone` fully matches libeufin's `\+?[0-9]+`.
pub fn is_valid_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Contact addresses of an account (also the TAN addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactData {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A second-factor delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TanChannel {
    Sms,
    Email,
}

impl TanChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            TanChannel::Sms => "sms",
            TanChannel::Email => "email",
        }
    }

    pub fn parse(text: &str) -> Option<TanChannel> {
        match text {
            "sms" => Some(TanChannel::Sms),
            "email" => Some(TanChannel::Email),
            _ => None,
        }
    }

    /// Whether `contact` holds the address this channel delivers to.
    pub fn has_address_in(self, contact: &ContactData) -> bool {
        match self {
            TanChannel::Sms => contact.phone.is_some(),
            TanChannel::Email => contact.email.is_some(),
        }
    }
}

/// A balance: a non-negative magnitude and whether it is owed (zero is credit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub amount: Amount,
    pub has_debt: bool,
}

impl Balance {
    pub fn zero(amount_zero: Amount) -> Balance {
        Balance {
            amount: amount_zero,
            has_debt: false,
        }
    }

    /// The balance after receiving `amount`: a debt is paid off first.
    pub fn credit(&self, amount: &Amount) -> Result<Balance, AmountError> {
        if !self.has_debt {
            return Ok(Balance {
                amount: self.amount.checked_add(amount)?,
                has_debt: false,
            });
        }
        match self.amount.checked_sub(amount) {
            Ok(rest) => Ok(Balance {
                has_debt: !rest.is_zero(),
                amount: rest,
            }),
            Err(AmountError::Negative) => Ok(Balance {
                amount: amount.checked_sub(&self.amount)?,
                has_debt: false,
            }),
            Err(other) => Err(other),
        }
    }

    /// The balance after paying `amount`, or `None` when that would exceed `max_debt`
    /// (reaching exactly `-max_debt` is allowed).
    pub fn debit(
        &self,
        amount: &Amount,
        max_debt: &Amount,
    ) -> Result<Option<Balance>, AmountError> {
        let next = if self.has_debt {
            Balance {
                amount: self.amount.checked_add(amount)?,
                has_debt: true,
            }
        } else {
            match self.amount.checked_sub(amount) {
                Ok(rest) => Balance {
                    amount: rest,
                    has_debt: false,
                },
                Err(AmountError::Negative) => Balance {
                    amount: amount.checked_sub(&self.amount)?,
                    has_debt: true,
                },
                Err(other) => return Err(other),
            }
        };
        let within = !next.has_debt || next.amount.cmp_same_currency(max_debt)?.is_le();
        Ok(within.then_some(next))
    }
}

/// The address an account is known by, in libeufin's canonical form (the uniqueness key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAddress {
    Iban(Iban),
    XTalerBank(Username),
}

impl AccountAddress {
    /// `payto://iban/IBAN` or `payto://x-taler-bank/localhost/USERNAME`.
    pub fn canonical(&self) -> String {
        match self {
            AccountAddress::Iban(iban) => format!("payto://iban/{iban}"),
            AccountAddress::XTalerBank(username) => {
                format!("payto://x-taler-bank/localhost/{username}")
            }
        }
    }

    /// The form returned to clients, with the account's current name as receiver.
    pub fn bank_form(&self, name: &str, context: &PaytoContext) -> String {
        let receiver = percent_encode(name);
        match self {
            AccountAddress::Iban(iban) => match &context.bic {
                Some(bic) => format!("payto://iban/{bic}/{iban}?receiver-name={receiver}"),
                None => format!("payto://iban/{iban}?receiver-name={receiver}"),
            },
            AccountAddress::XTalerBank(username) => format!(
                "payto://x-taler-bank/{}/{username}?receiver-name={receiver}",
                context.x_taler_bank_hostname
            ),
        }
    }

    /// Parses a canonical form back (as stored).
    pub fn from_canonical(text: &str) -> Option<AccountAddress> {
        if let Some(iban) = text.strip_prefix("payto://iban/") {
            return Iban::parse(iban).ok().map(AccountAddress::Iban);
        }
        let username = text.strip_prefix("payto://x-taler-bank/localhost/")?;
        Username::parse(username).map(AccountAddress::XTalerBank)
    }
}

/// What the bank's returned paytos depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaytoContext {
    pub bic: Option<String>,
    pub x_taler_bank_hostname: String,
}

/// A stored bank account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Monotonic row id (`row_id` in listings).
    pub row_id: i64,
    pub username: Username,
    pub password_hash: String,
    pub name: String,
    pub is_public: bool,
    pub is_taler_exchange: bool,
    pub contact: ContactData,
    /// Full form, with `receiver-name`.
    pub cashout_payto: Option<String>,
    pub address: AccountAddress,
    pub balance: Balance,
    pub debit_threshold: Amount,
    pub min_cashout: Option<Amount>,
    pub tan_channels: Vec<TanChannel>,
    pub created_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl Account {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kudos(text: &str) -> Amount {
        text.parse().unwrap()
    }

    #[test]
    fn usernames() {
        assert!(Username::parse("alice.B-1_~").is_some());
        assert!(Username::parse(&"a".repeat(126)).is_some());
        for bad in ["", "a b", "a/b", "émile", &"a".repeat(127)] {
            assert!(Username::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn emails_and_phones() {
        assert!(is_valid_email("a.b+c@example.co.uk"));
        for bad in [
            "a@b",
            "a@b.c",
            "a@b.abcde",
            "@b.com",
            "a b@c.com",
            "a@b.c0m",
            "a@.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
        assert!(is_valid_phone("+41791234567") && is_valid_phone("0791234567"));
        for bad in ["", "+", "+41 79", "41-79", "++41"] {
            assert!(!is_valid_phone(bad), "{bad}");
        }
    }

    #[test]
    fn balances_follow_debt_limits() {
        let zero = Balance::zero(kudos("KUDOS:0"));
        let limit = kudos("KUDOS:10");
        let owing = zero.debit(&kudos("KUDOS:10"), &limit).unwrap().unwrap();
        assert_eq!(
            owing,
            Balance {
                amount: kudos("KUDOS:10"),
                has_debt: true
            }
        );
        assert_eq!(
            owing.debit(&kudos("KUDOS:0.00000001"), &limit).unwrap(),
            None
        );
        let repaid = owing.credit(&kudos("KUDOS:10")).unwrap();
        assert_eq!(
            repaid,
            Balance {
                amount: kudos("KUDOS:0"),
                has_debt: false
            }
        );
        let over = owing.credit(&kudos("KUDOS:12.5")).unwrap();
        assert_eq!(
            over,
            Balance {
                amount: kudos("KUDOS:2.5"),
                has_debt: false
            }
        );
        let partly = over.debit(&kudos("KUDOS:3"), &limit).unwrap().unwrap();
        assert_eq!(
            partly,
            Balance {
                amount: kudos("KUDOS:0.5"),
                has_debt: true
            }
        );
    }

    #[test]
    fn payto_forms() {
        let context = PaytoContext {
            bic: Some("SANDBOXX".into()),
            x_taler_bank_hostname: "bank.test".into(),
        };
        let iban = AccountAddress::Iban(Iban::parse("DE89370400440532013000").unwrap());
        assert_eq!(iban.canonical(), "payto://iban/DE89370400440532013000");
        assert_eq!(
            iban.bank_form("John Doe", &context),
            "payto://iban/SANDBOXX/DE89370400440532013000?receiver-name=John%20Doe"
        );
        let user = AccountAddress::XTalerBank(Username::parse("alice").unwrap());
        assert_eq!(user.canonical(), "payto://x-taler-bank/localhost/alice");
        assert_eq!(
            user.bank_form("Ali & Co", &context),
            "payto://x-taler-bank/bank.test/alice?receiver-name=Ali%20%26%20Co"
        );
        assert_eq!(
            AccountAddress::from_canonical(&user.canonical()),
            Some(user)
        );
        assert_eq!(
            AccountAddress::from_canonical(&iban.canonical()),
            Some(iban)
        );
    }
}
