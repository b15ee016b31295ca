//! The verification dialog: the three words both screens must show, "They match" and "They
//! don't match", and the outcome.

use leptos::prelude::*;

use crate::core::comparison::Outcome;
use crate::session::{AppState, Session, outcome_sentence};

/// Shown while a verification is on screen. It takes the focus whenever its step changes
/// (the buttons of the last step are gone), so keyboard and screen-reader users are where
/// the news is.
#[component]
pub fn VerifyDialog() -> impl IntoView {
    let state = expect_context::<AppState>();
    let session = expect_context::<Session>();
    let shown = Memo::new(move |_| state.verification.get().map(|shown| shown.comparison));
    let dialog: NodeRef<leptos::html::Div> = NodeRef::new();
    Effect::new(move || {
        if let Some(dialog) = dialog.get() {
            let _ = dialog.focus();
        }
    });
    move || {
        let comparison = shown.get()?;
        let outcome = comparison.outcome();
        let comparing = outcome == Outcome::Comparing;
        let over = comparison.is_over();
        let words = comparison.code.clone().unwrap_or_default();
        Some(view! {
            <div
                class="verify panel"
                role="dialog"
                tabindex="-1"
                node_ref=dialog
                aria-labelledby="verify-title"
                aria-describedby="verify-status"
            >
                <h2 id="verify-title">{format!("Verify {}", comparison.nick)}</h2>
                <p class="code" hidden=words.is_empty() aria-label=format!("Code: {words}")>
                    {words.clone()}
                </p>
                <p
                    id="verify-status"
                    role="status"
                    class=if outcome == Outcome::Differ { "warning" } else { "hint" }
                >
                    {outcome_sentence(&comparison)}
                </p>
                <div class="send-row">
                    <button type="button" class="primary" hidden=!comparing on:click=move |_| {
                        session.answer_verification(true)
                    }>
                        "They match"
                    </button>
                    <button type="button" class="secondary" hidden=!comparing on:click=move |_| {
                        session.answer_verification(false)
                    }>
                        "They don't match"
                    </button>
                    <button type="button" class="secondary" on:click=move |_| session.close_verification()>
                        {if over { "Close" } else { "Cancel" }}
                    </button>
                </div>
            </div>
        })
    }
}
