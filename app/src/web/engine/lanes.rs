//! The sender's lanes: which channel takes the next chunk, and when to open more peer
//! connections for a transfer (the schedule itself is [`crate::core::stripes`]).

use std::rc::Rc;

use ferry_protocol::DATA_CHANNEL_PREFIX;
use wasm_bindgen_futures::spawn_local;

use super::sending::Sending;
use super::{Engine, Job};
use crate::core::stripes::{SAMPLE_SECS, pick_lane};
use crate::web::channel::{Channel, ChannelEvent};
use crate::web::{JsError, now_secs};

impl Engine {
    /// Waits until the window takes `len` more bytes and a lane has room; the lane, or
    /// `None` once the transfer ended or paused.
    pub(super) async fn room_for(&self, job: &Job, sending: &Sending, len: u64) -> Option<usize> {
        // The page runs one task at a time: no event can slip in between a check and the wait
        // registered after it, only while waiting.
        let mut waited = false;
        loop {
            if !job.transfer.borrow().is_running() {
                return None;
            }
            if !sending.window.borrow().may_send(len) {
                let _ = sending.wake.notified().await;
                continue;
            }
            let buffered: Vec<u64> = std::iter::once(&job.control())
                .chain(job.data.borrow().iter())
                .map(|channel| {
                    if channel.is_open() {
                        channel.buffered()
                    } else {
                        u64::MAX
                    }
                })
                .collect();
            if let Some(lane) = pick_lane(&buffered, u64::from(self.inner.config.high_water)) {
                if waited {
                    let waits = &self.inner.backpressure_waits;
                    waits.set(waits.get() + 1);
                }
                return Some(lane);
            }
            waited = true;
            let _ = job.drained.notified().await;
        }
    }

    /// The channel of lane `lane` of `job`: its control channel, or a chunk channel.
    pub(super) fn channel(&self, job: &Job, lane: usize) -> Option<Rc<Channel>> {
        match lane {
            0 => Some(job.control()),
            more => job.data.borrow().get(more - 1).cloned(),
        }
    }

    /// Every second or so, asks the striping schedule how many lanes to use, and opens the
    /// ones it adds.
    pub(super) async fn reconsider_lanes(&self, job: &Rc<Job>, sending: &Rc<Sending>) {
        let now = now_secs();
        if now - sending.sampled.get() < SAMPLE_SECS {
            return;
        }
        sending.sampled.set(now);
        let stored: u64 = job
            .transfer
            .borrow()
            .files
            .iter()
            .map(|file| file.done)
            .sum();
        let link = Rc::clone(&sending.link.borrow());
        let rtt = link.rtt_ms().await;
        let wanted = sending.striping.borrow_mut().sample(now, stored, rtt);
        self.open_lanes(job, wanted, sending);
    }

    /// Opens chunk channels until `job` has `wanted` lanes.
    pub(super) fn open_lanes(&self, job: &Rc<Job>, wanted: usize, sending: &Rc<Sending>) {
        let mut open = job.lanes();
        while open < wanted {
            let Ok(lane) = u32::try_from(open) else {
                return;
            };
            if let Err(error) = self.open_lane(job, lane, sending) {
                crate::web::log(&format!("no lane {lane}: {error}"));
                return;
            }
            open += 1;
        }
    }

    /// Opens a chunk channel for `job` on lane `lane`, and watches it: should it fail, the
    /// blocks it carried go again over the others.
    fn open_lane(&self, job: &Rc<Job>, lane: u32, sending: &Rc<Sending>) -> Result<(), JsError> {
        let link = self.link(&job.peer(), lane)?;
        let label = format!("{DATA_CHANNEL_PREFIX}{}", job.transfer.borrow().id);
        let channel = Rc::new(Channel::new(
            link.open_channel(&label),
            self.inner.config.high_water,
            job.drained.clone(),
        ));
        job.data.borrow_mut().push(Rc::clone(&channel));
        let (job, sending) = (Rc::clone(job), Rc::clone(sending));
        let epoch = sending.epoch.get();
        spawn_local(async move {
            while !matches!(channel.next().await, ChannelEvent::Closed) {}
            // A lane of a connection that broke altogether is accounted for by the resumption.
            if job.transfer.borrow().is_running() && sending.epoch.get() == epoch {
                let lost = sending.window.borrow().lost_lane(lane as usize);
                sending.again.borrow_mut().extend(lost);
                sending.wake.notify_all();
            }
        });
        Ok(())
    }
}
