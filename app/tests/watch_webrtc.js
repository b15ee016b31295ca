// Watches a page's WebRTC from the outside, as a person's browser tools could: keeps every
// RTCPeerConnection the page makes from now on, so a test can close them all ("the connection
// broke"), and counts the bytes the page hands to data channels. The body of a function that
// returns the watch; installing it twice keeps the first.
if (!globalThis.__ferryWatch) {
  const made = [];
  const Original = RTCPeerConnection;
  globalThis.RTCPeerConnection = function (...args) {
    const connection = new Original(...args);
    made.push(connection);
    return connection;
  };
  globalThis.RTCPeerConnection.prototype = Original.prototype;
  const send = RTCDataChannel.prototype.send;
  let sent = 0;
  // Counted once the browser took the bytes: a send on a channel that closed throws, and
  // the page may try a few before it learns of the close, but nothing of them goes anywhere.
  RTCDataChannel.prototype.send = function (data) {
    const result = send.call(this, data);
    sent += data.byteLength ?? data.size ?? data.length;
    return result;
  };
  globalThis.__ferryWatch = {
    // Closes every connection and returns the bytes sent until then, in one step, so no
    // byte sent in between is counted on the wrong side of the break.
    breakAll() {
      made.splice(0).forEach((connection) => connection.close());
      this.brokeAt = performance.now();
      return sent;
    },
    // When the connections were closed, on the page's clock (as performance marks are).
    brokeAt: null,
    sent() {
      return sent;
    },
  };
}
return globalThis.__ferryWatch;
