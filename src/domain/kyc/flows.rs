//! The customer's steps: kyc-start (spec §5), kyc-upload (§7) and kyc-proof (§6.2).

use super::model::CheckKind;
use super::oauth2::{
    Initiation, access_token, authorize_url_with_nonce, convert_challenger_info, provider_refusal,
};
use super::programs::RunInput;
use super::requirement::RequirementId;
use super::service::{KycService, error};
use crate::domain::primitives::{ErrorCode, NormalizedPaytoHash, TalerError};
use crate::ports::kyc::{
    BeginProcess, CompleteOutcome, CompletedProcess, Completion, MeasureRow, NewAttributes,
};

/// What kyc-upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    Stored,
    /// The same attributes were uploaded before: nothing changed.
    Replay,
}

/// The OAuth2 parameters kyc-proof receives.
#[derive(Debug, Clone, Default)]
pub struct ProofParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// kyc-proof answers HTML, with the status decided here.
#[derive(Debug, Clone, PartialEq)]
pub enum ProofFailure {
    /// Shown as an HTML page.
    Page { status: u16, error: TalerError },
    /// Parameter errors answered as JSON (spec §6.2 step 2).
    Json { status: u16, error: TalerError },
}

fn page(status: u16, code: ErrorCode, hint: &'static str) -> ProofFailure {
    ProofFailure::Page {
        status,
        error: error(code, hint),
    }
}

impl From<TalerError> for ProofFailure {
    fn from(error: TalerError) -> Self {
        ProofFailure::Page { status: 500, error }
    }
}

impl From<crate::ports::StoreError> for ProofFailure {
    fn from(error: crate::ports::StoreError) -> Self {
        ProofFailure::from(TalerError::from(error))
    }
}

use super::service::Attributes;

impl KycService {
    /// Loads the measure set an id names, checked like kyc-start (steps 4–6).
    fn authorized_measure(
        &self,
        id: &RequirementId,
        unknown: ErrorCode,
    ) -> Result<MeasureRow, TalerError> {
        let not_found = || error(unknown, "no such requirement");
        let measure = self.store.measure(id.serial)?.ok_or_else(not_found)?;
        let account = self
            .store
            .account(&measure.h_payto)?
            .ok_or_else(not_found)?;
        if measure.is_finished && unknown == ErrorCode::GenericEndpointUnknown {
            // kyc-start tells a finished set apart before checking the hash (as upstream).
            return Err(error(
                ErrorCode::ExchangeKycFormAlreadyUploaded,
                "requirement already satisfied",
            ));
        }
        if !id.authorizes(&account.access_token) {
            return Err(not_found());
        }
        Ok(measure)
    }

