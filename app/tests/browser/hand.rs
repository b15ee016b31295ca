//! Bo's engine against an Ana played by hand over a bare channel, so that she can send what
//! no Ferry sends.

use std::cell::RefCell;
use std::rc::Rc;

use ferry_app::core::blocks::block_digest;
use ferry_app::web::Notify;
use ferry_app::web::channel::{Channel, ChannelEvent};
use ferry_app::web::engine::{Answer, Engine, EngineEvent};
use ferry_app::web::peer::{IcePolicy, LinkEvent, PeerLink};
use ferry_protocol::chunk::ChunkHeader;
use ferry_protocol::{
    BLOCK_SIZE, DigestHex, FileMeta, PeerId, TRANSFER_CHANNEL_LABEL, TRANSFER_VERSION, TransferId,
    TransferMessage,
};
use js_sys::Uint8Array;

use crate::support::*;

/// Bo's engine, what it reported, and a bare channel to it on which a test plays Ana by hand,
/// so that she can send what no Ferry sends.
pub(crate) struct HandPlayed {
    pub(crate) bo: Engine,
    pub(crate) events: Rc<RefCell<Vec<EngineEvent>>>,
    pub(crate) channel: Channel,
    /// The connection Ana's channel runs on, which must outlive it; Bo's signals go to it.
    pub(crate) link: Rc<RefCell<Option<Rc<PeerLink>>>>,
}

impl HandPlayed {
    /// A new connection from Ana to Bo, which from now on gets Bo's signals, and a control
    /// channel on it, open.
    pub(crate) async fn connect(bo: &Engine, link: &RefCell<Option<Rc<PeerLink>>>) -> Channel {
        let to_bo = bo.clone();
        let new = Rc::new(
            PeerLink::new(
                &peer(0x0a),
                peer(0x0b),
                &IcePolicy::default(),
                Rc::new(move |_to, payload| to_bo.handle_signal(peer(0x0a), "ana", payload, 0)),
                Rc::new(|_: &PeerId, _: LinkEvent| {}),
            )
            .unwrap(),
        );
        *link.borrow_mut() = Some(Rc::clone(&new));
        let channel = Channel::new(
            new.open_channel(TRANSFER_CHANNEL_LABEL),
            1024 * 1024,
            Notify::default(),
        );
        assert!(matches!(channel.next().await, ChannelEvent::Open));
        channel
    }
}

/// Bo, and Ana played by hand over a first connection.
pub(crate) async fn bo_and_a_hand_played_ana() -> HandPlayed {
    let link: Rc<RefCell<Option<Rc<PeerLink>>>> = Rc::default();
    let to_ana = Rc::clone(&link);
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&events);
    let bo = Engine::new(
        quiet(),
        Rc::new(move |_to, payload, _lane| {
            if let Some(link) = to_ana.borrow().as_ref() {
                link.signal(payload);
            }
        }),
        Rc::new(move |event| sink.borrow_mut().push(event)),
    );
    bo.set_identity(peer(0x0b), "bo", Vec::new(), false);
    let channel = HandPlayed::connect(&bo, &link).await;
    HandPlayed {
        bo,
        events,
        channel,
        link,
    }
}

/// Ana offers one file of `size` bytes by hand, with protocol `version`.
pub(crate) fn hand_offer(channel: &Channel, id: &TransferId, size: u64, version: u32) {
    let offer = TransferMessage::Offer {
        id: id.clone(),
        files: vec![FileMeta {
            name: "by-hand.bin".into(),
            path: String::new(),
            size,
            mime: String::new(),
        }],
        version,
        empty_folders: Vec::new(),
    };
    channel.send(&offer).unwrap();
}

/// Whether the hand-played Ana's offer reached Bo's user (rows may come before it).
pub(crate) fn offered(events: &RefCell<Vec<EngineEvent>>) -> bool {
    events
        .borrow()
        .iter()
        .any(|event| matches!(event, EngineEvent::Offer(_)))
}

/// The next control message on the hand-played channel.
pub(crate) async fn next_message(channel: &Channel) -> TransferMessage {
    loop {
        match channel.next().await {
            ChannelEvent::Message(message) => return message,
            ChannelEvent::Open => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Sends `bytes`, block `index` of file 0, in chunks of 64 KiB, and its digest.
pub(crate) fn hand_block(channel: &Channel, index: u32, bytes: &[u8]) {
    let start = u64::from(index) * u64::from(BLOCK_SIZE);
    for (piece, offset) in bytes.chunks(64 * 1024).zip((start..).step_by(64 * 1024)) {
        let header = ChunkHeader { file: 0, offset };
        channel
            .send_chunk(header, &Uint8Array::from(piece))
            .unwrap();
    }
    let digest = DigestHex::from_digest(block_digest(bytes));
    channel
        .send(&TransferMessage::Block {
            file: 0,
            index,
            digest,
        })
        .unwrap();
}

/// Bo and a hand-played Ana, who offered transfer `id` of one file of a block and 4 bytes
/// (noise from `seed`), which Bo accepted; Bo stored its first block. Returns the file's
/// bytes too.
pub(crate) async fn bo_holding_the_first_block(
    id: &TransferId,
    seed: u64,
) -> (HandPlayed, Vec<u8>) {
    let hand = bo_and_a_hand_played_ana().await;
    let bytes = noise(BLOCK_SIZE as usize + 4, seed);
    hand_offer(&hand.channel, id, bytes.len() as u64, TRANSFER_VERSION);
    until(20, "the offer", || offered(&hand.events)).await;
    hand.bo.answer(id, Answer::Download);
    next_message(&hand.channel).await;
    hand_block(&hand.channel, 0, &bytes[..BLOCK_SIZE as usize]);
    assert_eq!(
        next_message(&hand.channel).await,
        TransferMessage::Stored { file: 0, block: 0 }
    );
    (hand, bytes)
}
