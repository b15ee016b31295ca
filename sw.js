// Ferry's service worker: it keeps the app's shell, so that a visit without a network still
// opens Ferry (which then says it is offline and keeps trying), and it takes in what a phone's
// share sheet sends to the installed app (the manifest's `share_target`) for the page to offer.
//
// How an update arrives: the page itself always comes from the network first, so a new build
// is seen on the very next load. Its files carry their content's hash in their names, so an
// old and a new build never share an address and nothing stale is ever served for a new page;
// once a new page is in, the files it no longer names are dropped. This script holds no
// version and is served `no-cache`: the browser checks it on each visit, and a changed copy
// takes over at once (`skipWaiting`, `clients.claim`) rather than wait for every tab to close.

const SHELL = "ferry-shell";
const SHARED = "ferry-shared";
const PAGE = "/";
// How long the page's address may take before the kept copy is shown instead: a phone on a
// failing network must not sit on a blank screen for the browser's own, far longer, timeout.
const PAGE_TIMEOUT_MS = 4000;
// The app's own files, as a page names them (trunk writes absolute paths), and as requested.
const NAMED_FILE = /["'](\/[^"'?#\s]+\.(?:js|wasm|css|webmanifest|png))["']/g;
const APP_FILE = /^\/[^?#\s]+\.(?:js|wasm|css|webmanifest|png)$/;
// A name with its content's hash in it, as trunk writes them (the server's rule too).
const HASHED = /[0-9a-f]{12,}[^/]*$/;

// Whether `response` is the app's page rather than one of its files.
function isPage(response) {
  return (response.headers.get("content-type") || "").startsWith("text/html");
}

function named(html) {
  return [...new Set([...html.matchAll(NAMED_FILE)].map((match) => match[1]))];
}

// Keeps `page` as the shell with every file it names, then forgets the files of older builds.
async function keep(page) {
  const html = await page.clone().text();
  const files = named(html);
  const cache = await caches.open(SHELL);
  const missing = [];
  for (const file of files) {
    if (!(await cache.match(file))) missing.push(file);
  }
  await cache.addAll(missing);
  await cache.put(PAGE, page);
  const wanted = new Set([PAGE, ...files].map((path) => new URL(path, self.location.origin).href));
  for (const request of await cache.keys()) {
    if (!wanted.has(request.url)) await cache.delete(request);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    fetch(PAGE, { cache: "no-cache" })
      .then((page) => (page.ok ? keep(page) : undefined))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && url.pathname === "/share") {
    event.respondWith(takeShare(request));
  } else if (request.method === "GET" && request.mode === "navigate") {
    event.respondWith(page(event));
  } else if (request.method === "GET" && APP_FILE.test(url.pathname) && url.pathname !== "/sw.js") {
    event.respondWith(appFile(request));
  }
});

// The page from the network when it answers in time (kept for next time), else the kept one.
async function page(event) {
  const fromNetwork = fetch(event.request);
  try {
    const fresh = await Promise.race([
      fromNetwork,
      new Promise((_, fail) => setTimeout(() => fail(new Error("slow")), PAGE_TIMEOUT_MS)),
    ]);
    if (fresh.ok && isPage(fresh)) {
      event.waitUntil(keep(fresh.clone()).catch(() => {}));
    }
    return fresh;
  } catch (failure) {
    const kept = await caches.match(PAGE, { cacheName: SHELL });
    if (kept) return kept;
    return fromNetwork;
  }
}

// A file of the app. One whose name holds its hash never changes, so a kept copy is always
// right; any other (the manifest, the icons) is asked for first and kept as a fallback.
async function appFile(request) {
  const hashed = HASHED.test(new URL(request.url).pathname);
  const kept = hashed ? await caches.match(request, { cacheName: SHELL }) : undefined;
  if (kept) return kept;
  try {
    const fresh = await fetch(request);
    // A name the server does not hold is answered with the page, which is not that file.
    if (fresh.ok && !isPage(fresh)) {
      const copy = fresh.clone();
      caches.open(SHELL).then((cache) => cache.put(request, copy));
    }
    return fresh;
  } catch (failure) {
    const fallback = await caches.match(request, { cacheName: SHELL });
    if (fallback) return fallback;
    throw failure;
  }
}

// What the share sheet sent: its files and its text are kept for the page, which opens on
// them; whatever an earlier share left is replaced.
async function takeShare(request) {
  const form = await request.formData();
  await caches.delete(SHARED);
  const cache = await caches.open(SHARED);
  let count = 0;
  for (const file of form.getAll("files")) {
    if (!(file instanceof File)) continue;
    const headers = {
      "content-type": file.type || "application/octet-stream",
      "x-ferry-name": encodeURIComponent(file.name),
      "x-ferry-modified": String(file.lastModified),
    };
    await cache.put(`/shared/file/${count}`, new Response(file, { headers }));
    count += 1;
  }
  const text = ["title", "text", "url"]
    .map((field) => form.get(field))
    .filter((value) => typeof value === "string" && value.trim() !== "")
    .join("\n");
  if (text !== "") await cache.put("/shared/text", new Response(text));
  return Response.redirect("/?shared", 303);
}
