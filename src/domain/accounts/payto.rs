//! Paytos as the bank reads them from requests (libeufin's rules, corebank spec §1.5): looser
//! than the exchange's full paytos (no `receiver-name` needed), IBANs with spaces or dashes.

use crate::domain::primitives::Iban;
use crate::domain::primitives::payto::receiver_name_param;

use super::model::{AccountAddress, Username};
use crate::domain::primitives::percent_encode;

/// A payto URI from a bank request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankPayto {
    Iban {
        bic: Option<String>,
        iban: Iban,
        receiver_name: Option<String>,
    },
    XTalerBank {
        username: Username,
        receiver_name: Option<String>,
    },
}

impl BankPayto {
    /// Parses `payto://iban/[BIC/]IBAN[?…]` or `payto://x-taler-bank/HOST/USERNAME[?…]`.
    pub fn parse(text: &str) -> Option<BankPayto> {
        let scheme_end = "payto://".len();
        let (scheme, rest) = (text.get(..scheme_end)?, text.get(scheme_end..)?);
        if !scheme.eq_ignore_ascii_case("payto://") {
            return None;
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let receiver_name = receiver_name_param(query).ok()?;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [method, iban] if method.eq_ignore_ascii_case("iban") => Some(BankPayto::Iban {
                bic: None,
                iban: Iban::parse(iban).ok()?,
                receiver_name,
            }),
            [method, bic, iban] if method.eq_ignore_ascii_case("iban") => Some(BankPayto::Iban {
                bic: Some((*bic).to_owned()),
                iban: Iban::parse(iban).ok()?,
                receiver_name,
            }),
            [method, _host, username] if method.eq_ignore_ascii_case("x-taler-bank") => {
                Some(BankPayto::XTalerBank {
                    username: Username::parse(username)?,
                    receiver_name,
                })
            }
            _ => None,
        }
    }

    /// The canonical account address (BIC, host and query dropped).
    pub fn address(&self) -> AccountAddress {
        match self {
            BankPayto::Iban { iban, .. } => AccountAddress::Iban(iban.clone()),
            BankPayto::XTalerBank { username, .. } => AccountAddress::XTalerBank(username.clone()),
        }
    }

    /// The full form of an IBAN payto: its own `receiver-name`, else `default_name`.
    pub fn iban_full_form(&self, default_name: &str) -> Option<String> {
        let BankPayto::Iban {
            bic,
            iban,
            receiver_name,
        } = self
        else {
            return None;
        };
        let name = percent_encode(receiver_name.as_deref().unwrap_or(default_name));
        Some(match bic {
            Some(bic) => format!("payto://iban/{bic}/{iban}?receiver-name={name}"),
            None => format!("payto://iban/{iban}?receiver-name={name}"),
        })
    }
}

/// A fresh German test IBAN as libeufin generates them: `DE` + check digits + 11 digits.
pub fn generate_iban(random_digits: [u8; 11]) -> Option<Iban> {
    let bban: String = random_digits
        .iter()
        .map(|d| char::from(b'0' + d % 10))
        .collect();
    // Check digits: 98 − (BBAN ‖ "DE00" as digits) mod 97.
    let remainder = format!("{bban}131400")
        .bytes()
        .fold(0u32, |acc, digit| (acc * 10 + u32::from(digit - b'0')) % 97);
    Iban::parse(&format!("DE{:02}{bban}", 98 - remainder)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iban_paytos_with_and_without_bic() {
        let plain = BankPayto::parse("payto://iban/DE89370400440532013000").unwrap();
        assert_eq!(
            plain.address().canonical(),
            "payto://iban/DE89370400440532013000"
        );
        let full = BankPayto::parse(
            "PAYTO://IBAN/SANDBOXX/de89 3704 0044 0532 0130 00?receiver-name=A%20B",
        )
        .unwrap();
        assert_eq!(
            full.address().canonical(),
            "payto://iban/DE89370400440532013000"
        );
        assert_eq!(
            full.iban_full_form("Other").unwrap(),
            "payto://iban/SANDBOXX/DE89370400440532013000?receiver-name=A%20B"
        );
        assert_eq!(
            plain.iban_full_form("Jo Doe").unwrap(),
            "payto://iban/DE89370400440532013000?receiver-name=Jo%20Doe"
        );
    }

    #[test]
    fn x_taler_bank_paytos() {
        let payto =
            BankPayto::parse("payto://x-taler-bank/bank.example.com/alice?receiver-name=Alice")
                .unwrap();
        assert_eq!(
            payto.address().canonical(),
            "payto://x-taler-bank/localhost/alice"
        );
        assert_eq!(payto.iban_full_form("x"), None);
    }

    #[test]
    fn malformed_paytos() {
        for bad in [
            "",
            "http://iban/DE89370400440532013000",
            "payto://iban/DE89370400440532013001",
            "payto://iban/A/B/DE89370400440532013000",
            "payto://x-taler-bank/alice",
            "payto://bitcoin/1abc",
            "payto://iban/DE89370400440532013000?receiver-name=%ZZ",
        ] {
            assert_eq!(BankPayto::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_ibans_pass_the_checksum() {
        for seed in 0..50u8 {
            let digits =
                std::array::from_fn(|i| seed.wrapping_mul(7).wrapping_add(i as u8 * 3) % 10);
            let iban = generate_iban(digits).unwrap();
            assert!(
                iban.as_str().starts_with("DE") && iban.as_str().len() == 15,
                "{iban}"
            );
        }
    }
}
