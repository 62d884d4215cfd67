// A service worker for Switchboard's Web Push connection requests (docs/protocol.md, "Web
// Push"). Register it, subscribe with `subscribeToPush(registration, serverUrl)`, and pass the
// subscription to `room.pushSubscribe(subscription)`. When another user asks you to connect
// while you are away, this shows who asks; clicking "Allow" (or the notification) opens the page
// with `?connect=<url>&from=<user>` so it can join again.
self.addEventListener("push", (event) => {
  const request = event.data ? event.data.json() : {};
  const from = request.sender ?? "someone";
  event.waitUntil(
    self.registration.showNotification(`${from} wants to connect`, {
      body: request.body ?? `${from} wants to connect with you`,
      data: request,
      actions: request.actions ?? [],
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  if (event.action === "denyConnection") return;
  const request = event.notification.data ?? {};
  const page = new URL(self.registration.scope);
  if (request.url) page.searchParams.set("connect", request.url);
  if (request.sender) page.searchParams.set("from", request.sender);
  event.waitUntil(self.clients.openWindow(page.href));
});
