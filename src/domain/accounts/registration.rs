//! POST /accounts: registration with its check order (spec §5.2), idempotent replays (§5.4)
//! and the registration bonus (§5.5).

use crate::domain::primitives::{Amount, ErrorCode, TalerError};
use crate::ports::accounts::{AddressChoice, CreateOutcome, NewAccount};

use super::api::{RegisterAccountRequest, RegisterAccountResponse};
use super::auth::Caller;
use super::model::{
    Account, AccountAddress, ContactData, RESERVED_USERNAMES, TanChannel, Username,
};
use super::model::{is_valid_email, is_valid_phone};
use super::payto::BankPayto;
use super::service::{
    AccountService, WireType, check_password_length, error, internal, json_invalid,
};

/// A registration request whose fields have passed their validators (step 2).
struct ValidRegistration {
    username: Username,
    password: String,
    name: String,
    is_public: bool,
    is_taler_exchange: bool,
    contact: ContactData,
    cashout_payto: Option<String>,
    payto: Option<BankPayto>,
    debit_threshold: Option<Amount>,
    min_cashout: Option<Amount>,
    conversion_rate_class_id: Option<i64>,
    tan_channels: Vec<TanChannel>,
}

/// `tan_channels` wins over the deprecated single `tan_channel`.
fn requested_tan_channels(
    single: Option<TanChannel>,
    many: Option<Vec<TanChannel>>,
) -> Vec<TanChannel> {
    let mut channels = many.unwrap_or_else(|| single.into_iter().collect());
    channels.dedup();
    channels
}

impl AccountService {
    /// Who registers: with open registration any failed authentication counts as anonymous;
    /// otherwise an authenticated admin with write access is required.
    pub fn registration_caller(&self, header: Option<&str>) -> Result<Option<Caller>, TalerError> {
        if self.settings.allow_registration {
            let caller = self.authenticate(header).ok().flatten();
            return Ok(caller.filter(|c| c.is_admin() && c.can_write()));
        }
        let caller = self.require_caller(header)?;
        self.require_admin(&caller, true)?;
        Ok(Some(caller))
    }

    /// Registers an account (or recognises an identical replay); answers its payto.
    pub fn register(
        &self,
        caller: Option<&Caller>,
        request: RegisterAccountRequest,
    ) -> Result<RegisterAccountResponse, TalerError> {
        let is_admin = caller.is_some_and(Caller::is_admin);
        let valid = self.validate_registration(request)?;
        if RESERVED_USERNAMES.contains(&valid.username.as_str()) {
            return Err(error(
                ErrorCode::BankReservedUsernameConflict,
                "username reserved",
            ));
        }
        self.check_admin_only_fields(&valid, is_admin)?;
        check_password_length(&valid.password)?;
        if valid.username.as_str() == "exchange" && !valid.is_taler_exchange {
            return Err(error(
                ErrorCode::End,
                "the exchange account must be an exchange",
            ));
        }
        let address = self.address_choice(&valid)?;
        if let Some(existing) = self.store.account(&valid.username)? {
            return self.replay_or_conflict(&existing, &valid);
        }
        let password_hash = self.hasher.hash(&valid.password).map_err(internal)?;
        let bonus = self
            .settings
            .registration_bonus
            .clone()
            .filter(|_| !valid.is_taler_exchange);
        let new_account = NewAccount {
            username: valid.username.clone(),
            password_hash,
            name: valid.name.clone(),
            is_public: valid.is_public,
            is_taler_exchange: valid.is_taler_exchange,
            contact: valid.contact.clone(),
            cashout_payto: valid.cashout_payto.clone(),
            address,
            debit_threshold: valid
                .debit_threshold
                .clone()
                .unwrap_or_else(|| self.settings.default_debt_limit.clone()),
            min_cashout: valid.min_cashout.clone(),
            tan_channels: valid.tan_channels.clone(),
            created_at: self.clock.now(),
            bonus,
        };
        match self.store.create_account(new_account)? {
            CreateOutcome::Created(account) => Ok(self.registered(&account)),
            // Lost a race against a concurrent registration of the same name.
            CreateOutcome::UsernameTaken(existing) => self.replay_or_conflict(&existing, &valid),
            CreateOutcome::AddressTaken => Err(error(
                ErrorCode::BankRegisterPaytoUriReuse,
                "payto URI already used",
            )),
            CreateOutcome::BonusUnallowedDebit => Err(error(
                ErrorCode::BankUnallowedDebit,
                "the bank cannot pay the registration bonus",
            )),
        }
    }

    fn registered(&self, account: &Account) -> RegisterAccountResponse {
        RegisterAccountResponse {
            internal_payto_uri: account
                .address
                .bank_form(&account.name, &self.settings.payto),
        }
    }

