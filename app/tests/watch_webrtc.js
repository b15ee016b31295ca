// Watches a page's WebRTC from the outside, as a person's browser tools could: keeps every
// RTCPeerConnection the page makes from now on, so a test can close them all ("the connection
// broke"), counts the bytes the page hands to data channels, can hold the page's sending
// still, as a network that takes nothing more would, and can make a sender deaf to the
// receiver's receipts. The body of a function that returns the watch; installing it twice
// keeps the first.
if (!globalThis.__ferryWatch) {
  const made = [];
  // The connection of each channel, and the connections the watch broke.
  const connectionOf = new WeakMap();
  const broken = new WeakSet();
  // When each connection was made and the bytes sent over it, so that a test that finds too
  // many bytes sent after a break can say where they went.
  const accounts = [];
  const accountOf = new WeakMap();
  // Each chunk sent after the break, by file and offset (a chunk's first 12 bytes), with
  // the bytes sent again for the same place.
  const placesAfterBreak = new Set();
  let sentAgainAfterBreak = 0;
  // Every channel of a watched connection, so that lifting a hold can wake their senders.
  const channels = [];
  const Original = RTCPeerConnection;
  globalThis.RTCPeerConnection = function (...args) {
    const connection = new Original(...args);
    made.push(connection);
    const account = { made: performance.now(), sent: 0 };
    accounts.push(account);
    accountOf.set(connection, account);
    // Added before the page can add its own, so the channel is known by its first message.
    connection.addEventListener('datachannel', (event) => {
      connectionOf.set(event.channel, connection);
      channels.push(event.channel);
    });
    return connection;
  };
  globalThis.RTCPeerConnection.prototype = Original.prototype;
  // The page's device key is made through the class's static method.
  globalThis.RTCPeerConnection.generateCertificate = Original.generateCertificate.bind(Original);
  const createDataChannel = Original.prototype.createDataChannel;
  Original.prototype.createDataChannel = function (...args) {
    const channel = createDataChannel.apply(this, args);
    connectionOf.set(channel, this);
    channels.push(channel);
    return channel;
  };
  // While held, every channel says its queue is full, so a sender that waits for room (as
  // Ferry's does, until `bufferedamountlow`) sends no more, whatever the machine's speed.
  const bufferedAmount = Object.getOwnPropertyDescriptor(
    RTCDataChannel.prototype,
    'bufferedAmount',
  );
  Object.defineProperty(RTCDataChannel.prototype, 'bufferedAmount', {
    ...bufferedAmount,
    get() {
      const { holdFrom } = globalThis.__ferryWatch;
      const held = holdFrom !== null && sent >= holdFrom;
      return held ? 0xffffffff : bufferedAmount.get.call(this);
    },
  });
  // While deaf, the page hears no receipt of the other side's (a block stored, a file
  // verified) and no channel closing, and a closed channel reads as open: as a network that
  // stopped bringing it anything would, with the page none the wiser.
  const receipt = /^\{"type":"(stored|file_verified)"/;
  const unheard = (event) =>
    globalThis.__ferryWatch.deaf &&
    (event.type === 'close' ||
      (event.type === 'message' && typeof event.data === 'string' && receipt.test(event.data)));
  const wrapped = new WeakMap();
  const { addEventListener, removeEventListener } = EventTarget.prototype;
  RTCDataChannel.prototype.addEventListener = function (type, listener, options) {
    if (!wrapped.has(listener)) {
      wrapped.set(listener, function (event) {
        if (unheard(event)) return undefined;
        return typeof listener === 'function'
          ? listener.call(this, event)
          : listener.handleEvent(event);
      });
    }
    return addEventListener.call(this, type, wrapped.get(listener), options);
  };
  RTCDataChannel.prototype.removeEventListener = function (type, listener, options) {
    return removeEventListener.call(this, type, wrapped.get(listener) ?? listener, options);
  };
  const readyState = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, 'readyState');
  Object.defineProperty(RTCDataChannel.prototype, 'readyState', {
    ...readyState,
    get() {
      const state = readyState.get.call(this);
      const ending = state === 'closing' || state === 'closed';
      return globalThis.__ferryWatch.deaf && ending ? 'open' : state;
    },
  });
  const send = RTCDataChannel.prototype.send;
  let sent = 0;
  let largest = 0;
  // Counted once the browser took the bytes: a send on a channel that closed throws. A send
  // on a connection the watch broke is not counted either: a browser may take it for a
  // moment after the close (Firefox updates the channel's state later), but nothing of it
  // goes anywhere, as nothing would over a network that is gone.
  RTCDataChannel.prototype.send = function (data) {
    const result = send.call(this, data);
    const connection = connectionOf.get(this);
    if (!broken.has(connection)) {
      const length = data.byteLength ?? data.size ?? data.length;
      sent += length;
      largest = Math.max(largest, length);
      const account = accountOf.get(connection);
      if (account) account.sent += length;
      if (globalThis.__ferryWatch.brokeAt !== null && ArrayBuffer.isView(data) && length > 12) {
        const view = new DataView(data.buffer, data.byteOffset, 12);
        const place = `${view.getUint32(0, true)}@${view.getBigUint64(4, true)}`;
        if (placesAfterBreak.has(place)) sentAgainAfterBreak += length;
        placesAfterBreak.add(place);
      }
    }
    return result;
  };
  globalThis.__ferryWatch = {
    // Closes every connection and returns the bytes sent until then, in one step, so no
    // byte sent in between is counted on the wrong side of the break. A hold ends with them:
    // the connections made after the break are free to send.
    breakAll() {
      this.holdFrom = null;
      made.splice(0).forEach((connection) => {
        broken.add(connection);
        connection.close();
      });
      this.brokeAt = performance.now();
      return sent;
    },
    // Holds the page's sending still once it has sent `bytes` more.
    holdAfter(bytes) {
      this.holdFrom = sent + bytes;
      return true;
    },
    // The count of bytes sent from which the page's sending is held, if a hold is set.
    holdFrom: null,
    // Lifts the hold, and wakes every sender waiting for room, as a drained queue would.
    release() {
      this.holdFrom = null;
      channels
        .filter((channel) => channel.readyState === 'open')
        .forEach((channel) => channel.dispatchEvent(new Event('bufferedamountlow')));
      return true;
    },
    // Makes the page deaf (see `unheard`) from now on.
    deafen() {
      this.deaf = true;
      return true;
    },
    deaf: false,
    // When the connections were closed, on the page's clock (as performance marks are).
    brokeAt: null,
    sent() {
      return sent;
    },
    // The longest message counted, in bytes.
    largest() {
      return largest;
    },
    // Where the bytes sent since the break went: each connection made since shortly before
    // it (when, in milliseconds after the break, and the bytes sent over it), and the bytes
    // of chunks sent twice since.
    afterBreak() {
      const connections = accounts
        .filter((account) => account.made > this.brokeAt - 1000)
        .map((account) => `${Math.round(account.made - this.brokeAt)} ms: ${account.sent} bytes`);
      return `connections made since 1 s before the break: [${connections.join(', ')}]; ` +
        `chunks sent twice since: ${sentAgainAfterBreak} bytes`;
    },
  };
}
return globalThis.__ferryWatch;
