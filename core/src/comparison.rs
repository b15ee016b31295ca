//! One verification as the two people live it: the code arrives, each says whether it
//! matches what the other's screen shows, and the outcome follows from both answers.

/// A verification with one person, as plain data for the views.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// The other person's nick.
    pub nick: String,
    /// The code's words, once derived.
    pub code: Option<String>,
    /// The other device's fingerprint as the connection shows it: what is kept as verified.
    pub fingerprint: Option<String>,
    /// This person's answer: the codes match, or not.
    pub mine: Option<bool>,
    /// The other person's answer.
    pub theirs: Option<bool>,
    /// Why it stopped before both answered.
    pub stopped: Option<String>,
}

/// Where a verification stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The code is on its way.
    Waiting,
    /// The code is shown; this person has not answered.
    Comparing,
    /// This person said the codes match; the other has not answered yet.
    WaitingForThem,
    /// Both said the codes match.
    Verified,
    /// Someone said the codes differ.
    Differ,
    /// It stopped, for this reason.
    Stopped(String),
}

impl Comparison {
    /// A verification with `nick` that has just begun.
    pub fn new(nick: &str) -> Self {
        Self {
            nick: nick.to_owned(),
            ..Self::default()
        }
    }

    /// Where it stands. A "no" from either person decides it whatever follows; two "yes"
    /// decide it even if the connection closes afterwards.
    pub fn outcome(&self) -> Outcome {
        if self.mine == Some(false) || self.theirs == Some(false) {
            return Outcome::Differ;
        }
        if self.mine == Some(true) && self.theirs == Some(true) {
            return Outcome::Verified;
        }
        if let Some(why) = &self.stopped {
            return Outcome::Stopped(why.clone());
        }
        match (&self.code, self.mine) {
            (None, _) => Outcome::Waiting,
            (Some(_), None) => Outcome::Comparing,
            (Some(_), Some(_)) => Outcome::WaitingForThem,
        }
    }

    /// Whether nothing more can happen.
    pub fn is_over(&self) -> bool {
        matches!(
            self.outcome(),
            Outcome::Verified | Outcome::Differ | Outcome::Stopped(_)
        )
    }

    /// The fingerprint to keep as verified, once both said the codes match.
    pub fn verified_device(&self) -> Option<&str> {
        (self.outcome() == Outcome::Verified)
            .then_some(self.fingerprint.as_deref())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown() -> Comparison {
        Comparison {
            code: Some("ladder velvet ocean".into()),
            fingerprint: Some("sha-256 AB".into()),
            ..Comparison::new("bo")
        }
    }

    #[test]
    fn two_yes_verify_in_either_order_and_a_late_close_changes_nothing() {
        assert_eq!(Comparison::new("bo").outcome(), Outcome::Waiting);
        let mut first_mine = shown();
        assert_eq!(first_mine.outcome(), Outcome::Comparing);
        first_mine.mine = Some(true);
        assert_eq!(first_mine.outcome(), Outcome::WaitingForThem);
        assert_eq!(first_mine.verified_device(), None);
        first_mine.theirs = Some(true);
        first_mine.stopped = Some("bo stopped the verification.".into());
        assert_eq!(first_mine.outcome(), Outcome::Verified);
        assert_eq!(first_mine.verified_device(), Some("sha-256 AB"));

        let mut first_theirs = shown();
        first_theirs.theirs = Some(true);
        assert_eq!(first_theirs.outcome(), Outcome::Comparing);
        first_theirs.mine = Some(true);
        assert_eq!(first_theirs.outcome(), Outcome::Verified);
    }

    #[test]
    fn one_no_is_final_and_keeps_nothing() {
        let mut comparison = shown();
        comparison.theirs = Some(false);
        comparison.mine = Some(true);
        assert_eq!(comparison.outcome(), Outcome::Differ);
        assert!(comparison.is_over());
        assert_eq!(comparison.verified_device(), None);
    }

    #[test]
    fn a_stop_before_both_answers_is_the_outcome() {
        let mut comparison = shown();
        comparison.mine = Some(true);
        comparison.stopped = Some("bo stopped the verification.".into());
        assert_eq!(
            comparison.outcome(),
            Outcome::Stopped("bo stopped the verification.".into())
        );
        assert!(comparison.is_over());
    }
}