    /// POST /kyc-start/$ID: the URL to send the customer to, idempotently.
    pub fn start(&self, id: &str) -> Result<String, TalerError> {
        let id = Self::parse_id(id)?;
        let measure = self.authorized_measure(&id, ErrorCode::GenericEndpointUnknown)?;
        let index = usize::try_from(id.index).unwrap_or(usize::MAX);
        let info = measure.measures.measures.get(index).ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycMeasureIndexInvalid,
                "no measure with this index",
            )
        })?;
        let check = self.rules.checks.get(&info.check_name);
        let provider_name = match check.map(|c| &c.kind) {
            Some(CheckKind::Link { provider }) => provider.clone(),
            Some(_) => {
                return Err(error(
                    ErrorCode::ExchangeKycInvalidLogicToCheck,
                    "not a LINK check",
                ));
            }
            None if info.check_name == super::model::SKIP => {
                return Err(error(
                    ErrorCode::ExchangeKycInvalidLogicToCheck,
                    "not a LINK check",
                ));
            }
            None => {
                return Err(error(
                    ErrorCode::ExchangeKycGenericCheckGone,
                    "check no longer configured",
                ));
            }
        };
        let provider = self.rules.providers.get(&provider_name).ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycGenericLogicUnknown,
                "provider no longer configured",
            )
        })?;
        // Concurrent starts wait for the first one's URL instead of setting up their own.
        self.provider_steps.exclusive(&measure.h_payto, || {
            self.start_process(&id, &measure, info, provider, &provider_name)
        })
    }

    fn start_process(
        &self,
        id: &RequirementId,
        measure: &MeasureRow,
        info: &super::rules::MeasureInformation,
        provider: &super::model::OAuth2Provider,
        provider_name: &str,
    ) -> Result<String, TalerError> {
        let process_serial =
            match self
                .store
                .begin_process(id.serial, id.index, provider_name, self.clock.now())?
            {
                BeginProcess::Existing { redirect_url } => return Ok(redirect_url),
                BeginProcess::MeasureFinished => {
                    return Err(error(
                        ErrorCode::ExchangeKycFormAlreadyUploaded,
                        "requirement already satisfied",
                    ));
                }
                BeginProcess::Started { process_serial } => process_serial,
            };
        match self.initiate(provider, &measure.h_payto, info.context.as_ref()) {
            // A concurrent start of the same requirement may have recorded its URL first.
            Ok(url) => Ok(self.store.record_redirect(process_serial, &url)?),
            Err(failure) => {
                self.store
                    .fail_process(process_serial, failure.code.number(), &failure.hint)?;
                Err(failure)
            }
        }
    }

    fn initiate(
        &self,
        provider: &super::model::OAuth2Provider,
        h_payto: &NormalizedPaytoHash,
        context: Option<&serde_json::Value>,
    ) -> Result<String, TalerError> {
        let (setup_url, authorize_base, query) = match provider.initiation(&self.base_url, h_payto)
        {
            Initiation::Redirect(url) => return Ok(url),
            Initiation::Setup {
                setup_url,
                authorize_base,
                query,
            } => (setup_url, authorize_base, query),
        };
        let backend = || {
            error(
                ErrorCode::ExchangeKycProofBackendInvalidResponse,
                "the provider did not set up the validation",
            )
        };
        let initial_address = context.and_then(|c| c.get("initial_address"));
        let answer = self
            .http
            .post_json(&setup_url, Some(&provider.client_secret), initial_address)
            .map_err(|e| backend().with_detail(e.to_string()))?;
        let nonce = answer
            .json
            .as_ref()
            .filter(|_| answer.status == 200)
            .and_then(|json| json.get("nonce"))
            .and_then(|nonce| nonce.as_str())
            .ok_or_else(|| backend().with_detail(format!("setup answered {}", answer.status)))?;
        Ok(authorize_url_with_nonce(&authorize_base, nonce, &query))
    }

    /// kyc-start's id check, before its body is looked at.
    pub fn check_start_id(&self, id: &str) -> Result<(), TalerError> {
        let id = Self::parse_id(id)?;
        self.authorized_measure(&id, ErrorCode::GenericEndpointUnknown)
            .map(drop)
    }

    /// kyc-upload's id check, before any body is parsed: an unknown or unauthorized id is
    /// refused without spending work on what came with it.
    pub fn check_upload_id(&self, id: &str) -> Result<(), TalerError> {
        let id = Self::parse_id(id)?;
        self.authorized_measure(&id, ErrorCode::ExchangeKycCheckRequestUnknown)
            .map(drop)
    }

    /// POST /kyc-upload/$ID with the form's attributes.
    pub fn upload(&self, id: &str, attributes: Attributes) -> Result<UploadOutcome, TalerError> {
        let id = Self::parse_id(id)?;
        let measure = self.authorized_measure(&id, ErrorCode::ExchangeKycCheckRequestUnknown)?;
        if measure.is_finished {
            return self.upload_replay(&id, &attributes);
        }
        let index = usize::try_from(id.index).unwrap_or(usize::MAX);
        let info = measure.measures.measures.get(index).ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycMeasureIndexInvalid,
                "no measure with this index",
            )
        })?;
        let check = self.rules.checks.get(&info.check_name).ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycGenericCheckGone,
                "check no longer configured",
            )
        })?;
        let CheckKind::Form { form_name } = &check.kind else {
            return Err(error(
                ErrorCode::ExchangeKycNotAForm,
                "this requirement is not a form",
            ));
        };
        let program = self.rules.programs.get(&info.prog_name).ok_or_else(|| {
            error(
                ErrorCode::ExchangeKycGenericAmlProgramGone,
                "AML program no longer configured",
            )
        })?;
        if attributes.get("FORM_ID").and_then(|f| f.as_str()) != Some(form_name.as_str()) {
            return Err(error(
                ErrorCode::GenericParameterMalformed,
                "FORM_ID does not name this form",
            )
            .with_detail(format!("FORM_ID must be {form_name}")));
        }
        let required = check.outputs.iter().chain(&program.required_attributes);
        if let Some(missing) = required
            .into_iter()
            .find(|name| !attributes.contains_key(name.as_str()))
        {
            return Err(
                error(ErrorCode::ExchangeKycAmlFormIncomplete, "form incomplete")
                    .with_detail(missing.clone()),
            );
        }
        let now = self.clock.now();
        let (_, current) = self.current_rules(&measure.h_payto)?;
        let run = self.run_aml_program(
            &info.prog_name,
            &RunInput {
                h_payto: &measure.h_payto,
                context: info.context.as_ref(),
                attributes: Some(&attributes),
                current: &current,
            },
        )?;
        let failure = run.caller_error();
        let completion = Completion {
            h_payto: measure.h_payto,
            measure_serial: measure.serial,
            process: CompletedProcess::Form {
                measure_index: id.index,
            },
            attributes: NewAttributes {
                form_id: Some(form_name.clone()),
                collection_time: now,
                expiration_time: crate::domain::primitives::Timestamp::never(),
                encrypted: self.seal(&attributes)?,
                provider_name: None,
            },
            outcome: Some(run.outcome),
            next_measures: None,
            process_error: run.failure.map(|(code, message)| (code.number(), message)),
            now,
        };
        match self.store.complete(completion)? {
            CompleteOutcome::Completed => failure.map_or(Ok(UploadOutcome::Stored), Err),
            CompleteOutcome::AlreadyFinished => self.upload_replay(&id, &attributes),
        }
    }

    /// A finished set: 204 if these very attributes completed it, else 409/1941.
    fn upload_replay(
        &self,
        id: &RequirementId,
        attributes: &Attributes,
    ) -> Result<UploadOutcome, TalerError> {
        let stored = self
            .store
            .finished_process(id.serial, id.index)?
            .and_then(|finished| finished.attributes);
        let same = stored
            .and_then(|blob| self.cipher.open(&blob))
            .is_some_and(|old| &old == attributes);
        if same {
            Ok(UploadOutcome::Replay)
        } else {
            Err(error(
                ErrorCode::ExchangeKycFormAlreadyUploaded,
                "requirement already satisfied",
            ))
        }
    }

    /// GET /kyc-proof/$PROVIDER_NAME: finishes an OAuth2 hand-off; answers where the browser
    /// goes next.
    pub fn proof(&self, provider_name: &str, params: ProofParams) -> Result<String, ProofFailure> {
        let provider = match self.rules.providers.get(provider_name) {
            Some(provider) => provider,
            None if self
                .rules
                .providers
                .contains_key(&provider_name.to_ascii_lowercase()) =>
            {
                return Err(page(
                    400,
                    ErrorCode::GenericParameterMalformed,
                    "provider name must be written in lower case",
                ));
            }
            None => {
                return Err(page(
                    404,
                    ErrorCode::ExchangeKycGenericLogicUnknown,
                    "unknown provider",
                ));
            }
        };
        let state = params.state.as_deref().ok_or_else(|| ProofFailure::Json {
            status: 400,
            error: error(ErrorCode::GenericParameterMissing, "state missing").with_detail("state"),
        })?;
        let h_payto: NormalizedPaytoHash = state.parse().map_err(|_| ProofFailure::Json {
            status: 400,
            error: error(ErrorCode::GenericParameterMalformed, "state malformed")
                .with_detail("state"),
        })?;
        // Concurrent loads of one callback take turns: the first exchanges the code, the
        // others find its process finished and end on the same success page.
        self.provider_steps
            .exclusive(&h_payto, || self.finish_proof(provider, h_payto, &params))
    }

    fn finish_proof(
        &self,
        provider: &super::model::OAuth2Provider,
        h_payto: NormalizedPaytoHash,
        params: &ProofParams,
    ) -> Result<String, ProofFailure> {
        let Some(process) = self.store.open_process(&h_payto, &provider.name)? else {
            let latest = self.store.latest_process(&h_payto, &provider.name)?;
            // Completed by the provider (not closed by an officer): a reload of the callback.
            let completed = latest
                .is_some_and(|p| p.finished && p.error_code == 0 && p.provider_user_id.is_some());
            if completed && params.code.is_some() {
                return Ok(provider.post_url.clone());
            }
            return Err(page(
                404,
                ErrorCode::ExchangeKycProofRequestUnknown,
                "no validation is waiting for this proof",
            ));
        };
        if process.provider_legitimization_id.as_deref()
            != Some(process.serial.to_string().as_str())
        {
            return Err(page(
                500,
                ErrorCode::GenericInternalInvariantFailure,
                "process is inconsistent",
            ));
        }
        if let Some(oauth_error) = &params.error {
            if oauth_error != "temporarily_unavailable" {
                let message = params
                    .error_description
                    .clone()
                    .unwrap_or_else(|| oauth_error.clone());
                self.store.fail_process(
                    process.serial,
                    ErrorCode::ExchangeGenericKycFailed.number(),
                    &message,
                )?;
            }
            return Err(page(
                403,
                ErrorCode::ExchangeGenericKycFailed,
                "the provider refused the validation",
            ));
        }
        let Some(code) = &params.code else {
            return Err(page(
                400,
                ErrorCode::GenericParameterMalformed,
                "neither code nor error given",
            ));
        };
        let unexpected = || {
            page(
                502,
                ErrorCode::ExchangeKycGenericProviderUnexpectedReply,
                "the provider answered unexpectedly",
            )
        };
        let form = provider.token_request(&self.base_url, &h_payto, code);
        let answer = self
            .http
            .post_form(&provider.token_url, &form)
            .map_err(|_| unexpected())?;
        let answer = self.refused_or(process.serial, answer)?;
        let token = answer
            .json
            .as_ref()
            .and_then(access_token)
            .ok_or_else(unexpected)?;
        let info = self
            .http
            .get(&provider.info_url, &token)
            .map_err(|_| unexpected())?;
        let info = self.refused_or(process.serial, info)?;
        let now = self.clock.now();
        let converted = info
            .json
            .as_ref()
            .and_then(|json| convert_challenger_info(json, now, provider.validity))
            .ok_or_else(unexpected)?;
        let measure = self
            .store
            .measure(process.measure_serial)?
            .ok_or_else(unexpected)?;
        let index = usize::try_from(process.measure_index).unwrap_or(usize::MAX);
        let info = measure
            .measures
            .measures
            .get(index)
            .ok_or_else(unexpected)?;
        let (_, current) = self.current_rules(&h_payto)?;
        let run = self.run_aml_program(
            &info.prog_name,
            &RunInput {
                h_payto: &h_payto,
                context: info.context.as_ref(),
                attributes: Some(&converted.attributes),
                current: &current,
            },
        )?;
        let failure = run.caller_error();
        let completion = Completion {
            h_payto,
            measure_serial: measure.serial,
            process: CompletedProcess::Provider {
                process_serial: process.serial,
                provider_user_id: converted.provider_user_id.clone(),
            },
            attributes: NewAttributes {
                form_id: converted
                    .attributes
                    .get("FORM_ID")
                    .and_then(|f| f.as_str())
                    .map(str::to_owned),
                collection_time: now,
                expiration_time: converted.expiration,
                encrypted: self.seal(&converted.attributes)?,
                provider_name: Some(provider.name.clone()),
            },
            outcome: Some(run.outcome),
            next_measures: None,
            process_error: run.failure.map(|(code, message)| (code.number(), message)),
            now,
        };
        match self.store.complete(completion)? {
            CompleteOutcome::Completed => match failure {
                None => Ok(provider.post_url.clone()),
                Some(error) => Err(ProofFailure::Page { status: 500, error }),
            },
            CompleteOutcome::AlreadyFinished => Err(page(
                404,
                ErrorCode::ExchangeKycProofRequestUnknown,
                "no validation is waiting for this proof",
            )),
        }
    }

    /// A non-200 provider answer: a proper OAuth2 refusal fails the process (403); anything
    /// else is the provider's problem (502), and the process stays open.
    fn refused_or(
        &self,
        process_serial: u64,
        answer: crate::ports::provider_http::HttpAnswer,
    ) -> Result<crate::ports::provider_http::HttpAnswer, ProofFailure> {
        if answer.status == 200 {
            return Ok(answer);
        }
        match answer.json.as_ref().and_then(provider_refusal) {
            Some((code, description)) => {
                let message = format!("{code}: {description}");
                self.store.fail_process(
                    process_serial,
                    ErrorCode::ExchangeGenericKycFailed.number(),
                    &message,
                )?;
                Err(page(
                    403,
                    ErrorCode::ExchangeGenericKycFailed,
                    "the provider refused the validation",
                ))
            }
            None => Err(page(
                502,
                ErrorCode::ExchangeKycGenericProviderUnexpectedReply,
                "the provider answered unexpectedly",
            )),
        }
    }
}
