//! Presence cannot lie: random sequences of joins, leaves, dropped connections, reclaims,
//! takeovers, moves between the lobby and two rooms, clients too slow to read and expiry,
//! after each of which every client that is welcomed and has read what it was sent sees
//! exactly the people the server lists in its place.
//!
//! Each client reads its connection's queue as the app does ([`Roster`]: a welcome replaces
//! the list, a batch takes departures off and puts arrivals on), keeps its token across
//! connections and rejoins with it, as the app's signaling client does; a move starts afresh
//! elsewhere, without a token, as the app's does. Two clients share each nick, so a nick is
//! taken in one place and free in another.

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_protocol::{Place, RoomId, Roster, ServerMessage};
use proptest::prelude::*;
use tokio::sync::oneshot;

use super::*;
use crate::inbound::SignalLimits;
use crate::outbound::Receiver;

const TTL: Duration = Duration::from_secs(120);

/// How many clients take part; few, so that their nicks and sessions meet often.
const CLIENTS: usize = 4;

/// How many places there are: the lobby and two rooms.
const PLACES: usize = 3;

/// What happens next.
#[derive(Clone, Debug)]
enum Step {
    /// Client `n` opens a connection and joins (with its token, if it has one), when it has
    /// no connection; a slow one has room for one message at a time, so anything sent to it
    /// before it has read the last thing is over its budget and cuts it off.
    Join(usize, bool),
    /// Client `n` opens a second connection and reclaims its session on it while the first is
    /// still the server's current one.
    TakeOver(usize),
    /// Client `n` closes its connection cleanly (a close frame, or `leave`).
    Leave(usize),
    /// Client `n` leaves where it is, if anywhere, and joins place `p` afresh.
    Move(usize, usize),
    /// Client `n`'s connection breaks without a word.
    Drop(usize),
    /// Client `n` reads what was queued for it so far.
    Read(usize),
    /// Time passes: connected clients send heartbeats, then the sweep runs.
    Wait(u64),
    /// The server announces what changed.
    Announce,
}

/// One client: its connection, if it has one, and what it knows.
#[derive(Debug, Default)]
struct Client {
    /// Where it joins: the lobby (0) or a room.
    place: usize,
    token: Option<SessionToken>,
    connection: Option<Open>,
    roster: Roster,
    /// Whether the open connection's welcome has been read.
    welcomed: bool,
}

/// A client's open connection, seen from the client: what it is sent, and the kick that ends
/// it from the server's side.
#[derive(Debug)]
struct Open {
    conn: ConnId,
    id: Option<PeerId>,
    rx: Receiver,
    kick: oneshot::Receiver<Kick>,
}

/// The server and its clients, driven step by step.
struct World {
    registry: Registry,
    clients: Vec<Client>,
    now: Instant,
    next_conn: ConnId,
    next_fresh: u16,
}

impl World {
    fn new() -> Self {
        Self {
            registry: Registry::new(
                TTL,
                IceConfig::default(),
                30,
                LobbyScope::Everyone,
                &Limits::default(),
            ),
            clients: (0..CLIENTS).map(|_| Client::default()).collect(),
            now: Instant::now(),
            next_conn: 1,
            next_fresh: 1,
        }
    }

    fn fresh(&mut self) -> Fresh {
        let [high, low] = self.next_fresh.to_be_bytes();
        self.next_fresh += 1;
        let mut id = [0; PeerId::BYTES];
        id[..2].copy_from_slice(&[high, low]);
        let mut token = [7; SessionToken::BYTES];
        token[..2].copy_from_slice(&[high, low]);
        Fresh {
            id: PeerId::from_random_bytes(id),
            token: SessionToken::from_random_bytes(token),
            claimed: false,
        }
    }

    /// Opens a connection for client `n` and joins on it, as the app's client does.
    fn connect(&mut self, n: usize, budget: usize) -> Option<Open> {
        let conn = self.next_conn;
        self.next_conn += 1;
        let (tx, rx) = crate::outbound::queue(budget);
        let (kick_tx, kick) = oneshot::channel();
        let fresh = self.fresh();
        let nick = Nick::new(&format!("client{}", n % 2)).unwrap();
        let token = self.clients[n].token.clone();
        let joined = self.registry.join(
            nick,
            token.as_ref(),
            &place(self.clients[n].place),
            fresh,
            Connection::new(conn, tx, kick_tx, None, SignalLimits::default(), self.now),
            self.now,
        );
        let id = joined.ok()?;
        Some(Open {
            conn,
            id: Some(id),
            rx,
            kick,
        })
    }

