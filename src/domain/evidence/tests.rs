use proptest::prelude::*;
use sha2::{Digest, Sha512};

use super::*;
use crate::domain::primitives::{EddsaPrivateKey, NormalizedPaytoHash, Timestamp};

fn key() -> EddsaPrivateKey {
    EddsaPrivateKey::from_seed([7u8; 32])
}

/// A second, independent reading of §1.1: the whole preimage built as one buffer.
fn reference_hash(
    prev: &[u8],
    serial: u64,
    at_us: u64,
    kind: &str,
    actor: &str,
    h: Option<[u8; 32]>,
    details: &str,
) -> Vec<u8> {
    let mut pre = prev.to_vec();
    pre.extend(serial.to_be_bytes());
    pre.extend(at_us.to_be_bytes());
    pre.extend(kind.bytes());
    pre.push(0);
    pre.extend(actor.bytes());
    pre.push(0);
    pre.extend(h.unwrap_or([0; 32]));
    pre.extend(details.bytes());
    Sha512::digest(&pre).to_vec()
}

fn entries(count: u64) -> Vec<JournalEntry> {
    let key = key();
    let mut out: Vec<JournalEntry> = Vec::new();
    let mut prev = [0u8; 64];
    for serial in 1..=count {
        let at = Timestamp::from_micros(1_700_000_000_000_000 + serial * 1_000_000);
        let new = if serial % 4 == 0 {
            let signature = sign_checkpoint(&key, serial - 1, at, &prev);
            NewJournalEntry::new(
                JournalKind::JournalCheckpoint,
                Actor::system(),
                None,
                &checkpoint_details(serial - 1, &signature),
            )
        } else {
            NewJournalEntry::new(
                JournalKind::KycAttributesStored,
                Actor::provider("oauth"),
                Some(NormalizedPaytoHash([serial as u8; 32])),
                &serde_json::json!({"row": serial, "expiration_us": 5}),
            )
        };
        let entry = JournalEntry::chained(prev, serial, at, &new);
        prev = entry.hash;
        out.push(entry);
    }
    out
}

fn verify(list: &[JournalEntry]) -> Result<VerifySummary, VerifyFailure> {
    let public = key().public_key();
    let mut verifier = ChainVerifier::from_start(&public);
    for entry in list {
        verifier.push(entry)?;
    }
    Ok(verifier.finish())
}

#[test]
fn vector_of_three_entries_matches_an_independent_implementation() {
    let fixed = [
        (
            1u64,
            1_000_000u64,
            "journal.started",
            "system",
            None,
            r#"{"existing_rows":{},"schema_version":8}"#,
        ),
        (
            2,
            2_000_000,
            "kyc.requirement_opened",
            "operator",
            Some([0xAB; 32]),
            r#"{"measures":["m"],"trigger":"cli"}"#,
        ),
        (
            3,
            3_000_000,
            "aml.attributes_read",
            "officer:ABC",
            Some([0xAB; 32]),
            r#"{"count":0,"format":"json"}"#,
        ),
    ];
    // Hex prefixes of the three hashes, as a third implementation (Python's hashlib) gives.
    let expected = [
        "d2917d0165878e6a436abbac74020435",
        "adb4a0776c5c4bbf785f854afa1b4ca3",
        "89bc70a9eca0b7e97dd0ced5013e28b9",
    ];
    let mut prev = [0u8; 64];
    for ((serial, at_us, kind, actor, h, details), want) in fixed.into_iter().zip(expected) {
        let ours = entry_hash(&prev, serial, at_us, kind, actor, h.as_ref(), details);
        assert_eq!(
            ours.to_vec(),
            reference_hash(&prev, serial, at_us, kind, actor, h, details)
        );
        let hex: String = ours[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want, "entry {serial}");
        prev = ours;
    }
}

#[test]
fn an_intact_chain_verifies_with_its_checkpoints() {
    let summary = verify(&entries(9)).unwrap();
    assert_eq!(summary.entries, 9);
    assert_eq!(summary.last_checkpoint, Some(8));
}

