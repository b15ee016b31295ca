// Mallory, the man in the middle a hostile signaling server would run: every signal Ana and Bo
// address to each other reaches this page instead. It answers each side's peer connections with
// its own (its own DTLS certificate), opens the same data channels towards the other side, and
// forwards every message both ways, so both pages believe they talk to each other.
// Started through WebDriver with the URL of the proxy's Mallory socket as its one argument.
const socket = new WebSocket(arguments[0]);
const connections = new Map();
const other = (side) => (side === "ana" ? "bo" : "ana");
const send = (to, lane, payload) => socket.send(JSON.stringify({ to, lane, payload }));

function connection(side, lane) {
  const key = side + ":" + lane;
  if (connections.has(key)) {
    return connections.get(key);
  }
  const pc = new RTCPeerConnection({ iceServers: [] });
  const entry = { pc, queue: Promise.resolve() };
  pc.onicecandidate = (event) => {
    if (event.candidate && event.candidate.candidate) {
      send(side, lane, {
        kind: "ice_candidate",
        candidate: event.candidate.candidate,
        sdp_mid: event.candidate.sdpMid,
        sdp_m_line_index: event.candidate.sdpMLineIndex,
      });
    }
  };
  pc.onnegotiationneeded = () => {
    entry.queue = entry.queue.then(async () => {
      await pc.setLocalDescription();
      send(side, lane, { kind: pc.localDescription.type, sdp: pc.localDescription.sdp });
    });
  };
  pc.ondatachannel = (event) => bridge(event.channel, side, lane);
  connections.set(key, entry);
  return entry;
}

// A channel `side` opened towards "the other": the same one is opened towards the other, and
// the two are joined.
function bridge(incoming, side, lane) {
  const towards = connection(other(side), lane).pc;
  const outgoing = towards.createDataChannel(incoming.label, { ordered: incoming.ordered });
  pipe(incoming, outgoing);
  pipe(outgoing, incoming);
}

function pipe(from, to) {
  from.binaryType = "arraybuffer";
  const waiting = [];
  from.onmessage = (event) => {
    if (to.readyState === "open") {
      to.send(event.data);
    } else {
      waiting.push(event.data);
    }
  };
  to.addEventListener("open", () => waiting.splice(0).forEach((data) => to.send(data)));
  from.addEventListener("close", () => to.close());
}

socket.onmessage = (event) => {
  const { from, lane, payload } = JSON.parse(event.data);
  const entry = connection(from, lane);
  const pc = entry.pc;
  entry.queue = entry.queue.then(async () => {
    if (payload.kind === "offer") {
      await pc.setRemoteDescription({ type: "offer", sdp: payload.sdp });
      await pc.setLocalDescription();
      send(from, lane, { kind: "answer", sdp: pc.localDescription.sdp });
    } else if (payload.kind === "answer") {
      await pc.setRemoteDescription({ type: "answer", sdp: payload.sdp });
    } else {
      await pc.addIceCandidate({
        candidate: payload.candidate,
        sdpMid: payload.sdp_mid,
        sdpMLineIndex: payload.sdp_m_line_index,
      });
    }
  }).catch((error) => console.warn("mallory: " + error));
};

window.malloryConnections = connections;
