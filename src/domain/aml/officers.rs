//! Officer registration: the master-signed `POST /management/aml-officers` (exchange-aml.md
//! §2.1) and the operator's CLI (§2.2).

use serde::Deserialize;

use crate::domain::primitives::json_body::from_object_slice;
use crate::domain::primitives::{
    EddsaPrivateKey, EddsaPublicKey, EddsaSignature, Timestamp, officer_status_body, purpose,
    verify_purpose,
};
use crate::ports::aml::OfficerUpsert;

use super::error::AmlError;
use super::model::{Officer, OfficerChange, OperatorAction};
use super::service::AmlService;

/// The request body (`AmlOfficerSetup`).
#[derive(Debug, Clone, Deserialize)]
pub struct AmlOfficerSetup {
    pub officer_pub: EddsaPublicKey,
    pub officer_name: String,
    pub is_active: bool,
    pub read_only: bool,
    pub change_date: Timestamp,
    pub master_sig: EddsaSignature,
}

/// An officer created by `aml officer new`, with its private key (shown once).
#[derive(Debug)]
pub struct NewOfficer {
    pub officer: Officer,
    pub private_key: EddsaPrivateKey,
}

impl AmlService {
    /// `POST /management/aml-officers`: body → 400 (22 not JSON, 26 a field), master
    /// signature → 403/1830, then the monotonic upsert (409/1831 when a newer status is
    /// stored; the same date again is an idempotent replay).
    pub fn register_officer(&self, body: &[u8]) -> Result<(), AmlError> {
        let value: serde_json::Value =
            from_object_slice(body).map_err(|e| AmlError::JsonInvalid(e.to_string()))?;
        // A missing or mistyped member is 400/22, as the exchange answers it
        // (exchange-aml-decisions.md §11 item 2).
        let setup: AmlOfficerSetup =
            serde_json::from_value(value).map_err(|e| AmlError::JsonInvalid(e.to_string()))?;
        if setup.change_date.is_never() {
            return Err(AmlError::ParameterMalformed(
                "change_date must not be never".into(),
            ));
        }
        let body = officer_status_body(
            setup.change_date,
            &setup.officer_pub,
            &setup.officer_name,
            setup.is_active,
            setup.read_only,
        );
        verify_purpose(
            &self.settings.master_pub,
            purpose::MASTER_AML_KEY,
            &body,
            &setup.master_sig,
        )
        .map_err(|_| AmlError::MasterSignatureInvalid)?;
        let change = OfficerChange {
            officer_pub: setup.officer_pub,
            name: setup.officer_name,
            is_active: setup.is_active,
            read_only: setup.read_only,
            change_date: setup.change_date,
            master_sig: Some(setup.master_sig),
        };
        match self.ports.officers.upsert_officer(&change)? {
            OfficerUpsert::Stored | OfficerUpsert::Replayed => Ok(()),
            OfficerUpsert::MoreRecentPresent => Err(AmlError::OfficerMoreRecentPresent),
        }
    }

    /// `aml officer add`: enables (or re-enables) an officer, dated now or just after its
    /// last change, so that an operator's action always wins.
    pub fn enable_officer(
        &self,
        officer_pub: &EddsaPublicKey,
        name: &str,
        read_only: bool,
    ) -> Result<Officer, AmlError> {
        let action = OperatorAction::Enable {
            name: name.to_owned(),
            read_only,
        };
        self.ports
            .officers
            .operator_update(officer_pub, &action, self.ports.clock.now())?
            .ok_or_else(|| AmlError::Internal("enabling stored no officer".into()))
    }

    /// `aml officer disable`: `None` when no such officer is registered.
    pub fn disable_officer(
        &self,
        officer_pub: &EddsaPublicKey,
    ) -> Result<Option<Officer>, AmlError> {
        Ok(self.ports.officers.operator_update(
            officer_pub,
            &OperatorAction::Disable,
            self.ports.clock.now(),
        )?)
    }

    /// `aml officer list`, ordered by public key.
    pub fn list_officers(&self) -> Result<Vec<Officer>, AmlError> {
        Ok(self.ports.officers.list_officers()?)
    }

    /// `aml officer new`: a fresh key pair, registered read-write.
    pub fn new_officer(&self, name: &str) -> Result<NewOfficer, AmlError> {
        let seed: [u8; 32] = crate::ports::random::random_bytes(self.ports.random.as_ref());
        let private_key = EddsaPrivateKey::from_seed(seed);
        let officer = self.enable_officer(&private_key.public_key(), name, false)?;
        Ok(NewOfficer {
            officer,
            private_key,
        })
    }
}
