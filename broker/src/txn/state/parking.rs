//! Requests that wait for their transactional id's transition to end: at most one per
//! id, for at most [`PARK_MAX_MS`], then answered CONCURRENT_TRANSACTIONS.

use super::*;

/// A request waiting for its transactional id's transition to end.
#[derive(Debug)]
pub(super) struct Parked {
    token: Token,
    request: TxnRequest,
    /// When it is answered CONCURRENT_TRANSACTIONS if the transition has not ended.
    until: i64,
}

impl TxnMachine {
    /// Holds `request` until its id's transition ends or [`PARK_MAX_MS`] pass.
    pub(super) fn park(&mut self, token: Token, request: TxnRequest, now: i64) {
        let Some(txn_id) = request.changes_txn().map(str::to_owned) else { return };
        let until = now.saturating_add(PARK_MAX_MS);
        self.parked.insert(txn_id, Parked { token, request, until });
        self.set_parked_timer();
    }

    fn set_parked_timer(&mut self) {
        if let Some(at) = self.parked.values().map(|p| p.until).min() {
            self.out.push(Output::SetTimer { timer: TimerKey::Parked, at_ms: at });
        }
    }

    /// Runs the request parked for `txn_id`, if its transition has ended.
    pub(super) fn unpark(&mut self, txn_id: &str, now: i64) {
        if self.transitioning(txn_id) {
            return;
        }
        if let Some(p) = self.parked.remove(txn_id) {
            self.request(p.token, p.request, now);
        }
    }

    /// Refuses the parked requests whose wait ran out, with CONCURRENT_TRANSACTIONS.
    pub(super) fn answer_parked(&mut self, now: i64) {
        let mut due: Vec<String> =
            self.parked.iter().filter(|(_, p)| p.until <= now).map(|(id, _)| id.clone()).collect();
        due.sort();
        for id in due {
            if let Some(p) = self.parked.remove(&id) {
                let reply = refusal(p.request, ErrorCode::CONCURRENT_TRANSACTIONS);
                self.reply(p.token, reply);
            }
        }
        self.set_parked_timer();
    }
}