#[test]
fn a_checkpoint_by_another_key_is_bad() {
    let list = entries(4);
    let other = EddsaPrivateKey::from_seed([8u8; 32]).public_key();
    let mut verifier = ChainVerifier::from_start(&other);
    for entry in &list[..3] {
        verifier.push(entry).unwrap();
    }
    let failure = verifier.push(&list[3]).unwrap_err();
    assert_eq!(failure.serial, 4);
    assert_eq!(failure.problem, VerifyProblem::BadCheckpoint);
}

#[test]
fn a_partial_chain_verifies_from_any_entry() {
    let list = entries(9);
    let public = key().public_key();
    let mut verifier = ChainVerifier::from_any(&public);
    for entry in &list[4..] {
        verifier.push(entry).unwrap();
    }
    assert_eq!(verifier.finish().entries, 5);
}

#[test]
fn export_proof_round_trips_and_covers_the_body() {
    let key = key();
    let proof = ExportProof::sign(
        &key,
        b"{\"details\":[]}",
        NormalizedPaytoHash([1; 32]),
        Timestamp::from_micros(42_000_000),
        EddsaPrivateKey::from_seed([9; 32]).public_key(),
    );
    let text = proof.encode();
    assert_eq!(text.len(), 218);
    let decoded = ExportProof::decode(&text).unwrap();
    assert_eq!(decoded, proof);
    assert!(decoded.verify(&key.public_key(), b"{\"details\":[]}"));
    assert!(!decoded.verify(&key.public_key(), b"{\"details\":[1]}"));
}

/// Changes one byte of one column of one entry.
fn tamper(entry: &mut JournalEntry, column: usize, byte: usize, flip: u8) {
    let flip = flip.max(1);
    match column {
        0 => entry.at_us ^= u64::from(flip) << (8 * (byte % 8)),
        1 => {
            let mut bytes = entry.kind.clone().into_bytes();
            let i = byte % bytes.len();
            bytes[i] ^= flip;
            entry.kind = String::from_utf8_lossy(&bytes).into_owned();
        }
        2 => {
            let mut bytes = entry.actor.clone().into_bytes();
            let i = byte % bytes.len();
            bytes[i] ^= flip;
            entry.actor = String::from_utf8_lossy(&bytes).into_owned();
        }
        3 => match entry.h_payto.as_mut() {
            Some(h) => h[byte % 32] ^= flip,
            None => entry.h_payto = Some([flip; 32]),
        },
        4 => {
            let mut bytes = entry.details.clone().into_bytes();
            let i = byte % bytes.len();
            bytes[i] ^= flip;
            entry.details = String::from_utf8_lossy(&bytes).into_owned();
        }
        5 => entry.prev[byte % 64] ^= flip,
        _ => entry.hash[byte % 64] ^= flip,
    }
}

proptest! {
    #[test]
    fn any_changed_byte_fails_at_its_serial(
        index in 0usize..12, column in 0usize..7, byte in 0usize..200, flip in 1u8..=255,
    ) {
        let mut list = entries(12);
        tamper(&mut list[index], column, byte, flip);
        let failure = verify(&list).unwrap_err();
        prop_assert_eq!(failure.serial, index as u64 + 1);
    }

    #[test]
    fn a_deleted_inner_row_is_a_gap_at_its_serial(index in 1usize..11) {
        let mut list = entries(12);
        list.remove(index);
        let failure = verify(&list).unwrap_err();
        prop_assert_eq!(failure, VerifyFailure { serial: index as u64 + 1, problem: VerifyProblem::Gap });
    }

    #[test]
    fn rows_swapped_in_place_fail_at_the_first(first in 0usize..11, distance in 1usize..6) {
        let mut list = entries(12);
        let second = (first + distance).min(11);
        prop_assume!(second != first);
        // The rows keep their serials (the primary key) but trade contents.
        let (a, b) = (list[first].clone(), list[second].clone());
        list[first] = JournalEntry { serial: a.serial, ..b.clone() };
        list[second] = JournalEntry { serial: b.serial, ..a };
        let failure = verify(&list).unwrap_err();
        prop_assert_eq!(failure.serial, first as u64 + 1);
    }
}