    /// Step 2: every field validator, 400 with the bank's codes.
    fn validate_registration(
        &self,
        request: RegisterAccountRequest,
    ) -> Result<ValidRegistration, TalerError> {
        let username = Username::parse(&request.username)
            .ok_or_else(|| json_invalid("username: 1 to 126 of [a-zA-Z0-9-._~]"))?;
        let contact = validate_contact(request.contact_data.unwrap_or_default())?;
        let cashout_payto = match &request.cashout_payto_uri {
            None => None,
            Some(uri) => Some(
                BankPayto::parse(uri)
                    .and_then(|payto| payto.iban_full_form(&request.name))
                    .ok_or_else(|| json_invalid("cashout_payto_uri: expected an IBAN payto URI"))?,
            ),
        };
        let payto = match &request.payto_uri {
            None => None,
            Some(uri) => {
                Some(BankPayto::parse(uri).ok_or_else(|| json_invalid("payto_uri: malformed"))?)
            }
        };
        let amount = |text: &Option<String>, field| {
            text.as_deref()
                .map(|t| self.parse_amount(t, field))
                .transpose()
        };
        Ok(ValidRegistration {
            debit_threshold: amount(&request.debit_threshold, "debit_threshold")?,
            min_cashout: amount(&request.min_cashout, "min_cashout")?,
            username,
            password: request.password,
            name: request.name,
            is_public: request.is_public,
            is_taler_exchange: request.is_taler_exchange,
            contact,
            cashout_payto,
            payto,
            conversion_rate_class_id: request.conversion_rate_class_id,
            tan_channels: requested_tan_channels(request.tan_channel, request.tan_channels),
        })
    }

    /// Steps 4 and 5: fields only an admin may set, and the TAN channels an admin sets.
    fn check_admin_only_fields(
        &self,
        valid: &ValidRegistration,
        is_admin: bool,
    ) -> Result<(), TalerError> {
        if !is_admin {
            if valid.debit_threshold.is_some() {
                return Err(error(
                    ErrorCode::BankNonAdminPatchDebtLimit,
                    "only admin may set debit_threshold",
                ));
            }
            if valid.min_cashout.is_some() {
                return Err(error(
                    ErrorCode::BankNonAdminSetMinCashout,
                    "only admin may set min_cashout",
                ));
            }
            if valid.conversion_rate_class_id.is_some() {
                return Err(error(
                    ErrorCode::End,
                    "only admin may set conversion_rate_class_id",
                ));
            }
            if !valid.tan_channels.is_empty() {
                return Err(error(
                    ErrorCode::BankNonAdminSetTanChannel,
                    "only admin may set tan_channel",
                ));
            }
            return Ok(());
        }
        if valid.conversion_rate_class_id.is_some() {
            return Err(error(ErrorCode::End, "unknown conversion rate class"));
        }
        self.check_tan_channels(&valid.tan_channels, &valid.contact)
    }

    /// Channels must be configured, and the contact data must hold their addresses.
    pub(super) fn check_tan_channels(
        &self,
        channels: &[TanChannel],
        contact: &ContactData,
    ) -> Result<(), TalerError> {
        self.check_tan_channels_supported(channels)?;
        if let Some(channel) = channels.iter().find(|c| !c.has_address_in(contact)) {
            return Err(error(
                ErrorCode::BankMissingTanInfo,
                "no address for the TAN channel",
            )
            .with_detail(channel.as_str()));
        }
        Ok(())
    }

    pub(super) fn check_tan_channels_supported(
        &self,
        channels: &[TanChannel],
    ) -> Result<(), TalerError> {
        if let Some(channel) = channels
            .iter()
            .find(|c| !self.settings.tan_channels.contains(c))
        {
            return Err(error(
                ErrorCode::BankTanChannelNotSupported,
                "TAN channel not supported",
            )
            .with_detail(channel.as_str()));
        }
        Ok(())
    }

    /// Step 8: the account's address for the configured wire type.
    fn address_choice(&self, valid: &ValidRegistration) -> Result<AddressChoice, TalerError> {
        match self.settings.wire_type {
            WireType::XTalerBank => {
                // A supplied payto is ignored: the address derives from the username.
                Ok(AddressChoice::Fixed(AccountAddress::XTalerBank(
                    valid.username.clone(),
                )))
            }
            WireType::Iban => match &valid.payto {
                Some(payto @ BankPayto::Iban { .. }) => Ok(AddressChoice::Fixed(payto.address())),
                Some(BankPayto::XTalerBank { .. }) => {
                    Err(json_invalid("payto_uri: this bank only has IBAN accounts"))
                }
                None => Ok(AddressChoice::IbanCandidates(self.iban_candidates())),
            },
        }
    }

    /// An existing username: 200 for an identical replay, else 409/5121 (spec §5.4).
    fn replay_or_conflict(
        &self,
        existing: &Account,
        valid: &ValidRegistration,
    ) -> Result<RegisterAccountResponse, TalerError> {
        let same_address = match (&valid.payto, self.settings.wire_type) {
            (Some(payto), WireType::Iban) => payto.address() == existing.address,
            _ => true,
        };
        let identical = !existing.is_deleted()
            && existing.name == valid.name
            && existing.contact == valid.contact
            && existing.cashout_payto == valid.cashout_payto
            && existing.is_public == valid.is_public
            && existing.is_taler_exchange == valid.is_taler_exchange
            && existing.tan_channels == valid.tan_channels
            && same_address
            && self.hasher.verify(&valid.password, &existing.password_hash);
        if identical {
            Ok(self.registered(existing))
        } else {
            Err(error(
                ErrorCode::BankRegisterUsernameReuse,
                "username already used",
            ))
        }
    }
}

/// Validates contact addresses (400/22 on a malformed one).
pub(super) fn validate_contact(
    request: super::api::ContactDataRequest,
) -> Result<ContactData, TalerError> {
    if request
        .email
        .as_deref()
        .is_some_and(|email| !is_valid_email(email))
    {
        return Err(json_invalid("contact_data.email: malformed"));
    }
    if request
        .phone
        .as_deref()
        .is_some_and(|phone| !is_valid_phone(phone))
    {
        return Err(json_invalid("contact_data.phone: malformed"));
    }
    Ok(ContactData {
        email: request.email,
        phone: request.phone,
    })
}