    fn step(&mut self, step: &Step) {
        match *step {
            Step::Join(n, slow) if self.clients[n].connection.is_none() => {
                let open = self.connect(n, if slow { 1 } else { 1 << 20 });
                let client = &mut self.clients[n];
                client.welcomed = false;
                client.connection = open;
            }
            Step::TakeOver(n) if self.clients[n].connection.is_some() => {
                let open = self.connect(n, 1 << 20);
                if open.is_some() {
                    let client = &mut self.clients[n];
                    client.welcomed = false;
                    client.connection = open;
                }
            }
            Step::Leave(n) => {
                if let Some(Open {
                    conn, id: Some(id), ..
                }) = self.clients[n].connection.take()
                {
                    self.registry.leave(&id, conn);
                }
            }
            Step::Drop(n) => {
                if let Some(Open {
                    conn, id: Some(id), ..
                }) = self.clients[n].connection.take()
                {
                    self.registry.linger(&id, conn, self.now);
                }
            }
            Step::Move(n, p) => {
                if let Some(Open {
                    conn, id: Some(id), ..
                }) = self.clients[n].connection.take()
                {
                    self.registry.leave(&id, conn);
                }
                let client = &mut self.clients[n];
                client.place = p;
                client.token = None;
                let open = self.connect(n, 1 << 20);
                let client = &mut self.clients[n];
                client.welcomed = false;
                client.connection = open;
            }
            Step::Read(n) => self.read(n),
            Step::Wait(secs) => {
                self.now += Duration::from_secs(secs);
                for client in &self.clients {
                    if let Some(Open {
                        conn, id: Some(id), ..
                    }) = &client.connection
                    {
                        self.registry.touch(id, *conn, self.now);
                    }
                }
                self.registry.sweep(self.now);
            }
            Step::Announce => self.registry.announce(),
            Step::Join(..) | Step::TakeOver(_) => {}
        }
        self.end_kicked();
    }

    /// Reads client `n`'s queue into its roster, as the app's client does.
    fn read(&mut self, n: usize) {
        let client = &mut self.clients[n];
        let Some(open) = client.connection.as_mut() else {
            return;
        };
        for message in super::tests::drain(&mut open.rx) {
            match message {
                ServerMessage::Welcome {
                    id, token, users, ..
                } => {
                    client.token = Some(token);
                    client.roster.welcome(id, users);
                    client.welcomed = true;
                }
                ServerMessage::UsersChanged { joined, left, away } => {
                    assert!(client.welcomed, "a batch before the welcome");
                    client.roster.changed(joined, &left, &away);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Ends, as their tasks would, the connections the server kicked: one that was taken over
    /// or expired is gone; one too slow to read lingers.
    fn end_kicked(&mut self) {
        for client in &mut self.clients {
            let Some(open) = client.connection.as_mut() else {
                continue;
            };
            match open.kick.try_recv() {
                Ok(Kick::TooSlow) => {
                    if let Some(id) = &open.id {
                        self.registry.linger(id, open.conn, self.now);
                    }
                    client.connection = None;
                }
                Ok(Kick::Expired | Kick::TakenOver) => client.connection = None,
                Err(_) => {}
            }
        }
    }

    /// After an announcement that every client read: each welcomed client lists exactly the
    /// others the server lists in its place.
    fn check(&self) -> Result<(), TestCaseError> {
        for (n, client) in self.clients.iter().enumerate() {
            let key = match place(client.place) {
                Place::Room(room) => PlaceKey::Room(room),
                Place::Lobby | Place::Code(_) => PlaceKey::Lobby(None),
            };
            let listed: BTreeSet<(String, String)> = self
                .registry
                .listed(&key)
                .into_iter()
                .map(|user| (user.id.to_string(), user.nick.as_str().to_owned()))
                .collect();
            let Some(open) = &client.connection else {
                continue;
            };
            if !client.welcomed {
                continue;
            }
            let me = open.id.as_ref().map(ToString::to_string);
            let expected: BTreeSet<_> = listed
                .iter()
                .filter(|(id, _)| Some(id) != me.as_ref())
                .cloned()
                .collect();
            let seen: BTreeSet<_> = client
                .roster
                .users()
                .iter()
                .map(|user| (user.id.to_string(), user.nick.as_str().to_owned()))
                .collect();
            prop_assert_eq!(seen, expected, "client {} sees what the server does not", n);
        }
        Ok(())
    }
}

/// Place `p`: the lobby for 0, else a room.
fn place(p: usize) -> Place {
    match u8::try_from(p) {
        Ok(0) | Err(_) => Place::Lobby,
        Ok(byte) => Place::Room(RoomId::from_random_bytes([byte; RoomId::BYTES])),
    }
}

fn step() -> impl Strategy<Value = Step> {
    let client = 0..CLIENTS;
    prop_oneof![
        4 => (client.clone(), prop::bool::weighted(0.2)).prop_map(|(n, slow)| Step::Join(n, slow)),
        1 => client.clone().prop_map(Step::TakeOver),
        1 => client.clone().prop_map(Step::Leave),
        1 => (client.clone(), 0..PLACES).prop_map(|(n, p)| Step::Move(n, p)),
        2 => client.clone().prop_map(Step::Drop),
        3 => client.prop_map(Step::Read),
        1 => (1..=130u64).prop_map(Step::Wait),
        3 => Just(Step::Announce),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_client_sees_who_the_server_lists_after_each_announcement(
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let mut world = World::new();
        for step in &steps {
            world.step(step);
            if matches!(step, Step::Announce) {
                for n in 0..CLIENTS {
                    world.read(n);
                }
                world.check()?;
            }
        }
    }
}
