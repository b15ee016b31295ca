//! This browser profile's device key: one DTLS certificate (ECDSA P-256), made once, kept in
//! IndexedDB and used by every peer connection, so its fingerprint names this device to the
//! people who verify it. Clearing the site's data clears it, which makes a new device.

use std::cell::RefCell;

use futures::channel::oneshot;
use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    IdbDatabase, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbTransactionMode, RtcCertificate,
    RtcPeerConnection,
};

use super::{Context, JsError, Listener, property, wait};

/// The database and its one store.
const DATABASE: &str = "ferry-device";
const STORE: &str = "keys";
/// The key of the certificate in the store.
const CERTIFICATE: &str = "certificate";

/// What is asked of a new certificate's life: a year, the most Chromium allows (it clamps
/// longer requests); Firefox gives what is asked.
const LIFETIME_MS: f64 = 365.0 * 24.0 * 3600.0 * 1000.0;

/// A certificate with less than this left is replaced before it is used: a connection must
/// never run on one that expires mid-transfer. Its replacement is a new device to others.
const RENEW_BEFORE_MS: f64 = 30.0 * 24.0 * 3600.0 * 1000.0;

thread_local! {
    /// The certificate once loaded, so a page asks IndexedDB once.
    static LOADED: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// This device's key.
#[derive(Clone, Debug)]
pub struct Device {
    /// The certificate every peer connection presents.
    pub certificate: RtcCertificate,
    /// Its fingerprint, as [`crate::core::sdp::fingerprint`] writes it.
    pub fingerprint: String,
    /// It was made by this page load: there was none, or the last one was about to expire.
    pub made_now: bool,
}

/// This device's key: the stored one, or a new one (stored) when there is none or it is close
/// to its expiry.
///
/// # Errors
/// When the browser can make no certificate; a browser without IndexedDB (a private window
/// in some browsers) gets a certificate for this page load only.
pub async fn device() -> Result<Device, JsError> {
    if let Some(device) = LOADED.with(|loaded| loaded.borrow().clone()) {
        return Ok(device);
    }
    let database = open().await.ok();
    let stored = match &database {
        Some(database) => read(database).await.ok().flatten(),
        None => None,
    };
    let (certificate, made_now) = match stored {
        Some(certificate) if fresh(&certificate) => (certificate, false),
        stale => {
            let made = generate().await?;
            let kept = match &database {
                // A key about to expire is replaced.
                Some(database) if stale.is_some() => {
                    replace(database, &made).await.map(|()| made.clone())
                }
                // Two tabs of a new profile may both make one: the first stored wins, and
                // the other tab takes it, so the profile has one device key.
                Some(database) => keep(database, &made).await,
                None => Ok(made.clone()),
            };
            (kept.ok().filter(fresh).unwrap_or(made), true)
        }
    };
    let fingerprint = fingerprint_of(&certificate)
        .ok_or_else(|| JsError::plain("reading the device key", "it has no fingerprint"))?;
    let device = Device {
        certificate,
        fingerprint,
        made_now,
    };
    LOADED.with(|loaded| *loaded.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// Forgets the loaded certificate, so the next [`device`] reads IndexedDB again as a new page
/// load would (tests).
pub fn forget_loaded() {
    LOADED.with(|loaded| loaded.borrow_mut().take());
}

/// Whether `certificate` has long enough to live to be used.
fn fresh(certificate: &RtcCertificate) -> bool {
    certificate.expires() - js_sys::Date::now() > RENEW_BEFORE_MS
}

/// Makes a new certificate.
async fn generate() -> Result<RtcCertificate, JsError> {
    let algorithm = Object::new();
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&algorithm, &JsValue::from_str(key), &value);
    };
    set("name", "ECDSA".into());
    set("namedCurve", "P-256".into());
    set("expires", LIFETIME_MS.into());
    let promise = RtcPeerConnection::generate_certificate_with_object(&algorithm)
        .context("making the device key")?;
    Ok(wait(promise, "making the device key")
        .await?
        .unchecked_into())
}

/// The certificate's SHA-256 fingerprint, as "sha-256 AB:CD:…".
fn fingerprint_of(certificate: &RtcCertificate) -> Option<String> {
    let prints: js_sys::Array = property(certificate, "getFingerprints")
        .dyn_into::<js_sys::Function>()
        .ok()?
        .call0(certificate)
        .ok()?
        .dyn_into()
        .ok()?;
    prints.iter().find_map(|print| {
        let algorithm = property(&print, "algorithm")
            .as_string()?
            .to_ascii_lowercase();
        let value = property(&print, "value").as_string()?.to_ascii_uppercase();
        (algorithm == "sha-256").then(|| format!("{algorithm} {value}"))
    })
}

/// Opens the database, making its store the first time.
async fn open() -> Result<IdbDatabase, JsError> {
    let factory = web_sys::window()
        .and_then(|window| window.indexed_db().ok().flatten())
        .ok_or_else(|| JsError::plain("opening the device store", "no IndexedDB here"))?;
    let request: IdbOpenDbRequest = factory
        .open_with_u32(DATABASE, 1)
        .context("opening the device store")?;
    let _upgrade = Listener::new(request.unchecked_ref(), "upgradeneeded", {
        let request = request.clone();
        move |_| {
            if let Ok(database) = request.result() {
                let database: IdbDatabase = database.unchecked_into();
                let _ = database.create_object_store(STORE);
            }
        }
    });
    Ok(done(&request, "opening the device store")
        .await?
        .unchecked_into())
}

/// The store, for reading or for writing.
fn store(database: &IdbDatabase, mode: IdbTransactionMode) -> Result<IdbObjectStore, JsError> {
    database
        .transaction_with_str_and_mode(STORE, mode)
        .and_then(|transaction| transaction.object_store(STORE))
        .context("using the device store")
}

/// The stored certificate, if any.
async fn read(database: &IdbDatabase) -> Result<Option<RtcCertificate>, JsError> {
    let request = store(database, IdbTransactionMode::Readonly)?
        .get(&JsValue::from_str(CERTIFICATE))
        .context("reading the device key")?;
    let value = done(&request, "reading the device key").await?;
    Ok(value.dyn_into::<RtcCertificate>().ok())
}

/// Stores `made` unless a certificate is stored already: the one kept.
async fn keep(database: &IdbDatabase, made: &RtcCertificate) -> Result<RtcCertificate, JsError> {
    let request = store(database, IdbTransactionMode::Readwrite)?
        .add_with_key(made, &JsValue::from_str(CERTIFICATE))
        .context("keeping the device key")?;
    match done(&request, "keeping the device key").await {
        Ok(_) => Ok(made.clone()),
        // Another tab stored one first (the key exists): that one is the device's.
        Err(_) => read(database)
            .await?
            .ok_or_else(|| JsError::plain("keeping the device key", "it was not stored")),
    }
}

/// Stores `made` in place of the stored certificate.
async fn replace(database: &IdbDatabase, made: &RtcCertificate) -> Result<(), JsError> {
    let request = store(database, IdbTransactionMode::Readwrite)?
        .put_with_key(made, &JsValue::from_str(CERTIFICATE))
        .context("renewing the device key")?;
    done(&request, "renewing the device key").await.map(|_| ())
}

/// Waits for a request's `success` (its result) or `error`.
async fn done(request: &IdbRequest, context: &'static str) -> Result<JsValue, JsError> {
    let (sender, receiver) = oneshot::channel::<bool>();
    let sender = RefCell::new(Some(sender));
    let sender = std::rc::Rc::new(sender);
    let finish = |succeeded: bool| {
        let sender = std::rc::Rc::clone(&sender);
        move |event: web_sys::Event| {
            if !succeeded {
                // An error handled here must not also abort the transaction's other work
                // or reach the window as unhandled.
                event.prevent_default();
            }
            if let Some(sender) = sender.borrow_mut().take() {
                let _ = sender.send(succeeded);
            }
        }
    };
    let _success = Listener::new(request.unchecked_ref(), "success", finish(true));
    let _error = Listener::new(request.unchecked_ref(), "error", finish(false));
    match receiver.await {
        Ok(true) => request.result().context(context),
        _ => Err(request.error().ok().flatten().map_or_else(
            || JsError::plain(context, "the request failed"),
            |error| JsError::new(context, &error.into()),
        )),
    }
}
