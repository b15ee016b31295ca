// The file-writing worker of `writer.rs`, started from a Blob; its requests and answers are
// described there.
const files = new Map();
onmessage = async (event) => {
  const { id, op, file } = event.data;
  try {
    if (op === 'open') {
      files.set(file ?? id, await event.data.handle.createSyncAccessHandle());
    } else if (op === 'release') {
      for (const access of files.values()) {
        access.flush();
        access.close();
      }
      files.clear();
    } else {
      const access = files.get(file);
      if (op === 'write') {
        for (const { bytes, at } of event.data.parts) {
          let done = 0;
          while (done < bytes.length) {
            const wrote = access.write(bytes.subarray(done), { at: at + done });
            if (wrote === 0) throw new Error('the file takes no more bytes');
            done += wrote;
          }
        }
      } else {
        if (op === 'close') access.flush();
        access.close();
        files.delete(file);
      }
    }
    postMessage({ id, ok: true });
  } catch (error) {
    postMessage({ id, ok: false, name: error.name, message: error.message });
  }
};
